/* Pillow-exact resize of RGB8 on the CPU: a horizontal pass to a
 * uint8 intermediate, then a vertical pass, each skipped when its size is
 * unchanged, as Pillow's ImagingResampleInner does. The per-pixel arithmetic
 * is kernels/pillow_resample.h, shared with the CUDA kernels.
 *
 * Only the requested output window is computed: the horizontal pass runs over
 * the input rows the window's vertical taps read and the window's columns; the
 * vertical pass over the window's rows. Each output value depends only on its
 * own taps, so this changes no value. */
#include "resize.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pillow_resample.h"

/* The coefficients of output pixels first .. first + count - 1 of one axis. */
typedef struct coeff_table {
    int taps;       /* stride of coeffs: the axis's max taps */
    int *xmin;      /* [count] */
    int *n;         /* [count] */
    int32_t *coeffs; /* [count * taps] */
} coeff_table;

static void table_free(coeff_table *t) {
    free(t->xmin);
    free(t->n);
    free(t->coeffs);
    memset(t, 0, sizeof *t);
}

static cnx_status table_make(cnx_interpolation filter, int in_size, int out_size, int first,
                             int count, coeff_table *t) {
    memset(t, 0, sizeof *t);
    cnx_resample_axis axis = cnx_resample_axis_make(filter, in_size, out_size);
    t->taps = cnx_resample_max_taps(&axis);
    t->xmin = malloc((size_t)count * sizeof *t->xmin);
    t->n = malloc((size_t)count * sizeof *t->n);
    t->coeffs = malloc((size_t)count * (size_t)t->taps * sizeof *t->coeffs);
    if (!t->xmin || !t->n || !t->coeffs) {
        table_free(t);
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "resize: out of memory for %d x %d coefficients",
                        count, t->taps);
    }
    for (int i = 0; i < count; i++)
        t->n[i] = cnx_resample_coeffs(&axis, first + i, &t->xmin[i],
                                      t->coeffs + (size_t)i * (size_t)t->taps);
    return CNX_OK;
}

/* Horizontal pass: rows of `in` (pitch in_pitch bytes) to rows of `out`
 * (win_w pixels each) through table h. */
static void horizontal_pass(const uint8_t *in, size_t in_pitch, int rows, const coeff_table *h,
                            int win_w, uint8_t *out) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *row = in + (size_t)y * in_pitch;
        uint8_t *dst = out + (size_t)y * (size_t)win_w * 3;
        for (int x = 0; x < win_w; x++) {
            const uint8_t *p = row + (size_t)h->xmin[x] * 3;
            const int32_t *k = h->coeffs + (size_t)x * (size_t)h->taps;
            int32_t r = CNX_RESAMPLE_ROUND_INIT, g = r, b = r;
            for (int t = 0; t < h->n[x]; t++, p += 3) {
                r += (int32_t)p[0] * k[t];
                g += (int32_t)p[1] * k[t];
                b += (int32_t)p[2] * k[t];
            }
            dst[3 * x + 0] = cnx_resample_clip8(r);
            dst[3 * x + 1] = cnx_resample_clip8(g);
            dst[3 * x + 2] = cnx_resample_clip8(b);
        }
    }
}

/* Vertical pass: output row i of the window reads rows v->xmin[i] - row0 ..
 * of `in` (pitch in_pitch bytes, `values` bytes used per row). The sums are
 * integers, so summing tap row by tap row into acc is exact. */
static void vertical_pass(const uint8_t *in, size_t in_pitch, int row0, const coeff_table *v,
                          int rows, int values, int32_t *acc, uint8_t *out) {
    for (int i = 0; i < rows; i++) {
        const int32_t *k = v->coeffs + (size_t)i * (size_t)v->taps;
        for (int x = 0; x < values; x++)
            acc[x] = CNX_RESAMPLE_ROUND_INIT;
        for (int t = 0; t < v->n[i]; t++) {
            const uint8_t *src = in + (size_t)(v->xmin[i] - row0 + t) * in_pitch;
            int32_t kt = k[t];
            for (int x = 0; x < values; x++)
                acc[x] += (int32_t)src[x] * kt;
        }
        uint8_t *dst = out + (size_t)i * (size_t)values;
        for (int x = 0; x < values; x++)
            dst[x] = cnx_resample_clip8(acc[x]);
    }
}

cnx_status cnx_resize_rgb8_window(cnx_interpolation filter, const uint8_t *src, int src_w,
                                  int src_h, int dst_w, int dst_h, int x0, int y0, int win_w,
                                  int win_h, uint8_t *out) {
    if (!src || !out)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "resize: NULL pixels");
    if (!(cnx_filter_support(filter) > 0.0))
        return cnx_fail(CNX_ERROR_UNSUPPORTED, "resize: filter %d has no separable support",
                        (int)filter);
    if (src_w <= 0 || src_h <= 0 || dst_w <= 0 || dst_h <= 0)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "resize: bad size %dx%d -> %dx%d", src_w,
                        src_h, dst_w, dst_h);
    if (x0 < 0 || y0 < 0 || win_w <= 0 || win_h <= 0 || x0 > dst_w - win_w || y0 > dst_h - win_h)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "resize: window %dx%d at (%d, %d) outside the %dx%d output", win_w, win_h,
                        x0, y0, dst_w, dst_h);

    const size_t src_pitch = (size_t)src_w * 3;
    const size_t win_pitch = (size_t)win_w * 3;
    const int need_horizontal = dst_w != src_w;
    const int need_vertical = dst_h != src_h;

    if (!need_horizontal && !need_vertical) { /* Pillow returns a copy */
        for (int y = 0; y < win_h; y++)
            memcpy(out + (size_t)y * win_pitch, src + (size_t)(y0 + y) * src_pitch + (size_t)x0 * 3,
                   win_pitch);
        return CNX_OK;
    }

    coeff_table h = {0}, v = {0};
    uint8_t *temp = NULL;
    int32_t *acc = NULL;
    cnx_status status = CNX_OK;

    if (need_horizontal && (status = table_make(filter, src_w, dst_w, x0, win_w, &h)) != CNX_OK)
        goto done;
    if (!need_vertical) { /* rows map one to one */
        horizontal_pass(src + (size_t)y0 * src_pitch, src_pitch, win_h, &h, win_w, out);
        goto done;
    }
    if ((status = table_make(filter, src_h, dst_h, y0, win_h, &v)) != CNX_OK)
        goto done;
    if (!(acc = malloc(win_pitch * sizeof *acc))) {
        status = cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "resize: out of memory");
        goto done;
    }
    if (!need_horizontal) { /* the vertical pass reads the source's window columns */
        vertical_pass(src + (size_t)x0 * 3, src_pitch, 0, &v, win_h, (int)win_pitch, acc, out);
        goto done;
    }
    /* Both passes: the input rows the window's vertical taps read (the bounds
     * are monotonic in the output index), resampled horizontally. */
    int row_first = v.xmin[0];
    int row_last = v.xmin[win_h - 1] + v.n[win_h - 1]; /* exclusive */
    int rows = row_last - row_first;
    if (!(temp = malloc((size_t)rows * win_pitch))) {
        status = cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "resize: out of memory for %d x %d pixels",
                          win_w, rows);
        goto done;
    }
    horizontal_pass(src + (size_t)row_first * src_pitch, src_pitch, rows, &h, win_w, temp);
    vertical_pass(temp, win_pitch, row_first, &v, win_h, (int)win_pitch, acc, out);

done:
    free(temp);
    free(acc);
    table_free(&h);
    table_free(&v);
    return status;
}
