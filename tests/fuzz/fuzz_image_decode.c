/* libFuzzer target for image decoding: any bytes through
 * cnx_image_decode_memory, which picks the PNG or JPEG decoder by magic
 * bytes. Besides the sanitizers' checks, it traps on a broken contract: a
 * success must hand back a whole, in-limit image; a failure must leave the
 * image empty and set a one-line message that names the input.
 * Seeds: small PNGs and JPEGs that make_image_seeds.py writes. */
#include <stdint.h>
#include <string.h>

#include "cnx.h"

/* Small, so a forged header cannot make one input take seconds. */
#define FUZZ_MAX_PIXELS ((int64_t)4000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cnx_image image;
    if (cnx_image_decode_memory(data, size, FUZZ_MAX_PIXELS, &image) == CNX_OK) {
        if (image.width <= 0 || image.height <= 0 || !image.rgb ||
            (int64_t)image.width * image.height > FUZZ_MAX_PIXELS)
            __builtin_trap();
        /* Read every byte, so ASan sees a buffer shorter than promised. */
        size_t bytes = (size_t)image.width * image.height * 3;
        uint64_t sum = 0;
        for (size_t i = 0; i < bytes; i++)
            sum += image.rgb[i];
        if (sum > (uint64_t)bytes * 255)
            __builtin_trap();
    } else {
        const char *message = cnx_last_error();
        if (image.rgb || strncmp(message, "<memory>: ", 10) != 0 || strchr(message, '\n'))
            __builtin_trap();
    }
    cnx_image_free(&image);
    return 0;
}
