/* JPEG to RGB8 through libjpeg-turbo, with the settings Pillow 9.4 decodes
 * with (ISLOW DCT, fancy upsampling, libjpeg's own YCbCr->RGB), so the pixels
 * are identical wherever both use the same libjpeg-turbo (Debian 12: 2.1.5).
 *
 *   YCbCr, RGB   libjpeg's RGB output
 *   gray         replicated by libjpeg, equal to Pillow's L->RGB
 *   CMYK, YCCK   Pillow always reads these as Adobe-inverted CMYK and converts
 *                as R = K - K*(255-C)/255, rounded its way; we do the same
 * No EXIF rotation.
 *
 * Damaged files:
 *   - a file cut short is an error, as Pillow's "image file is truncated"
 *     (libjpeg alone would warn and fill the rest with gray);
 *   - damaged entropy-coded data (libjpeg's "Corrupt JPEG data: bad Huffman
 *     code", "premature end of data segment", "found marker ... instead of
 *     RST") is an error. Here we differ from Pillow on purpose: it ignores
 *     these warnings and returns the smeared pixels; we refuse to pass them
 *     silently into a batch;
 *   - other warnings (extraneous bytes before a marker, an unknown JFIF
 *     revision, a bad ICC marker, an odd progression) leave the pixels
 *     intact and are ignored, as in Pillow;
 *   - as in Pillow, once every row is read the file may end without EOI;
 *   - over MAX_JPEG_SCANS scans is an error (Pillow has no limit): a few KB
 *     of progressive scans could otherwise keep the decoder busy for minutes. */
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>

#include <jpeglib.h>
#include <jerror.h> /* after jpeglib.h, whose jconfig.h enables the arithmetic-coding codes */

#include "error.h"
#include "image_buffer.h"
#include "jpeg_decode.h"

/* Real progressive files have about 10 scans; libjpeg-turbo's own fuzzers
 * stop at 500 too. */
#define MAX_JPEG_SCANS 500

typedef struct jpeg_decoder {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr errors;
    struct jpeg_progress_mgr progress;
    jmp_buf escape; /* where libjpeg's errors land */
    const char *name;
    size_t size;
    int all_rows_read;
    uint8_t *cmyk_row;
    cnx_image image;
    cnx_status status; /* set, with the message, before each longjmp */
} jpeg_decoder;

/* ------------------------------------------------------ libjpeg callbacks */

static _Noreturn void escape(jpeg_decoder *d, cnx_status status, const char *what,
                             j_common_ptr cinfo) {
    char message[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, message);
    d->status = what ? cnx_fail(status, "%s: %s: %s", d->name, what, message)
                     : cnx_fail(status, "%s: %s", d->name, message);
    longjmp(d->escape, 1);
}

static void on_libjpeg_error(j_common_ptr cinfo) {
    jpeg_decoder *d = cinfo->client_data;
    switch (cinfo->err->msg_code) {
    case JERR_OUT_OF_MEMORY:
        escape(d, CNX_ERROR_OUT_OF_MEMORY, "out of memory decoding JPEG", cinfo);
    case JERR_SOF_UNSUPPORTED: /* lossless, hierarchical */
    case JERR_BAD_PRECISION:   /* 12-bit */
    case JERR_CONVERSION_NOTIMPL:
    case JERR_NOT_COMPILED:
        escape(d, CNX_ERROR_UNSUPPORTED, "unsupported JPEG", cinfo);
    default:
        escape(d, CNX_ERROR_IMAGE, "corrupt JPEG", cinfo);
    }
}

/* Warnings (msg_level -1) decide between pixels and an error, as the header
 * comment says; trace messages (msg_level >= 0) are dropped. Nothing prints. */
static void on_libjpeg_message(j_common_ptr cinfo, int msg_level) {
    jpeg_decoder *d = cinfo->client_data;
    if (msg_level >= 0)
        return;
    cinfo->err->num_warnings++;
    switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF:
        if (d->all_rows_read)
            return;
        d->status = cnx_fail(CNX_ERROR_IMAGE, "%s: JPEG truncated (it ends after %zu bytes)",
                             d->name, d->size);
        longjmp(d->escape, 1);
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_MUST_RESYNC:
        escape(d, CNX_ERROR_IMAGE, NULL, cinfo); /* the message says "Corrupt JPEG data" */
    default:
        return;
    }
}

