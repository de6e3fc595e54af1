/* Internal: a validating reader for safetensors files (any model, any dtype).
 *
 * The file is 8 bytes of little-endian u64 header length N, N bytes of JSON
 * header, then the data section. The header maps tensor names to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
 * data section) and may hold "__metadata__": {string: string}.
 *
 * Opening checks everything a later reader would otherwise trip over: sizes,
 * offsets within the data, byte counts matching shapes, no overlapping
 * tensors. A tensor's bytes are then safe to read through .data. */
#ifndef CNX_WEIGHTS_SAFETENSORS_H
#define CNX_WEIGHTS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "cnx.h"

#define CNX_SAFETENSORS_MAX_DIMS 8
/* Headers over this size are refused before parsing (CNX_ERROR_TOO_LARGE). */
#define CNX_SAFETENSORS_MAX_HEADER_BYTES ((uint64_t)100 * 1000 * 1000)

struct json_object;

typedef struct cnx_safetensors_tensor {
    const char *name;       /* as in the header */
    const char *dtype;      /* as in the header: "F32", "BF16", "I64", ... */
    size_t element_size;    /* bytes per element of dtype */
    int ndim;
    int64_t shape[CNX_SAFETENSORS_MAX_DIMS];
    int64_t numel;          /* 1 for a scalar (ndim 0) */
    const void *data;       /* nbytes bytes, unaligned, inside the file */
    size_t nbytes;
} cnx_safetensors_tensor;

typedef struct cnx_safetensors_metadata_entry {
    const char *key;
    const char *value;
} cnx_safetensors_metadata_entry;

typedef struct cnx_safetensors {
    char *path;                       /* for error messages */
    cnx_safetensors_tensor *tensors;  /* in header order */
    size_t num_tensors;
    cnx_safetensors_metadata_entry *metadata;
    size_t num_metadata;

    /* Private: what the strings and data point into. */
    struct json_object *header;
    void *mapping;     /* NULL when the bytes belong to the caller */
    size_t mapping_size;
} cnx_safetensors;

/* Maps the file read-only and validates it. On failure *st is zeroed and the
 * message reads "PATH: cause": CNX_ERROR_IO (missing, unreadable, empty, a
 * directory), CNX_ERROR_WEIGHTS (truncated or malformed), CNX_ERROR_TOO_LARGE
 * (header over the limit), CNX_ERROR_UNSUPPORTED (a dtype nobody defines). */
cnx_status cnx_safetensors_open(const char *path, cnx_safetensors *st);

/* The same checks on bytes in memory, which must outlive *st. name stands in
 * for the path in messages. For fuzzing and embedders holding the bytes. */
cnx_status cnx_safetensors_open_memory(const void *bytes, size_t size,
                                       const char *name, cnx_safetensors *st);

/* NULL when there is no tensor of that name. */
const cnx_safetensors_tensor *cnx_safetensors_find(const cnx_safetensors *st,
                                                   const char *name);

/* The "__metadata__" value for key, or NULL. */
const char *cnx_safetensors_metadata(const cnx_safetensors *st, const char *key);

/* Safe on a zeroed or already closed *st. */
void cnx_safetensors_close(cnx_safetensors *st);

/* "[96, 3, 4, 4]" into buf, for messages; truncated to fit. */
void cnx_safetensors_format_shape(const int64_t *shape, int ndim, char *buf,
                                  size_t size);

/* Bytes per element of a safetensors dtype name; 0 for an unknown name. */
size_t cnx_safetensors_dtype_size(const char *dtype);

/* 1 when cnx_safetensors_to_f32 can read the dtype: F32, F16 or BF16. */
int cnx_safetensors_is_float_dtype(const char *dtype);

/* Writes the tensor's numel elements to out as fp32. F16 and BF16 convert
 * exactly (subnormals, infinities and NaNs included). Returns
 * CNX_ERROR_UNSUPPORTED for any other dtype. */
cnx_status cnx_safetensors_to_f32(const cnx_safetensors *st,
                                  const cnx_safetensors_tensor *tensor, float *out);

/* IEEE binary16 and bfloat16 bit patterns to fp32, exactly. */
float cnx_f16_to_f32(uint16_t bits);
float cnx_bf16_to_f32(uint16_t bits);

#endif
