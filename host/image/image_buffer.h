/* Internal: the size checks and pixel buffer the PNG and JPEG decoders share
 * (cnx_image_free, in the public API, is defined here too). */
#ifndef CNX_HOST_IMAGE_BUFFER_H
#define CNX_HOST_IMAGE_BUFFER_H

#include <stdint.h>

#include "cnx.h"

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
