/* Test tool: writes JPEG variants that Pillow 9.4 cannot write but cameras and
 * other encoders do: restart markers, arithmetic coding, YCCK, RGB without the
 * YCbCr transform, 4:1:1 and 4:4:0 sampling. The picture is a fixed synthetic
 * pattern with edges and gradients.
 *
 *   make_jpeg OUT.jpg WIDTH HEIGHT VARIANT
 *
 * VARIANT: restart, arithmetic, arithmetic-progressive, ycck, rgb, h4v1, h1v2 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

static void fail_on_error(j_common_ptr cinfo) {
    char message[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, message);
    fprintf(stderr, "make_jpeg: %s\n", message);
    exit(1); /* a test tool: the library never does this */
}

static unsigned char pattern(int x, int y, int channel) {
    switch (channel) {
    case 0: return (unsigned char)((x * 255) / 64 + ((x / 8 + y / 8) % 2) * 60);
    case 1: return (unsigned char)((y * 5) ^ (x * 3));
    case 2: return (unsigned char)(((x - 40) * (x - 40) + (y - 30) * (y - 30)) / 16);
    default: return (unsigned char)((x + y) % 97 * 2);
    }
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: make_jpeg OUT.jpg WIDTH HEIGHT VARIANT\n");
        return 2;
    }
    const char *variant = argv[4];
    int width = atoi(argv[2]), height = atoi(argv[3]);
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr errors;
    cinfo.err = jpeg_std_error(&errors);
    errors.error_exit = fail_on_error;
    jpeg_create_compress(&cinfo);
    FILE *out = fopen(argv[1], "wb");
    if (!out) {
        perror(argv[1]);
        return 1;
    }
    jpeg_stdio_dest(&cinfo, out);
    int cmyk = strcmp(variant, "ycck") == 0;
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = cmyk ? 4 : 3;
    cinfo.in_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 85, TRUE);
    if (strcmp(variant, "restart") == 0) {
        cinfo.restart_interval = 3;
    } else if (strcmp(variant, "arithmetic") == 0) {
        cinfo.arith_code = TRUE;
    } else if (strcmp(variant, "arithmetic-progressive") == 0) {
        cinfo.arith_code = TRUE;
        jpeg_simple_progression(&cinfo);
    } else if (cmyk) {
        jpeg_set_colorspace(&cinfo, JCS_YCCK);
    } else if (strcmp(variant, "rgb") == 0) {
        jpeg_set_colorspace(&cinfo, JCS_RGB);
    } else if (strcmp(variant, "h4v1") == 0 || strcmp(variant, "h1v2") == 0) {
        int h4v1 = variant[1] == '4';
        cinfo.comp_info[0].h_samp_factor = h4v1 ? 4 : 1;
        cinfo.comp_info[0].v_samp_factor = h4v1 ? 1 : 2;
        for (int c = 1; c < 3; c++)
            cinfo.comp_info[c].h_samp_factor = cinfo.comp_info[c].v_samp_factor = 1;
    } else {
        fprintf(stderr, "make_jpeg: unknown variant %s\n", variant);
        return 2;
    }
    jpeg_start_compress(&cinfo, TRUE);
    unsigned char *row = malloc((size_t)width * cinfo.input_components);
    while (cinfo.next_scanline < cinfo.image_height) {
        int y = (int)cinfo.next_scanline;
        for (int x = 0; x < width; x++)
            for (int c = 0; c < cinfo.input_components; c++)
                row[x * cinfo.input_components + c] = pattern(x, y, c);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(row);
    return fclose(out) == 0 ? 0 : 1;
}
