/* A validating safetensors reader: mmap, parse the JSON header with json-c,
 * check every tensor's dtype, shape and byte range before anyone reads it. */
#define _POSIX_C_SOURCE 200809L

#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "error.h"
#include "input_file.h"

#define HEADER_LENGTH_BYTES 8

/* ------------------------------------------------------------------ dtypes */

typedef struct dtype_info {
    const char *name;
    size_t size;
} dtype_info;

/* Every dtype the safetensors format defines with a whole-byte size, so that
 * files of other models still open and the caller can say "unsupported". */
static const dtype_info known_dtypes[] = {
    {"F32", 4},     {"F16", 2},     {"BF16", 2},    {"F64", 8},
    {"I64", 8},     {"U64", 8},     {"I32", 4},     {"U32", 4},
    {"I16", 2},     {"U16", 2},     {"I8", 1},      {"U8", 1},
    {"BOOL", 1},    {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1},
};

size_t cnx_safetensors_dtype_size(const char *dtype) {
    for (size_t i = 0; i < sizeof known_dtypes / sizeof known_dtypes[0]; i++)
        if (strcmp(dtype, known_dtypes[i].name) == 0) return known_dtypes[i].size;
    return 0;
}

int cnx_safetensors_is_float_dtype(const char *dtype) {
    return strcmp(dtype, "F32") == 0 || strcmp(dtype, "F16") == 0 ||
           strcmp(dtype, "BF16") == 0;
}

/* ----------------------------------------------------- float conversions */

