/* The checks and the pixel buffer both decoders share (image_buffer.h). */
#include "image_buffer.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>

#include "error.h"

cnx_status cnx_image_check_size(const char *name, uint32_t width, uint32_t height,
                                int64_t max_pixels) {
    if (width == 0 || height == 0)
        return cnx_fail(CNX_ERROR_IMAGE, "%s: image has zero size (%" PRIu32 "x%" PRIu32 ")",
                        name, width, height);
    uint64_t pixels = (uint64_t)width * height; /* cannot overflow: both are 32-bit */
    /* cnx_image holds int sizes; a side over INT_MAX is over any sane limit. */
    if (pixels > (uint64_t)max_pixels || width > INT_MAX || height > INT_MAX)
        return cnx_fail(CNX_ERROR_TOO_LARGE,
                        "%s: image is %" PRIu32 "x%" PRIu32 " = %" PRIu64
                        " pixels, over the limit of %" PRId64 " pixels",
                        name, width, height, pixels, max_pixels);
    return CNX_OK;
}

cnx_status cnx_image_allocate(const char *name, uint32_t width, uint32_t height,
                              cnx_image *image) {
    size_t bytes = (size_t)width * height;
    if (bytes > SIZE_MAX / 3)
        return cnx_fail(CNX_ERROR_TOO_LARGE, "%s: %" PRIu32 "x%" PRIu32 " image is too large",
                        name, width, height);
    bytes *= 3;
    image->rgb = malloc(bytes);
    if (!image->rgb)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY,
                        "%s: out of memory for %" PRIu32 "x%" PRIu32 " pixels (%zu bytes)",
                        name, width, height, bytes);
    image->width = (int)width;
    image->height = (int)height;
    return CNX_OK;
}

void cnx_image_free(cnx_image *image) {
    if (!image)
        return;
    free(image->rgb);
    *image = (cnx_image){0, 0, NULL};
}
