/* PNG to RGB8 through libpng, pixel for pixel as Pillow 9.4's
 * Image.open(path).convert("RGB") gives them:
 *
 *   gray, 1/2/4/8-bit    scaled to 8 bits (1-bit: 0/255; 2-bit: v*0x55;
 *                        4-bit: v*0x11), replicated to R, G and B
 *   gray, 16-bit         min(v, 255), replicated. Pillow opens these as mode
 *                        "I" and its I->RGB conversion clips instead of taking
 *                        the high byte, so most 16-bit gray photos come out
 *                        nearly white, in Pillow and here alike. We match it on
 *                        purpose: the contract is Pillow's pixels.
 *   gray+alpha           gray replicated, alpha dropped (16-bit: high byte)
 *   RGB, RGBA            alpha dropped, no compositing (16-bit: the high byte,
 *                        truncated, not rounded)
 *   palette              the palette's colors; tRNS is ignored
 *
 * No gamma or color management: gAMA, cHRM, sRGB, iCCP and sBIT change
 * nothing, as in Pillow.
 *
 * Where we are stricter than Pillow (an error instead of pixels):
 *   - a bad CRC on any chunk, IDAT included (Pillow skips IDAT CRCs);
 *   - a pixel whose palette index is past the end of PLTE (Pillow shows
 *     whatever its palette holds there).
 * Like Pillow, we stop once the pixels are read: a missing or damaged IEND or
 * trailing chunks after the image data do not matter. */
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "image_buffer.h"
#include "png_decode.h"

typedef struct png_decoder {
    const uint8_t *data; /* the whole file */
    size_t size;
    size_t offset;       /* the next byte libpng reads */
    const char *name;
    png_structp png;
    png_infop info;
    uint8_t *rows;           /* libpng's output: one row, or all when interlaced */
    png_bytep *row_pointers; /* interlaced only, into rows */
    cnx_image image;
    cnx_status status; /* set, with the message, before each longjmp out of libpng */
} png_decoder;

/* A row's layout after the transforms we ask for: one byte per palette index
 * or 8-bit sample, two big-endian bytes per 16-bit sample. */
typedef struct png_row_format {
    int color_type;
    size_t sample_bytes;
    size_t pixel_bytes;
    png_colorp palette;
    int palette_size;
} png_row_format;

/* ------------------------------------------------------- libpng callbacks */

static void on_libpng_error(png_structp png, png_const_charp message) {
    png_decoder *d = png_get_error_ptr(png);
    d->status = cnx_fail(CNX_ERROR_IMAGE, "%s: corrupt PNG: %s", d->name, message);
    png_longjmp(png, 1);
}

/* Warnings are about ancillary chunks that do not change the pixels; the
 * library never prints. */
static void on_libpng_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static void read_from_memory(png_structp png, png_bytep out, size_t length) {
    png_decoder *d = png_get_io_ptr(png);
    if (length > d->size - d->offset) {
        d->status = cnx_fail(CNX_ERROR_IMAGE, "%s: PNG truncated (it ends after %zu bytes)",
                             d->name, d->size);
        png_longjmp(png, 1);
    }
    memcpy(out, d->data + d->offset, length);
    d->offset += length;
}

/* ---------------------------------------------------------------- decoding */

/* IHDR must be the first chunk (PNG spec 5.6), so its size sits at a fixed
 * place and can be refused before libpng is even set up. Returns 0 when the
 * file is too short or IHDR is not there; libpng then reports that. */
static int read_header_size(const uint8_t *data, size_t size, uint32_t *width,
                            uint32_t *height) {
    if (size < 24 || memcmp(data + 12, "IHDR", 4) != 0)
        return 0;
    *width = png_get_uint_32(data + 16);
    *height = png_get_uint_32(data + 20);
    return 1;
}

static cnx_status convert_row(const png_decoder *d, const png_row_format *f, const uint8_t *in,
                              uint8_t *out) {
    size_t width = (size_t)d->image.width;
    if (f->color_type == PNG_COLOR_TYPE_PALETTE) {
        for (size_t x = 0; x < width; x++, out += 3) {
            int index = in[x];
            if (index >= f->palette_size)
                return cnx_fail(CNX_ERROR_IMAGE,
                                "%s: corrupt PNG: a pixel uses palette index %d but the palette "
                                "has %d colors",
                                d->name, index, f->palette_size);
            out[0] = f->palette[index].red;
            out[1] = f->palette[index].green;
            out[2] = f->palette[index].blue;
        }
    } else if (f->color_type == PNG_COLOR_TYPE_GRAY && f->sample_bytes == 2) {
        for (size_t x = 0; x < width; x++, in += 2, out += 3)
            out[0] = out[1] = out[2] = in[0] ? 255 : in[1]; /* clip, as Pillow's I->RGB */
    } else if ((f->color_type & PNG_COLOR_MASK_COLOR) == 0) {
        /* Gray or gray+alpha: the first byte is the gray sample's high byte. */
        for (size_t x = 0; x < width; x++, in += f->pixel_bytes, out += 3)
            out[0] = out[1] = out[2] = in[0];
    } else {
        /* RGB or RGBA: each sample's first byte is its high byte. */
        for (size_t x = 0; x < width; x++, in += f->pixel_bytes, out += 3) {
            out[0] = in[0];
            out[1] = in[f->sample_bytes];
            out[2] = in[2 * f->sample_bytes];
        }
    }
    return CNX_OK;
}