static float float_from_bits(uint32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

float cnx_bf16_to_f32(uint16_t bits) {
    /* bfloat16 is the top half of an fp32: every pattern, NaN payloads and
     * subnormals included, widens by appending 16 zero bits. */
    return float_from_bits((uint32_t)bits << 16);
}

float cnx_f16_to_f32(uint16_t bits) {
    uint32_t sign = (uint32_t)(bits & 0x8000u) << 16;
    uint32_t exponent = (bits >> 10) & 0x1fu;
    uint32_t mantissa = bits & 0x3ffu;
    if (exponent == 0x1f) /* inf or NaN: keep the payload bits */
        return float_from_bits(sign | 0x7f800000u | (mantissa << 13));
    if (exponent == 0) {
        /* Zero or subnormal: mantissa * 2^-24, exact in fp32. */
        float magnitude = (float)mantissa * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    /* Normal: rebias the exponent from 15 to 127. */
    return float_from_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

static uint16_t load_u16_le(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t load_u32_le(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t load_u64_le(const uint8_t *p) {
    return (uint64_t)load_u32_le(p) | ((uint64_t)load_u32_le(p + 4) << 32);
}

cnx_status cnx_safetensors_to_f32(const cnx_safetensors *st,
                                  const cnx_safetensors_tensor *tensor, float *out) {
    const uint8_t *bytes = tensor->data;
    size_t n = (size_t)tensor->numel;
    if (strcmp(tensor->dtype, "F32") == 0) {
        for (size_t i = 0; i < n; i++) out[i] = float_from_bits(load_u32_le(bytes + 4 * i));
    } else if (strcmp(tensor->dtype, "F16") == 0) {
        for (size_t i = 0; i < n; i++) out[i] = cnx_f16_to_f32(load_u16_le(bytes + 2 * i));
    } else if (strcmp(tensor->dtype, "BF16") == 0) {
        for (size_t i = 0; i < n; i++) out[i] = cnx_bf16_to_f32(load_u16_le(bytes + 2 * i));
    } else {
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "%s: tensor %s has dtype %s; cnx reads F32, F16 or BF16",
                        st->path, tensor->name, tensor->dtype);
    }
    return CNX_OK;
}

void cnx_safetensors_format_shape(const int64_t *shape, int ndim, char *buf,
                                  size_t size) {
    size_t used = 0;
    int written = snprintf(buf, size, "[");
    for (int d = 0; d < ndim && written >= 0; d++) {
        used += (size_t)written;
        if (used >= size) return;
        written = snprintf(buf + used, size - used, "%s%" PRId64, d ? ", " : "", shape[d]);
    }
    if (written < 0) return;
    used += (size_t)written;
    if (used < size) snprintf(buf + used, size - used, "]");
}

/* ------------------------------------------------------------ the header */

/* A tensor's place in the data section, for the overlap check. */
typedef struct byte_range {
    uint64_t begin, end;
    size_t tensor;
} byte_range;

static int compare_ranges(const void *a, const void *b) {
    const byte_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* A size or offset from the header: a JSON integer in [0, INT64_MAX).
 * json-c saturates larger integers at INT64_MAX, so that value means
 * "out of range" too. */
typedef enum count_result { COUNT_OK, COUNT_NOT_AN_INTEGER, COUNT_OUT_OF_RANGE } count_result;

static count_result read_count(struct json_object *value, int64_t *out) {
    if (!json_object_is_type(value, json_type_int)) return COUNT_NOT_AN_INTEGER;
    *out = json_object_get_int64(value);
    if (*out < 0) return COUNT_NOT_AN_INTEGER;
    return *out == INT64_MAX ? COUNT_OUT_OF_RANGE : COUNT_OK;
}

static cnx_status parse_shape(const char *path, const char *name,
                              struct json_object *entry, cnx_safetensors_tensor *t) {
    struct json_object *shape;
    if (!json_object_object_get_ex(entry, "shape", &shape) ||
        !json_object_is_type(shape, json_type_array))
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: tensor %s: \"shape\" is missing or not an array",
                        path, name);
    size_t ndim = json_object_array_length(shape);
    if (ndim > CNX_SAFETENSORS_MAX_DIMS)
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: tensor %s has %zu dimensions, more than %d",
                        path, name, ndim, CNX_SAFETENSORS_MAX_DIMS);
    t->ndim = (int)ndim;
    t->numel = 1;
    for (size_t d = 0; d < ndim; d++) {
        int64_t extent = 0;
        count_result result = read_count(json_object_array_get_idx(shape, d), &extent);
        if (result != COUNT_OK)
            return cnx_fail(CNX_ERROR_WEIGHTS, "%s: tensor %s: shape entry %zu is %s", path,
                            name, d,
                            result == COUNT_OUT_OF_RANGE ? "out of range"
                                                         : "not a non-negative integer");
        t->shape[d] = extent;
        if (extent != 0 && t->numel > INT64_MAX / extent)
            return cnx_fail(CNX_ERROR_WEIGHTS, "%s: tensor %s: shape is too large", path, name);
        t->numel *= extent;
    }
    return CNX_OK;
}

static cnx_status parse_tensor(const char *path, const char *name,
                               struct json_object *entry, const uint8_t *data,
                               uint64_t data_size, cnx_safetensors_tensor *t,
                               byte_range *range) {
    t->name = name;
    if (!json_object_is_type(entry, json_type_object))
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: tensor %s: header entry is not an object",
                        path, name);

    struct json_object *dtype;
    if (!json_object_object_get_ex(entry, "dtype", &dtype) ||
        !json_object_is_type(dtype, json_type_string))
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: tensor %s: \"dtype\" is missing or not a string",
                        path, name);
    t->dtype = json_object_get_string(dtype);
    t->element_size = cnx_safetensors_dtype_size(t->dtype);
    if (t->element_size == 0)
        return cnx_fail(CNX_ERROR_UNSUPPORTED, "%s: tensor %s has unknown dtype \"%s\"", path,
                        name, t->dtype);

    cnx_status status = parse_shape(path, name, entry, t);
    if (status != CNX_OK) return status;

    struct json_object *offsets;
    if (!json_object_object_get_ex(entry, "data_offsets", &offsets) ||
        !json_object_is_type(offsets, json_type_array) ||
        json_object_array_length(offsets) != 2)
        return cnx_fail(CNX_ERROR_WEIGHTS,
                        "%s: tensor %s: \"data_offsets\" is missing or not [begin, end]", path,
                        name);
    int64_t begin = 0, end = 0;
    count_result begin_result = read_count(json_object_array_get_idx(offsets, 0), &begin);
    count_result end_result = read_count(json_object_array_get_idx(offsets, 1), &end);
    if (begin_result == COUNT_NOT_AN_INTEGER || end_result == COUNT_NOT_AN_INTEGER)
        return cnx_fail(CNX_ERROR_WEIGHTS,
                        "%s: tensor %s: data_offsets are not non-negative integers", path, name);
    if (begin_result == COUNT_OUT_OF_RANGE || end_result == COUNT_OUT_OF_RANGE)
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: tensor %s: data_offsets are out of range", path,
                        name);
    if (begin > end)
        return cnx_fail(CNX_ERROR_WEIGHTS,
                        "%s: tensor %s: bad data_offsets: begin %" PRId64 " is after end %" PRId64,
                        path, name, begin, end);
    if ((uint64_t)end > data_size)
        return cnx_fail(CNX_ERROR_WEIGHTS,
                        "%s: truncated or bad data_offsets: tensor %s ends at data byte %" PRId64
                        ", past the end of the data (%" PRIu64 " bytes)",
                        path, name, end, data_size);

    /* end <= data_size, so the span fits in memory; numel * size may not. */
    uint64_t span = (uint64_t)(end - begin);
    if ((uint64_t)t->numel > span / t->element_size ||
        (uint64_t)t->numel * t->element_size != span) {
        char shape[160];
        cnx_safetensors_format_shape(t->shape, t->ndim, shape, sizeof shape);
        return cnx_fail(CNX_ERROR_WEIGHTS,
                        "%s: tensor %s: data_offsets span %" PRIu64 " bytes, but %s %s needs %"
                        PRId64 " elements of %zu bytes",
                        path, name, span, t->dtype, shape, t->numel, t->element_size);
    }
    t->data = data + begin;
    t->nbytes = (size_t)span;
    range->begin = (uint64_t)begin;
    range->end = (uint64_t)end;
    return CNX_OK;
}