static void on_libjpeg_output(j_common_ptr cinfo) { (void)cinfo; }

static void on_libjpeg_progress(j_common_ptr cinfo) {
    jpeg_decoder *d = cinfo->client_data;
    if (d->cinfo.input_scan_number > MAX_JPEG_SCANS) {
        d->status = cnx_fail(CNX_ERROR_IMAGE, "%s: corrupt JPEG: over %d progressive scans",
                             d->name, MAX_JPEG_SCANS);
        longjmp(d->escape, 1);
    }
}

/* ---------------------------------------------------------------- decoding */

/* a*b/255 rounded, in Pillow's integer arithmetic (its MULDIV255). */
static int multiply_divide_255(int a, int b) {
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/* libjpeg's CMYK (YCCK already converted) to Pillow's RGB: Pillow inverts the
 * samples ("CMYK;I") and computes R = (255-k) - (255-k)*c/255 on them, which
 * on the stored values is K - K*(255-C)/255. */
static void cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, size_t width) {
    for (size_t x = 0; x < width; x++, in += 4, out += 3) {
        int k = in[3];
        for (int c = 0; c < 3; c++)
            out[c] = (uint8_t)(k - multiply_divide_255(255 - in[c], k));
    }
}

/* Everything this allocates lives in *d, which the caller frees on every
 * path; so no local here needs to survive the longjmp. */
static cnx_status decode_with_libjpeg(jpeg_decoder *d, const uint8_t *data, int64_t max_pixels) {
    if (setjmp(d->escape))
        return d->status;
    jpeg_create_decompress(&d->cinfo); /* keeps cinfo.err and client_data */
    d->progress.progress_monitor = on_libjpeg_progress;
    d->cinfo.progress = &d->progress;
    jpeg_mem_src(&d->cinfo, data, (unsigned long)d->size);
    jpeg_read_header(&d->cinfo, TRUE);
    cnx_status status = cnx_image_check_size(d->name, d->cinfo.image_width,
                                             d->cinfo.image_height, max_pixels);
    if (status != CNX_OK)
        return status;

    int cmyk = d->cinfo.jpeg_color_space == JCS_CMYK || d->cinfo.jpeg_color_space == JCS_YCCK;
    d->cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    d->cinfo.dct_method = JDCT_ISLOW;
    d->cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&d->cinfo);

    status = cnx_image_allocate(d->name, d->cinfo.output_width, d->cinfo.output_height,
                                &d->image);
    if (status != CNX_OK)
        return status;
    size_t width = d->cinfo.output_width;
    if (cmyk && !(d->cmyk_row = malloc(width * 4)))
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory", d->name);
    while (d->cinfo.output_scanline < d->cinfo.output_height) {
        uint8_t *rgb = d->image.rgb + (size_t)d->cinfo.output_scanline * width * 3;
        JSAMPROW row = cmyk ? d->cmyk_row : rgb;
        /* Only a suspending data source returns 0 rows; guard the loop anyway. */
        if (jpeg_read_scanlines(&d->cinfo, &row, 1) != 1)
            return cnx_fail(CNX_ERROR_INTERNAL, "%s: libjpeg returned no rows", d->name);
        if (cmyk)
            cmyk_row_to_rgb(d->cmyk_row, rgb, width);
    }
    d->all_rows_read = 1;
    jpeg_finish_decompress(&d->cinfo);
    return CNX_OK;
}

cnx_status cnx_jpeg_decode(const uint8_t *data, size_t size, const char *name,
                           int64_t max_pixels, cnx_image *image) {
    jpeg_decoder d = {.name = name, .size = size};
    d.cinfo.err = jpeg_std_error(&d.errors);
    d.errors.error_exit = on_libjpeg_error;
    d.errors.emit_message = on_libjpeg_message;
    d.errors.output_message = on_libjpeg_output;
    d.cinfo.client_data = &d;
    cnx_status status = decode_with_libjpeg(&d, data, max_pixels);
    jpeg_destroy_decompress(&d.cinfo);
    free(d.cmyk_row);
    if (status != CNX_OK) {
        cnx_image_free(&d.image);
        return status;
    }
    *image = d.image;
    return CNX_OK;
}
