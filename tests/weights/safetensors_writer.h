/* Test helper: builds safetensors files in memory and writes them, both
 * well-formed ConvNeXt V1 and V2 models (torchvision, timm or transformers
 * names, F32/F16/BF16) and
 * hand-made byte strings for malformed cases. Independent of the library's
 * reader, so the tests check one against the other. */
#ifndef CNX_TESTS_SAFETENSORS_WRITER_H
#define CNX_TESTS_SAFETENSORS_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "convnext_names.h"

#define WRITER_MAX_DIMS 9 /* one more than the reader allows, to test that */

typedef struct writer_tensor {
    char name[160];
    char dtype[8];   /* F32, F16, BF16, F64 or I64 */
    int ndim;
    int64_t shape[WRITER_MAX_DIMS];
    int64_t numel;
    float *values;   /* numel values, encoded into dtype on writing */
    /* Where the loader should put it (set by writer_build_convnext). */
    cnx_role role;
    int stage, block;
} writer_tensor;

typedef struct writer_model {
    writer_tensor *tensors;
    size_t count;
    char metadata[2048]; /* JSON text of "__metadata__", "" for none */
} writer_model;

typedef struct convnext_spec {
    cnx_naming naming;
    int num_stages;
    int depths[4];
    int widths[4];
    int num_classes;
    const char *dtype;
    int conv_mlp;       /* timm atto..nano: fc weights as [4C,C,1,1] 1x1 convs */
    int grn;            /* ConvNeXt V2: GRN and no layer scale (timm, transformers) */
    const char *prefix; /* "", "module." or "model." */
} convnext_spec;

/* The small model of the tests: depths 1,1,2,1, widths 8..64, 5 classes. */
convnext_spec writer_small_spec(cnx_naming naming, const char *dtype);

/* Fills m (zeroed first) with every parameter of the spec. Values are
 * multiples of 1/16 in [-1.875, 1.875], exact in F16 and BF16, and depend
 * only on the parameter's place in the model, not on the naming scheme. */
void writer_build_convnext(writer_model *m, const convnext_spec *spec);

writer_tensor *writer_add(writer_model *m, const char *name, const char *dtype, int ndim,
                          const int64_t *shape);
writer_tensor *writer_find(writer_model *m, const char *name);
void writer_remove(writer_model *m, const char *name);
/* New shape, fresh values. */
void writer_reshape(writer_tensor *t, int ndim, const int64_t *shape);
/* Moves the last tensor to the front, and so on: a different file order. */
void writer_reverse(writer_model *m);
void writer_free(writer_model *m);

/* Writes m as a safetensors file. Returns 0 on success. */
int writer_write(const writer_model *m, const char *path);

/* The file's bytes in a malloc'd buffer (for truncation tests). */
unsigned char *writer_serialize(const writer_model *m, size_t *size, size_t *header_end);

/* An 8-byte length, the header text and data. header_length is what the
 * length field says; pass UINT64_MAX to write the true length. */
int writer_write_raw(const char *path, const char *header, uint64_t header_length,
                     const void *data, size_t data_size);
int writer_write_bytes(const char *path, const void *bytes, size_t size);

/* fp32 to F16/BF16 bits for values that are exact in them, plus inf/NaN. */
uint16_t writer_f32_to_f16(float value);
uint16_t writer_f32_to_bf16(float value);

#endif
