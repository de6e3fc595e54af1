/* Internal: the PNG decoder image_decode.c dispatches to. It turns a whole
 * file held in memory into RGB8 with the pixels Pillow's
 * Image.open(path).convert("RGB") gives, or fails with a message that starts
 * with name. */
#ifndef CNX_HOST_PNG_DECODE_H
#define CNX_HOST_PNG_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "cnx.h"

/* data: the whole file; name: what messages call it (a path or "<memory>");
 * max_pixels: already resolved, > 0. On failure *image is left empty. */
cnx_status cnx_png_decode(const uint8_t *data, size_t size, const char *name,
                          int64_t max_pixels, cnx_image *image);

#endif
