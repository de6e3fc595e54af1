/* Image files to RGB8: reading the file, telling PNG from JPEG by their
 * magic bytes (never by the extension), and handing the bytes to a decoder. */
#include "jpeg_decode.h"
#include "png_decode.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "input_file.h"

/* What messages call an image given by cnx_image_decode_memory. */
#define MEMORY_IMAGE_NAME "<memory>"

/* No PNG or JPEG that fits the pixel limit comes near this; the cap keeps a
 * device file such as /dev/zero from filling memory. */
#define MAX_IMAGE_FILE_BYTES ((size_t)1 << 31)

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
static const uint8_t jpeg_signature[3] = {0xff, 0xd8, 0xff}; /* SOI, then a marker */

/* ---------------------------------------------------------- format by magic */

/* True when data starts like magic: its first bytes match, and there are at
 * least min_size of them (so a cut-off file still goes to its decoder, which
 * then says "truncated"). */
static int starts_with(const uint8_t *data, size_t size, const uint8_t *magic,
                       size_t magic_size, size_t min_size) {
    size_t n = size < magic_size ? size : magic_size;
    return size >= min_size && memcmp(data, magic, n) == 0;
}

/* The formats people feed an image classifier by mistake, so the message can
 * name them. NULL when unknown. */
static const char *other_image_format(const uint8_t *data, size_t size) {
    if (size >= 6 && (memcmp(data, "GIF87a", 6) == 0 || memcmp(data, "GIF89a", 6) == 0))
        return "GIF";
    if (size >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0)
        return "WebP";
    if (size >= 4 && (memcmp(data, "II*\0", 4) == 0 || memcmp(data, "MM\0*", 4) == 0))
        return "TIFF";
    if (size >= 2 && memcmp(data, "BM", 2) == 0)
        return "BMP";
    return NULL;
}

/* Printable ASCII throughout the first bytes: a text file, perhaps a list of
 * paths or an HTML error page saved under an image's name. */
static int looks_like_text(const uint8_t *data, size_t size) {
    size_t n = size < 512 ? size : 512;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = data[i];
        if (!((c >= 0x20 && c < 0x7f) || c == '\t' || c == '\n' || c == '\r' || c == '\f'))
            return 0;
    }
    return 1;
}

static cnx_status decode_named(const uint8_t *data, size_t size, const char *name,
                               int64_t max_pixels, cnx_image *image) {
    if (size == 0)
        return cnx_fail(CNX_ERROR_IMAGE, "%s: empty file", name);
    if (max_pixels <= 0)
        max_pixels = CNX_DEFAULT_MAX_PIXELS;
    if (starts_with(data, size, png_signature, sizeof png_signature, 4))
        return cnx_png_decode(data, size, name, max_pixels, image);
    if (starts_with(data, size, jpeg_signature, sizeof jpeg_signature, 2))
        return cnx_jpeg_decode(data, size, name, max_pixels, image);
    const char *format = other_image_format(data, size);
    if (format)
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "%s: %s images are not supported (only PNG and JPEG)", name, format);
    if (looks_like_text(data, size))
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "%s: not a PNG or JPEG image (it looks like a text file)", name);
    char leading[16] = "";
    for (size_t i = 0; i < size && i < 4; i++)
        snprintf(leading + 3 * i, sizeof leading - 3 * i, " %02x", data[i]);
    return cnx_fail(CNX_ERROR_UNSUPPORTED, "%s: not a PNG or JPEG image (it starts with%s)", name,
                    leading);
}

/* ------------------------------------------------------------- file reading */

/* Reads all of path into a malloc'd buffer. Reads until end of file rather
 * than trusting st_size, so pipes and files that change size work too. */
static cnx_status read_whole_file(const char *path, uint8_t **data, size_t *size) {
    int fd;
    struct stat info;
    cnx_status opened = cnx_open_input_file(path, "an image file", &fd, &info);
    if (opened != CNX_OK)
        return opened;
    size_t capacity = S_ISREG(info.st_mode) && info.st_size > 0 ? (size_t)info.st_size + 1 : 65536;
    if (capacity > MAX_IMAGE_FILE_BYTES)
        capacity = MAX_IMAGE_FILE_BYTES;
    uint8_t *buffer = NULL;
    size_t allocated = 0, used = 0;
    cnx_status status = CNX_OK;
    for (;;) {
        if (used == capacity) { /* full: grow, or give up at the cap */
            if (capacity == MAX_IMAGE_FILE_BYTES) {
                status = cnx_fail(CNX_ERROR_TOO_LARGE, "%s: file is over %zu bytes", path,
                                  MAX_IMAGE_FILE_BYTES);
                break;
            }
            capacity = capacity > MAX_IMAGE_FILE_BYTES / 2 ? MAX_IMAGE_FILE_BYTES : capacity * 2;
        }
        if (allocated != capacity) {
            uint8_t *grown = realloc(buffer, capacity);
            if (!grown) {
                status = cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory reading %zu bytes",
                                  path, capacity);
                break;
            }
            buffer = grown;
            allocated = capacity;
        }
        ssize_t got = read(fd, buffer + used, capacity - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            status = cnx_fail(CNX_ERROR_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (got == 0)
            break;
        used += (size_t)got;
        /* Not a PNG or JPEG: the first bytes are enough for the message, so
         * a large or endless file (a video, /dev/zero) is not read whole. */
        if (used >= sizeof png_signature && !starts_with(buffer, used, png_signature, sizeof png_signature, 0) &&
            !starts_with(buffer, used, jpeg_signature, sizeof jpeg_signature, 0))
            break;
    }
    close(fd);
    if (status != CNX_OK) {
        free(buffer);
        return status;
    }
    *data = buffer;
    *size = used;
    return CNX_OK;
}

/* ------------------------------------------------------------------ public */

cnx_status cnx_image_decode_file(const char *path, int64_t max_pixels, cnx_image *image) {
    if (!image)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_image_decode_file: image is NULL");
    *image = (cnx_image){0, 0, NULL};
    if (!path)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_image_decode_file: path is NULL");
    uint8_t *data = NULL;
    size_t size = 0;
    cnx_status status = read_whole_file(path, &data, &size);
    if (status != CNX_OK)
        return status;
    status = decode_named(data, size, path, max_pixels, image);
    free(data);
    return status;
}

cnx_status cnx_image_decode_memory(const void *data, size_t size, int64_t max_pixels,
                                   cnx_image *image) {
    if (!image)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_image_decode_memory: image is NULL");
    *image = (cnx_image){0, 0, NULL};
    if (!data && size > 0)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_image_decode_memory: data is NULL");
    return decode_named(data, size, MEMORY_IMAGE_NAME, max_pixels, image);
}
