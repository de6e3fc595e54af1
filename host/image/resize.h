/* Internal: Pillow-exact resize of RGB8 images on the CPU, with any of
 * Pillow's separable filters (kernels/pillow_resample.h). */
#ifndef CNX_HOST_RESIZE_H
#define CNX_HOST_RESIZE_H

#include <stdint.h>

#include "cnx.h"

/* Resizes interleaved RGB8 src (src_w x src_h) to dst_w x dst_h exactly as
 * Pillow's Image.resize((dst_w, dst_h), filter) does, but computes only the
 * window of the output with its top-left corner at (x0, y0) and size
 * win_w x win_h (which must lie inside dst), written to out as interleaved
 * RGB8, rows of win_w * 3 bytes. Rows and columns outside the window are not
 * computed; every computed pixel is bit-identical to Pillow's.
 * filter is one with a support (not NEAREST).
 * Returns CNX_OK, CNX_ERROR_INVALID_ARGUMENT or CNX_ERROR_OUT_OF_MEMORY. */
cnx_status cnx_resize_rgb8_window(cnx_interpolation filter, const uint8_t *src, int src_w,
                                  int src_h, int dst_w, int dst_h, int x0, int y0, int win_w,
                                  int win_h, uint8_t *out);

#endif