static cnx_status parse_metadata(const char *path, struct json_object *object,
                                 cnx_safetensors *st) {
    if (!json_object_is_type(object, json_type_object))
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: \"__metadata__\" is not a JSON object", path);
    size_t count = (size_t)json_object_object_length(object);
    st->metadata = calloc(count ? count : 1, sizeof *st->metadata);
    if (!st->metadata)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory reading the metadata", path);
    json_object_object_foreach(object, key, value) {
        if (!json_object_is_type(value, json_type_string))
            return cnx_fail(CNX_ERROR_WEIGHTS, "%s: __metadata__ value of \"%s\" is not a string",
                            path, key);
        st->metadata[st->num_metadata].key = key;
        st->metadata[st->num_metadata].value = json_object_get_string(value);
        st->num_metadata++;
    }
    return CNX_OK;
}

static cnx_status check_no_overlap(const char *path, byte_range *ranges, size_t count,
                                   const cnx_safetensors *st) {
    qsort(ranges, count, sizeof *ranges, compare_ranges);
    const byte_range *previous = NULL; /* the non-empty range reaching furthest */
    for (size_t i = 0; i < count; i++) {
        if (ranges[i].begin == ranges[i].end) continue; /* empty: overlaps nothing */
        if (previous && ranges[i].begin < previous->end)
            return cnx_fail(CNX_ERROR_WEIGHTS,
                            "%s: tensors %s and %s overlap in the data section (bad data_offsets)",
                            path, st->tensors[previous->tensor].name,
                            st->tensors[ranges[i].tensor].name);
        if (!previous || ranges[i].end > previous->end) previous = &ranges[i];
    }
    return CNX_OK;
}

static cnx_status parse_json(const char *path, const char *text, size_t length,
                             struct json_object **root) {
    struct json_tokener *tokener = json_tokener_new();
    if (!tokener)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory reading the header", path);
    json_tokener_set_flags(tokener, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    /* length <= 100 MB was checked, so it fits json-c's int. */
    *root = json_tokener_parse_ex(tokener, text, (int)length);
    enum json_tokener_error error = json_tokener_get_error(tokener);
    size_t end = json_tokener_get_parse_end(tokener);
    json_tokener_free(tokener);

    if (!*root && error == json_tokener_success) /* the literal null */
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: safetensors header is not a JSON object", path);
    if (!*root) {
        const char *cause = error == json_tokener_continue
                                ? "unexpected end of data"
                                : json_tokener_error_desc(error);
        return cnx_fail(CNX_ERROR_WEIGHTS,
                        "%s: safetensors header is not valid JSON (%s at header byte %zu)", path,
                        cause, end);
    }
    /* Writers pad the header with spaces; anything else after it is corrupt. */
    for (size_t i = end; i < length; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
            json_object_put(*root);
            *root = NULL;
            return cnx_fail(CNX_ERROR_WEIGHTS,
                            "%s: safetensors header is not valid JSON (stray byte at header "
                            "byte %zu)", path, i);
        }
    }
    if (!json_object_is_type(*root, json_type_object)) {
        json_object_put(*root);
        *root = NULL;
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: safetensors header is not a JSON object", path);
    }
    return CNX_OK;
}