/* Everything this allocates lives in *d, which the caller frees on every
 * path; so no local here needs to survive the longjmp. */
static cnx_status decode_with_libpng(png_decoder *d, int64_t max_pixels) {
    if (setjmp(png_jmpbuf(d->png)))
        return d->status;
    png_set_read_fn(d->png, d, read_from_memory);
    /* Ancillary chunks with bad CRCs too: the file is damaged either way. */
    png_set_crc_action(d->png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
    /* libpng's own guard against huge rows, at our pixel limit (its default
     * of 1000000 per side would refuse long thin images that fit). */
    png_uint_32 side_limit = max_pixels < PNG_UINT_31_MAX ? (png_uint_32)max_pixels : PNG_UINT_31_MAX;
    png_set_user_limits(d->png, side_limit, side_limit);
    png_read_info(d->png, d->info);

    png_uint_32 width, height;
    int bit_depth, color_type;
    /* The size was checked from the raw IHDR before libpng started. */
    png_get_IHDR(d->png, d->info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);

    png_row_format format = {.color_type = color_type};
    if (color_type == PNG_COLOR_TYPE_PALETTE &&
        !png_get_PLTE(d->png, d->info, &format.palette, &format.palette_size))
        return cnx_fail(CNX_ERROR_IMAGE, "%s: corrupt PNG: palette image without a PLTE chunk",
                        d->name);
    if (bit_depth < 8) {
        if (color_type == PNG_COLOR_TYPE_PALETTE)
            png_set_packing(d->png); /* one index per byte */
        else
            png_set_expand_gray_1_2_4_to_8(d->png); /* scales as Pillow's 1, L;2, L;4 */
    }
    int passes = png_set_interlace_handling(d->png);
    png_read_update_info(d->png, d->info);
    format.sample_bytes = png_get_bit_depth(d->png, d->info) == 16 ? 2 : 1;
    format.pixel_bytes = format.sample_bytes * png_get_channels(d->png, d->info);
    size_t row_bytes = png_get_rowbytes(d->png, d->info);
    if (row_bytes != format.pixel_bytes * width)
        return cnx_fail(CNX_ERROR_INTERNAL, "%s: libpng rows are %zu bytes, expected %zu",
                        d->name, row_bytes, format.pixel_bytes * width);

    cnx_status status = cnx_image_allocate(d->name, width, height, &d->image);
    if (status != CNX_OK)
        return status;
    uint8_t *out = d->image.rgb;
    size_t out_row_bytes = (size_t)width * 3;

    if (passes == 1) {
        /* Row by row: only one row of libpng's output in memory. */
        d->rows = malloc(row_bytes);
        if (!d->rows)
            return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory", d->name);
        for (png_uint_32 y = 0; y < height; y++, out += out_row_bytes) {
            png_read_row(d->png, d->rows, NULL);
            status = convert_row(d, &format, d->rows, out);
            if (status != CNX_OK)
                return status;
        }
        return CNX_OK;
    }
    /* Interlaced: each Adam7 pass adds pixels to every row, so libpng needs
     * the whole image in its own layout before any row is final. */
    if (height > SIZE_MAX / row_bytes)
        return cnx_fail(CNX_ERROR_TOO_LARGE, "%s: interlaced image too large", d->name);
    d->rows = malloc(row_bytes * height);
    d->row_pointers = malloc(sizeof *d->row_pointers * height);
    if (!d->rows || !d->row_pointers)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory for the interlaced image",
                        d->name);
    for (png_uint_32 y = 0; y < height; y++)
        d->row_pointers[y] = d->rows + row_bytes * y;
    png_read_image(d->png, d->row_pointers);
    for (png_uint_32 y = 0; y < height; y++, out += out_row_bytes) {
        status = convert_row(d, &format, d->row_pointers[y], out);
        if (status != CNX_OK)
            return status;
    }
    return CNX_OK;
}

cnx_status cnx_png_decode(const uint8_t *data, size_t size, const char *name,
                          int64_t max_pixels, cnx_image *image) {
    uint32_t width, height;
    if (read_header_size(data, size, &width, &height)) {
        cnx_status status = cnx_image_check_size(name, width, height, max_pixels);
        if (status != CNX_OK)
            return status;
    }
    png_decoder d = {.data = data, .size = size, .name = name};
    cnx_status status;
    d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d, on_libpng_error, on_libpng_warning);
    if (d.png)
        d.info = png_create_info_struct(d.png);
    if (!d.png || !d.info)
        status = cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory starting libpng", name);
    else
        status = decode_with_libpng(&d, max_pixels);
    png_destroy_read_struct(&d.png, &d.info, NULL);
    free(d.rows);
    free(d.row_pointers);
    if (status != CNX_OK) {
        cnx_image_free(&d.image);
        return status;
    }
    *image = d.image;
    return CNX_OK;
}
