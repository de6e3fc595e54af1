/* Seeded random ConvNeXt weights for the GPU tests and the benchmark, built
 * in-process with the test safetensors writer. Every parameter is random,
 * layer scale, GRN (V2) and LayerNorm affines included, at scales that keep
 * the activations of a deep model in a sane range (weights with variance
 * 1/fan_in, LayerNorm gains in [0.5, 1.5], GRN gains in +-0.5, as
 * weights/random_weights.c). Layer scales are log-uniform over 1e-6..1 per
 * channel, as trained checkpoints spread them: the channels near 1 keep
 * every block visible in the logits (torchvision's 1e-6 everywhere, or
 * timm's zero GRN gains, would hide them), the others reach the magnitudes
 * a 16-bit GEMM has to keep. */
#ifndef CNX_TESTS_GPU_RANDOM_MODEL_H
#define CNX_TESTS_GPU_RANDOM_MODEL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "safetensors_writer.h"

static uint64_t random_state = 0x9e3779b97f4a7c15ull;

static inline void random_seed(uint64_t seed) {
    random_state = seed * 0x9e3779b97f4a7c15ull + 1;
}

/* Uniform in [-1, 1). */
static inline float random_uniform(void) {
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return (float)((double)(random_state >> 11) / 4503599627370496.0 - 1.0);
}

/* count floats uniform in [-2.5, 2.5): model inputs (malloc'd). */
static inline float *random_floats(size_t count, uint64_t seed) {
    float *x = (float *)malloc(count * sizeof(float)); /* C++ includes this too */
    random_seed(seed);
    for (size_t i = 0; i < count; i++)
        x[i] = 2.5f * random_uniform();
    return x;
}

static inline void randomize_model(writer_model *m, uint64_t seed) {
    random_seed(seed);
    for (size_t i = 0; i < m->count; i++) {
        writer_tensor *t = &m->tensors[i];
        const int64_t fan_in = t->ndim >= 2 && t->shape[0] ? t->numel / t->shape[0] : 1;
        for (int64_t e = 0; e < t->numel; e++) {
            const float u = random_uniform();
            float v;
            switch (t->role) {
            case CNX_ROLE_STEM_CONV_WEIGHT:
            case CNX_ROLE_DOWN_CONV_WEIGHT:
            case CNX_ROLE_BLOCK_DW_WEIGHT:
            case CNX_ROLE_BLOCK_FC1_WEIGHT:
            case CNX_ROLE_BLOCK_FC2_WEIGHT:
            case CNX_ROLE_HEAD_FC_WEIGHT:
                v = u * sqrtf(3.0f / (float)fan_in); /* variance 1 / fan_in */
                break;
            case CNX_ROLE_STEM_NORM_WEIGHT:
            case CNX_ROLE_DOWN_NORM_WEIGHT:
            case CNX_ROLE_BLOCK_NORM_WEIGHT:
            case CNX_ROLE_HEAD_NORM_WEIGHT:
                v = 1.0f + 0.5f * u;
                break;
            case CNX_ROLE_BLOCK_LAYER_SCALE:
                v = powf(10.0f, -3.0f + 3.0f * u); /* log-uniform over 1e-6..1 */
                break;
            case CNX_ROLE_BLOCK_GRN_WEIGHT:
                v = 0.5f * u;
                break;
            default: /* biases, LayerNorm biases */
                v = 0.2f * u;
                break;
            }
            t->values[e] = v;
        }
    }
}

/* A spec of any shape, F32, with the given naming. */
static inline convnext_spec random_spec(cnx_naming naming, const int depths[4],
                                        const int widths[4], int classes) {
    convnext_spec spec = writer_small_spec(naming, "F32");
    for (int s = 0; s < 4; s++) {
        spec.depths[s] = depths[s];
        spec.widths[s] = widths[s];
    }
    spec.num_classes = classes;
    return spec;
}

/* Writes a random model of spec to path; 0 on success. */
static inline int write_random_model(const convnext_spec *spec, uint64_t seed, const char *path) {
    writer_model m;
    writer_build_convnext(&m, spec);
    randomize_model(&m, seed);
    const int result = writer_write(&m, path);
    writer_free(&m);
    return result;
}

#endif