static cnx_status parse_header(const uint8_t *bytes, size_t size, cnx_safetensors *st) {
    const char *path = st->path;
    if (size < HEADER_LENGTH_BYTES)
        return cnx_fail(CNX_ERROR_WEIGHTS,
                        "%s: truncated: %zu bytes, too short for a safetensors header", path,
                        size);
    uint64_t header_size = load_u64_le(bytes);
    if (header_size > size - HEADER_LENGTH_BYTES)
        return cnx_fail(CNX_ERROR_WEIGHTS,
                        "%s: truncated or not safetensors: header length %" PRIu64
                        " runs past the end of the file (%zu bytes)",
                        path, header_size, size);
    if (header_size > CNX_SAFETENSORS_MAX_HEADER_BYTES)
        return cnx_fail(CNX_ERROR_TOO_LARGE,
                        "%s: safetensors header is %" PRIu64 " bytes, over the %" PRIu64
                        "-byte limit",
                        path, header_size, CNX_SAFETENSORS_MAX_HEADER_BYTES);

    const char *text = (const char *)bytes + HEADER_LENGTH_BYTES;
    cnx_status status = parse_json(path, text, (size_t)header_size, &st->header);
    if (status != CNX_OK) return status;

    const uint8_t *data = bytes + HEADER_LENGTH_BYTES + header_size;
    uint64_t data_size = size - HEADER_LENGTH_BYTES - header_size;
    size_t entries = (size_t)json_object_object_length(st->header);
    st->tensors = calloc(entries ? entries : 1, sizeof *st->tensors);
    byte_range *ranges = calloc(entries ? entries : 1, sizeof *ranges);
    if (!st->tensors || !ranges) {
        free(ranges);
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory reading the header", path);
    }

    json_object_object_foreach(st->header, name, entry) {
        if (strcmp(name, "__metadata__") == 0) {
            status = parse_metadata(path, entry, st);
        } else {
            size_t i = st->num_tensors;
            ranges[i].tensor = i;
            status = parse_tensor(path, name, entry, data, data_size, &st->tensors[i],
                                  &ranges[i]);
            st->num_tensors++;
        }
        if (status != CNX_OK) {
            free(ranges);
            return status;
        }
    }
    status = check_no_overlap(path, ranges, st->num_tensors, st);
    free(ranges);
    return status;
}

/* --------------------------------------------------------- open and close */

static cnx_status start(const char *name, cnx_safetensors *st) {
    memset(st, 0, sizeof *st);
    size_t length = strlen(name) + 1;
    st->path = malloc(length);
    if (!st->path) return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory", name);
    memcpy(st->path, name, length);
    return CNX_OK;
}

cnx_status cnx_safetensors_open_memory(const void *bytes, size_t size, const char *name,
                                       cnx_safetensors *st) {
    if ((!bytes && size) || !name || !st)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_safetensors_open_memory: bad arguments");
    cnx_status status = start(name, st);
    if (status == CNX_OK) status = parse_header(bytes, size, st);
    if (status != CNX_OK) cnx_safetensors_close(st);
    return status;
}

cnx_status cnx_safetensors_open(const char *path, cnx_safetensors *st) {
    if (!path || !st)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_safetensors_open: %s is NULL",
                        path ? "st" : "path");
    memset(st, 0, sizeof *st);
    int fd;
    struct stat info;
    cnx_status opened = cnx_open_input_file(path, "a safetensors file", &fd, &info);
    if (opened != CNX_OK) return opened;
    if (!S_ISREG(info.st_mode)) {
        close(fd);
        return cnx_fail(CNX_ERROR_IO, "%s: not a regular file", path);
    }
    if (info.st_size == 0) {
        close(fd);
        return cnx_fail(CNX_ERROR_IO, "%s: empty file", path);
    }
    if ((uint64_t)info.st_size > SIZE_MAX) {
        close(fd);
        return cnx_fail(CNX_ERROR_TOO_LARGE, "%s: file too large to map", path);
    }
    size_t size = (size_t)info.st_size;
    void *mapping = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int error = errno;
    close(fd); /* the mapping stays valid */
    if (mapping == MAP_FAILED)
        return cnx_fail(CNX_ERROR_IO, "%s: cannot map: %s", path, strerror(error));

    cnx_status status = start(path, st);
    st->mapping = mapping;
    st->mapping_size = size;
    if (status == CNX_OK) status = parse_header(mapping, size, st);
    if (status != CNX_OK) cnx_safetensors_close(st);
    return status;
}

void cnx_safetensors_close(cnx_safetensors *st) {
    if (st->header) json_object_put(st->header);
    if (st->mapping) munmap(st->mapping, st->mapping_size);
    free(st->tensors);
    free(st->metadata);
    free(st->path);
    memset(st, 0, sizeof *st);
}

/* ---------------------------------------------------------------- lookups */

const cnx_safetensors_tensor *cnx_safetensors_find(const cnx_safetensors *st,
                                                   const char *name) {
    for (size_t i = 0; i < st->num_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

const char *cnx_safetensors_metadata(const cnx_safetensors *st, const char *key) {
    for (size_t i = 0; i < st->num_metadata; i++)
        if (strcmp(st->metadata[i].key, key) == 0) return st->metadata[i].value;
    return NULL;
}
