/* Internal: what image_decode.c (format dispatch), png_decode.c and
 * jpeg_decode.c share. Each decoder turns a whole file held in memory into
 * RGB8 with the pixels Pillow's Image.open(path).convert("RGB") gives, or
 * fails with a message that starts with name. */
#ifndef CNX_HOST_IMAGE_DECODE_H
#define CNX_HOST_IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "cnx.h"

/* data: the whole file; name: what messages call it (a path or "<memory>");
 * max_pixels: already resolved, > 0. On failure *image is left empty. */
cnx_status cnx_png_decode(const uint8_t *data, size_t size, const char *name,
                          int64_t max_pixels, cnx_image *image);
cnx_status cnx_jpeg_decode(const uint8_t *data, size_t size, const char *name,
                           int64_t max_pixels, cnx_image *image);

/* Refuses zero dimensions (CNX_ERROR_IMAGE) and width*height over
 * max_pixels (CNX_ERROR_TOO_LARGE). Call it with the header's size, before
 * anything the size of the image is allocated. */
cnx_status cnx_image_check_size(const char *name, uint32_t width, uint32_t height,
                                int64_t max_pixels);

/* Sets the size of an empty image and allocates its RGB8 pixels; free them
 * with cnx_image_free. The size must have passed cnx_image_check_size. */
cnx_status cnx_image_allocate(const char *name, uint32_t width, uint32_t height,
                              cnx_image *image);

#endif
