/* .npy reading and writing: a small ASCII header, then raw data. */
#include "npy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "input_open.h"

static const char npy_magic[] = "\x93NUMPY";

FILE *npy_begin(const char *path, npy_dtype dtype, int ndim, const int64_t *shape) {
    char header[256];
    int len = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                       dtype == NPY_FLOAT32 ? "<f4" : "|u1");
    for (int i = 0; i < ndim; i++)
        len += snprintf(header + len, sizeof header - len, "%" PRId64 "%s", shape[i],
                        ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
    len += snprintf(header + len, sizeof header - len, "), }");
    /* Pad with spaces so that magic + version + length + header ends on 64 bytes. */
    const int padded = (10 + len + 1 + 63) / 64 * 64;
    while (len < padded - 10 - 1)
        header[len++] = ' ';
    header[len++] = '\n';

    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cnx: %s: cannot write: %s\n", path, strerror(errno));
        return NULL;
    }
    const unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                        (unsigned char)(len & 0xff), (unsigned char)(len >> 8)};
    if (fwrite(preamble, 1, 10, f) != 10 || fwrite(header, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "cnx: %s: write failed: %s\n", path, strerror(errno));
        fclose(f);
        return NULL;
    }
    return f;
}

int npy_end(FILE *file, const char *path) {
    const int failed = ferror(file);
    if (fclose(file) != 0 || failed) {
        fprintf(stderr, "cnx: %s: write failed: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int npy_write(const char *path, const void *data, npy_dtype dtype, int ndim,
              const int64_t *shape) {
    FILE *f = npy_begin(path, dtype, ndim, shape);
    if (!f)
        return -1;
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= (size_t)shape[i];
    fwrite(data, dtype == NPY_FLOAT32 ? 4 : 1, count, f);
    return npy_end(f, path);
}

/* Finds "'key':" in the header dict and returns the text after it. */
static const char *header_value(const char *header, const char *key) {
    char quoted[32];
    snprintf(quoted, sizeof quoted, "'%s':", key);
    const char *at = strstr(header, quoted);
    if (!at)
        return NULL;
    at += strlen(quoted);
    while (*at == ' ')
        at++;
    return at;
}

static int parse_shape(const char *text, npy_reader *array) {
    if (*text != '(')
        return -1;
    text++;
    array->ndim = 0;
    for (;;) {
        while (*text == ' ' || *text == ',')
            text++;
        if (*text == ')')
            return 0;
        if (array->ndim == NPY_MAX_DIMS)
            return -1;
        char *end;
        errno = 0;
        long long value = strtoll(text, &end, 10);
        if (end == text || errno || value < 0)
            return -1;
        array->shape[array->ndim++] = value;
        text = end;
    }
}

/* Reads and checks the header of a float32 .npy; leaves f at the data. */
static int read_header(FILE *f, npy_reader *array, char *error, int error_size) {
    unsigned char preamble[12];
    if (fread(preamble, 1, 10, f) != 10 || memcmp(preamble, npy_magic, 6) != 0) {
        snprintf(error, error_size, "not an .npy file");
        return -1;
    }
    size_t header_len;
    if (preamble[6] == 1) {
        header_len = preamble[8] | (size_t)preamble[9] << 8;
    } else if (preamble[6] == 2 || preamble[6] == 3) {
        if (fread(preamble + 10, 1, 2, f) != 2) {
            snprintf(error, error_size, "truncated .npy header");
            return -1;
        }
        header_len = preamble[8] | (size_t)preamble[9] << 8 | (size_t)preamble[10] << 16 |
                     (size_t)preamble[11] << 24;
    } else {
        snprintf(error, error_size, "unknown .npy version %d", preamble[6]);
        return -1;
    }
    if (header_len > (1u << 20)) {
        snprintf(error, error_size, ".npy header too large");
        return -1;
    }
    char *header = malloc(header_len + 1);
    int status = -1;
    if (!header || fread(header, 1, header_len, f) != header_len) {
        snprintf(error, error_size, "truncated .npy header");
        goto done;
    }
    header[header_len] = '\0';
    const char *descr = header_value(header, "descr");
    const char *order = header_value(header, "fortran_order");
    const char *shape = header_value(header, "shape");
    if (!descr || !order || !shape) {
        snprintf(error, error_size, "malformed .npy header");
        goto done;
    }
    if (strncmp(descr, "'<f4'", 5) != 0) {
        snprintf(error, error_size, "dtype %.8s; cnx reads float32 ('<f4') tensors", descr);
        goto done;
    }
    if (strncmp(order, "False", 5) != 0) {
        snprintf(error, error_size, "Fortran-order arrays are not supported");
        goto done;
    }
    if (parse_shape(shape, array) != 0) {
        snprintf(error, error_size, "malformed .npy shape");
        goto done;
    }
    status = 0;
done:
    free(header);
    return status;
}

int npy_reader_open(const char *path, npy_reader *reader, char *error, int error_size) {
    memset(reader, 0, sizeof *reader);
    FILE *f = input_open(path);
    if (!f) {
        snprintf(error, error_size, "%s", strerror(errno));
        return -1;
    }
    npy_reader header;
    memset(&header, 0, sizeof header);
    int status = read_header(f, &header, error, error_size);
    size_t count = 1;
    for (int i = 0; i < header.ndim && status == 0; i++) {
        if (header.shape[i] != 0 && count > SIZE_MAX / 4 / (size_t)header.shape[i]) {
            snprintf(error, error_size, ".npy shape too large");
            status = -1;
        }
        count *= (size_t)header.shape[i];
    }
    /* The header must not promise more data than the file holds. */
    struct stat info;
    const long data_offset = ftell(f);
    if (status == 0 && (fstat(fileno(f), &info) != 0 || !S_ISREG(info.st_mode) ||
                        (uint64_t)info.st_size < (uint64_t)data_offset + (uint64_t)count * 4)) {
        snprintf(error, error_size, "truncated .npy data (the header promises %zu floats)", count);
        status = -1;
    }
    if (status != 0) {
        fclose(f);
        return -1;
    }
    reader->file = f;
    reader->ndim = header.ndim;
    memcpy(reader->shape, header.shape, sizeof reader->shape);
    reader->data_offset = data_offset;
    return 0;
}

int npy_reader_read(npy_reader *reader, size_t first, size_t count, float *out, char *error,
                    int error_size) {
    if (fseek(reader->file, reader->data_offset + (long)(first * sizeof(float)), SEEK_SET) != 0 ||
        fread(out, sizeof(float), count, reader->file) != count) {
        snprintf(error, error_size, "truncated .npy data");
        return -1;
    }
    return 0;
}

void npy_reader_close(npy_reader *reader) {
    if (reader->file)
        fclose(reader->file);
    memset(reader, 0, sizeof *reader);
}
