#include "safetensors_writer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Test scaffolding: out of memory is not a case the tests cover. */
static void *checked(void *p) {
    if (!p) {
        fprintf(stderr, "test writer: out of memory\n");
        exit(2);
    }
    return p;
}

static size_t element_size(const char *dtype) {
    if (strcmp(dtype, "F16") == 0 || strcmp(dtype, "BF16") == 0) return 2;
    if (strcmp(dtype, "F64") == 0 || strcmp(dtype, "I64") == 0) return 8;
    return 4;
}

static void fill_values(writer_tensor *t, size_t seed) {
    for (int64_t e = 0; e < t->numel; e++)
        t->values[e] = (float)((int64_t)((seed * 37 + (size_t)e * 11) % 61) - 30) / 16.0f;
}

void writer_reshape(writer_tensor *t, int ndim, const int64_t *shape) {
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->numel *= shape[d];
    }
    free(t->values);
    t->values = checked(malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float)));
    fill_values(t, 12345);
}

writer_tensor *writer_add(writer_model *m, const char *name, const char *dtype, int ndim,
                          const int64_t *shape) {
    m->tensors = checked(realloc(m->tensors, (m->count + 1) * sizeof *m->tensors));
    writer_tensor *t = &m->tensors[m->count];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    t->role = CNX_ROLE_COUNT;
    t->stage = t->block = -1;
    writer_reshape(t, ndim, shape);
    fill_values(t, m->count);
    m->count++;
    return t;
}

