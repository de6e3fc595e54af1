/* Test tool: decodes images with cnx and writes each as a uint8 [H, W, 3]
 * .npy, so test_decode.py can compare them with Pillow's pixels.
 *
 *   decode_dump [--memory] [--max-pixels N] IMAGE OUT.npy [IMAGE OUT.npy ...]
 *
 * Prints one line per image, tab-separated:
 *   ok      IMAGE  WIDTHxHEIGHT
 *   error   IMAGE  STATUS-NAME  MESSAGE
 * Every image is tried, whatever happened to the ones before. Exits 0 when
 * all decoded, 1 when any failed, 2 on bad usage. --memory reads each file
 * here and decodes it with cnx_image_decode_memory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnx.h"
#include "npy.h"

static int usage(void) {
    fprintf(stderr,
            "usage: decode_dump [--memory] [--max-pixels N] IMAGE OUT.npy [IMAGE OUT.npy ...]\n");
    return 2;
}

/* Reads a whole file for --memory. Returns NULL, with *size 0, when it cannot:
 * cnx then reports the empty buffer, and the test sees the failure. */
static void *read_file(const char *path, size_t *size) {
    *size = 0;
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    size_t capacity = 1 << 16, used = 0;
    unsigned char *data = malloc(capacity);
    while (data) {
        used += fread(data + used, 1, capacity - used, file);
        if (used < capacity)
            break;
        capacity *= 2;
        unsigned char *grown = realloc(data, capacity);
        if (!grown)
            free(data);
        data = grown;
    }
    fclose(file);
    *size = data ? used : 0;
    return data;
}

static cnx_status decode(const char *path, int from_memory, int64_t max_pixels,
                         cnx_image *image) {
    if (!from_memory)
        return cnx_image_decode_file(path, max_pixels, image);
    size_t size;
    void *data = read_file(path, &size);
    cnx_status status = cnx_image_decode_memory(data, size, max_pixels, image);
    free(data);
    return status;
}

int main(int argc, char **argv) {
    int from_memory = 0;
    int64_t max_pixels = 0;
    int arg = 1;
    for (; arg < argc && strncmp(argv[arg], "--", 2) == 0; arg++) {
        if (strcmp(argv[arg], "--memory") == 0) {
            from_memory = 1;
        } else if (strcmp(argv[arg], "--max-pixels") == 0 && arg + 1 < argc) {
            char *end;
            errno = 0;
            max_pixels = strtoll(argv[++arg], &end, 10);
            if (*end || errno)
                return usage();
        } else {
            return usage();
        }
    }
    if (arg >= argc || (argc - arg) % 2 != 0)
        return usage();

    int failures = 0;
    for (; arg < argc; arg += 2) {
        const char *path = argv[arg], *npy_path = argv[arg + 1];
        cnx_image image;
        cnx_status status = decode(path, from_memory, max_pixels, &image);
        if (status != CNX_OK) {
            printf("error\t%s\t%s\t%s\n", path, cnx_status_string(status), cnx_last_error());
            failures++;
            continue;
        }
        int64_t shape[3] = {image.height, image.width, 3};
        if (npy_write(npy_path, image.rgb, NPY_UINT8, 3, shape) != 0)
            failures++;
        else
            printf("ok\t%s\t%dx%d\n", path, image.width, image.height);
        cnx_image_free(&image);
    }
    return failures ? 1 : 0;
}