writer_tensor *writer_find(writer_model *m, const char *name) {
    for (size_t i = 0; i < m->count; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

void writer_remove(writer_model *m, const char *name) {
    writer_tensor *t = writer_find(m, name);
    if (!t) return;
    free(t->values);
    size_t i = (size_t)(t - m->tensors);
    memmove(t, t + 1, (m->count - i - 1) * sizeof *t);
    m->count--;
}

void writer_reverse(writer_model *m) {
    for (size_t i = 0, j = m->count ? m->count - 1 : 0; i < j; i++, j--) {
        writer_tensor swap = m->tensors[i];
        m->tensors[i] = m->tensors[j];
        m->tensors[j] = swap;
    }
}

void writer_free(writer_model *m) {
    for (size_t i = 0; i < m->count; i++) free(m->tensors[i].values);
    free(m->tensors);
    memset(m, 0, sizeof *m);
}

convnext_spec writer_small_spec(cnx_naming naming, const char *dtype) {
    convnext_spec spec = {naming, 4, {1, 1, 2, 1}, {8, 16, 32, 64}, 5, dtype, 0, 0, ""};
    return spec;
}

/* ------------------------------------------------------------ the model */

typedef struct builder {
    writer_model *m;
    const convnext_spec *spec;
} builder;

/* transformers' base model: ConvNextModel or ConvNextV2Model. */
static const char *hf_base(const builder *b) {
    return b->spec->grn ? "convnextv2" : "convnext";
}

static void add_param(builder *b, cnx_role role, int stage, int block, const char *name,
                      int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    char full[160];
    snprintf(full, sizeof full, "%s%s", b->spec->prefix, name);
    int64_t shape[4] = {d0, d1, d2, d3};
    writer_tensor *t = writer_add(b->m, full, b->spec->dtype, ndim, shape);
    t->role = role;
    t->stage = stage;
    t->block = block;
}

/* A block parameter's name: torchvision features.{2s+1}.{j}.*, timm
 * stages.s.blocks.j.*, transformers convnext.encoder.stages.s.layers.j.*. */
static const char *block_name(const builder *b, char *name, size_t size, int s, int j,
                              const char *tv_part, const char *timm_part, const char *hf_part) {
    switch (b->spec->naming) {
    case CNX_NAMING_TORCHVISION:
        snprintf(name, size, "features.%d.%d.%s", 2 * s + 1, j, tv_part);
        break;
    case CNX_NAMING_TIMM: snprintf(name, size, "stages.%d.blocks.%d.%s", s, j, timm_part); break;
    default: snprintf(name, size, "%s.encoder.stages.%d.layers.%d.%s", hf_base(b), s, j, hf_part);
    }
    return name;
}

static void add_block(builder *b, int s, int j, int64_t c) {
    const cnx_naming naming = b->spec->naming;
    char name[160];
#define BLOCK_NAME(tv_part, timm_part, hf_part) \
    block_name(b, name, sizeof name, s, j, tv_part, timm_part, hf_part)
    int fc_ndim = b->spec->conv_mlp ? 4 : 2;
    add_param(b, CNX_ROLE_BLOCK_DW_WEIGHT, s, j, BLOCK_NAME("block.0.weight", "conv_dw.weight", "dwconv.weight"), 4, c, 1, 7, 7);
    add_param(b, CNX_ROLE_BLOCK_DW_BIAS, s, j, BLOCK_NAME("block.0.bias", "conv_dw.bias", "dwconv.bias"), 1, c, 0, 0, 0);
    add_param(b, CNX_ROLE_BLOCK_NORM_WEIGHT, s, j, BLOCK_NAME("block.2.weight", "norm.weight", "layernorm.weight"), 1, c, 0, 0, 0);
    add_param(b, CNX_ROLE_BLOCK_NORM_BIAS, s, j, BLOCK_NAME("block.2.bias", "norm.bias", "layernorm.bias"), 1, c, 0, 0, 0);
    add_param(b, CNX_ROLE_BLOCK_FC1_WEIGHT, s, j, BLOCK_NAME("block.3.weight", "mlp.fc1.weight", "pwconv1.weight"), fc_ndim, 4 * c, c, 1, 1);
    add_param(b, CNX_ROLE_BLOCK_FC1_BIAS, s, j, BLOCK_NAME("block.3.bias", "mlp.fc1.bias", "pwconv1.bias"), 1, 4 * c, 0, 0, 0);
    if (b->spec->grn) { /* V2: GRN, no layer scale */
        int hf = naming == CNX_NAMING_TRANSFORMERS;
        add_param(b, CNX_ROLE_BLOCK_GRN_WEIGHT, s, j, BLOCK_NAME("", "mlp.grn.weight", "grn.weight"),
                  hf ? 4 : 1, hf ? 1 : 4 * c, 1, 1, 4 * c);
        add_param(b, CNX_ROLE_BLOCK_GRN_BIAS, s, j, BLOCK_NAME("", "mlp.grn.bias", "grn.bias"),
                  hf ? 4 : 1, hf ? 1 : 4 * c, 1, 1, 4 * c);
    }
    add_param(b, CNX_ROLE_BLOCK_FC2_WEIGHT, s, j, BLOCK_NAME("block.5.weight", "mlp.fc2.weight", "pwconv2.weight"), fc_ndim, c, 4 * c, 1, 1);
    add_param(b, CNX_ROLE_BLOCK_FC2_BIAS, s, j, BLOCK_NAME("block.5.bias", "mlp.fc2.bias", "pwconv2.bias"), 1, c, 0, 0, 0);
    if (b->spec->grn)
        ;
    else if (naming == CNX_NAMING_TORCHVISION)
        add_param(b, CNX_ROLE_BLOCK_LAYER_SCALE, s, j, BLOCK_NAME("layer_scale", "", ""), 3, c, 1, 1, 0);
    else
        add_param(b, CNX_ROLE_BLOCK_LAYER_SCALE, s, j, BLOCK_NAME("", "gamma", "layer_scale_parameter"), 1, c, 0, 0, 0);
#undef BLOCK_NAME
}

/* A stem, downsample or head name in the spec's scheme. */
static const char *fixed_name(const builder *b, char *name, size_t size, const char *tv,
                              const char *timm, const char *hf, int hf_in_base) {
    switch (b->spec->naming) {
    case CNX_NAMING_TORCHVISION: snprintf(name, size, "%s", tv); break;
    case CNX_NAMING_TIMM: snprintf(name, size, "%s", timm); break;
    default:
        if (hf_in_base) snprintf(name, size, "%s.%s", hf_base(b), hf);
        else snprintf(name, size, "%s", hf); /* the classifier sits outside the base model */
    }
    return name;
}

void writer_build_convnext(writer_model *m, const convnext_spec *spec) {
    memset(m, 0, sizeof *m);
    builder b = {m, spec};
    const int *w = spec->widths;
    char name[160];
#define FIXED(tv, timm, hf, in_base) fixed_name(&b, name, sizeof name, tv, timm, hf, in_base)

    add_param(&b, CNX_ROLE_STEM_CONV_WEIGHT, -1, -1, FIXED("features.0.0.weight", "stem.0.weight", "embeddings.patch_embeddings.weight", 1), 4, w[0], 3, 4, 4);
    add_param(&b, CNX_ROLE_STEM_CONV_BIAS, -1, -1, FIXED("features.0.0.bias", "stem.0.bias", "embeddings.patch_embeddings.bias", 1), 1, w[0], 0, 0, 0);
    add_param(&b, CNX_ROLE_STEM_NORM_WEIGHT, -1, -1, FIXED("features.0.1.weight", "stem.1.weight", "embeddings.layernorm.weight", 1), 1, w[0], 0, 0, 0);
    add_param(&b, CNX_ROLE_STEM_NORM_BIAS, -1, -1, FIXED("features.0.1.bias", "stem.1.bias", "embeddings.layernorm.bias", 1), 1, w[0], 0, 0, 0);
    for (int s = 0; s < spec->num_stages; s++) {
        if (s > 0) {
            const char *parts[4][2] = {{"0.weight", "downsample.0.weight"},
                                       {"0.bias", "downsample.0.bias"},
                                       {"1.weight", "downsample.1.weight"},
                                       {"1.bias", "downsample.1.bias"}};
            for (int k = 0; k < 4; k++) {
                if (spec->naming == CNX_NAMING_TORCHVISION)
                    snprintf(name, sizeof name, "features.%d.%s", 2 * s, parts[k][0]);
                else if (spec->naming == CNX_NAMING_TIMM)
                    snprintf(name, sizeof name, "stages.%d.%s", s, parts[k][1]);
                else
                    snprintf(name, sizeof name, "%s.encoder.stages.%d.downsampling_layer.%s",
                             hf_base(&b), s, parts[k][0]);
                cnx_role role = (cnx_role)(CNX_ROLE_DOWN_NORM_WEIGHT + k);
                if (k < 2) add_param(&b, role, s, -1, name, 1, w[s - 1], 0, 0, 0);
                else if (k == 2) add_param(&b, role, s, -1, name, 4, w[s], w[s - 1], 2, 2);
                else add_param(&b, role, s, -1, name, 1, w[s], 0, 0, 0);
            }
        }
        for (int j = 0; j < spec->depths[s]; j++) add_block(&b, s, j, w[s]);
    }
    int64_t last = w[spec->num_stages - 1];
    add_param(&b, CNX_ROLE_HEAD_NORM_WEIGHT, -1, -1, FIXED("classifier.0.weight", "head.norm.weight", "layernorm.weight", 1), 1, last, 0, 0, 0);
    add_param(&b, CNX_ROLE_HEAD_NORM_BIAS, -1, -1, FIXED("classifier.0.bias", "head.norm.bias", "layernorm.bias", 1), 1, last, 0, 0, 0);
    add_param(&b, CNX_ROLE_HEAD_FC_WEIGHT, -1, -1, FIXED("classifier.2.weight", "head.fc.weight", "classifier.weight", 0), 2, spec->num_classes, last, 0, 0);
    add_param(&b, CNX_ROLE_HEAD_FC_BIAS, -1, -1, FIXED("classifier.2.bias", "head.fc.bias", "classifier.bias", 0), 1, spec->num_classes, 0, 0, 0);
#undef FIXED
}

/* ------------------------------------------------------------ encoding */

static uint32_t bits_of(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

uint16_t writer_f32_to_f16(float value) {
    uint16_t sign = (uint16_t)((bits_of(value) >> 16) & 0x8000u);
    if (isnan(value)) return sign | 0x7e00u;
    if (isinf(value)) return sign | 0x7c00u;
    if (value == 0.0f) return sign;
    uint32_t bits = bits_of(value);
    int exponent = (int)((bits >> 23) & 0xffu) - 127 + 15;
    if (exponent < 1 || exponent > 30 || (bits & 0x1fffu)) {
        fprintf(stderr, "test writer: %g is not exact in F16\n", (double)value);
        exit(2);
    }
    return (uint16_t)(sign | (exponent << 10) | ((bits >> 13) & 0x3ffu));
}

uint16_t writer_f32_to_bf16(float value) {
    if (isnan(value)) return 0x7fc0u;
    uint32_t bits = bits_of(value);
    if (bits & 0xffffu) {
        fprintf(stderr, "test writer: %g is not exact in BF16\n", (double)value);
        exit(2);
    }
    return (uint16_t)(bits >> 16);
}

static void put_le(unsigned char *out, uint64_t value, size_t bytes) {
    for (size_t i = 0; i < bytes; i++) out[i] = (unsigned char)(value >> (8 * i));
}

static void encode(const writer_tensor *t, unsigned char *out) {
    size_t size = element_size(t->dtype);
    for (int64_t e = 0; e < t->numel; e++) {
        float v = t->values[e];
        unsigned char *p = out + (size_t)e * size;
        if (strcmp(t->dtype, "F16") == 0) put_le(p, writer_f32_to_f16(v), 2);
        else if (strcmp(t->dtype, "BF16") == 0) put_le(p, writer_f32_to_bf16(v), 2);
        else if (strcmp(t->dtype, "I64") == 0) put_le(p, (uint64_t)(int64_t)v, 8);
        else if (strcmp(t->dtype, "F64") == 0) {
            double d = v;
            uint64_t bits;
            memcpy(&bits, &d, sizeof bits);
            put_le(p, bits, 8);
        } else put_le(p, bits_of(v), 4);
    }
}

/* A growing string for the header. */
typedef struct text {
    char *data;
    size_t length, capacity;
} text;

static void append(text *t, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void append(text *t, const char *format, ...) {
    for (;;) {
        va_list args;
        va_start(args, format);
        int n = vsnprintf(t->data + t->length, t->capacity - t->length, format, args);
        va_end(args);
        if ((size_t)n < t->capacity - t->length) {
            t->length += (size_t)n;
            return;
        }
        t->capacity = t->capacity * 2 + (size_t)n + 64;
        t->data = checked(realloc(t->data, t->capacity));
    }
}

unsigned char *writer_serialize(const writer_model *m, size_t *size, size_t *header_end) {
    text header = {checked(malloc(64)), 0, 64};
    append(&header, "{");
    int first = 1;
    if (m->metadata[0]) {
        append(&header, "\"__metadata__\":%s", m->metadata);
        first = 0;
    }
    size_t offset = 0;
    for (size_t i = 0; i < m->count; i++) {
        const writer_tensor *t = &m->tensors[i];
        size_t bytes = (size_t)t->numel * element_size(t->dtype);
        append(&header, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", first ? "" : ",", t->name,
               t->dtype);
        for (int d = 0; d < t->ndim; d++)
            append(&header, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        append(&header, "],\"data_offsets\":[%zu,%zu]}", offset, offset + bytes);
        offset += bytes;
        first = 0;
    }
    append(&header, "}");
    while (header.length % 8) append(&header, " "); /* as the reference writer pads */

    *header_end = 8 + header.length;
    *size = *header_end + offset;
    unsigned char *out = checked(malloc(*size ? *size : 1));
    put_le(out, header.length, 8);
    memcpy(out + 8, header.data, header.length);
    unsigned char *data = out + *header_end;
    for (size_t i = 0; i < m->count; i++) {
        encode(&m->tensors[i], data);
        data += (size_t)m->tensors[i].numel * element_size(m->tensors[i].dtype);
    }
    free(header.data);
    return out;
}

int writer_write_bytes(const char *path, const void *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t written = size ? fwrite(bytes, 1, size, f) : 0;
    return (fclose(f) == 0 && written == size) ? 0 : -1;
}

int writer_write(const writer_model *m, const char *path) {
    size_t size, header_end;
    unsigned char *bytes = writer_serialize(m, &size, &header_end);
    int result = writer_write_bytes(path, bytes, size);
    free(bytes);
    return result;
}

int writer_write_raw(const char *path, const char *header, uint64_t header_length,
                     const void *data, size_t data_size) {
    size_t text_length = strlen(header);
    size_t size = 8 + text_length + data_size;
    unsigned char *bytes = checked(malloc(size));
    put_le(bytes, header_length == UINT64_MAX ? text_length : header_length, 8);
    memcpy(bytes + 8, header, text_length);
    if (data_size) memcpy(bytes + 8 + text_length, data, data_size);
    int result = writer_write_bytes(path, bytes, size);
    free(bytes);
    return result;
}
