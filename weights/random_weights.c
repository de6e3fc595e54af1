/* Seeded random ConvNeXt weights, V1 and V2. Every parameter is random,
 * layer scale, GRN and LayerNorm affines included, at scales that keep the
 * activations of a deep model in a sane range: conv and linear weights
 * uniform with variance 1/fan_in, biases in +-0.2, LayerNorm gains in
 * [0.5, 1.5], layer scale log-uniform over 1e-6..1 per channel (V1, as
 * trained checkpoints spread it), GRN gains in +-0.5 (V2; biases as the
 * others). (torchvision's 1e-6 layer-scale initialization in every channel,
 * or timm's zero GRN gains, would make every block or its GRN a no-op, and a
 * benchmark or test of it meaningless; the channels near 1 keep them
 * working.) */
#include "random_weights.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convnext_architectures.h"
#include "error.h"

enum { RANDOM_CLASSES = 1000 };

typedef enum value_kind { WEIGHT, BIAS, GAIN, LAYER_SCALE, GRN_GAIN } value_kind;

/* Hands out consecutive arrays of the arena; with no arena, only counts. */
typedef struct filler {
    float *next;
    int64_t count;
    uint64_t state; /* xorshift64 */
} filler;

/* Uniform in [-1, 1). */
static float uniform(filler *f) {
    f->state ^= f->state << 13;
    f->state ^= f->state >> 7;
    f->state ^= f->state << 17;
    return (float)((double)(f->state >> 11) / 4503599627370496.0 - 1.0);
}

static const float *take(filler *f, int64_t n, value_kind kind, int64_t fan_in) {
    f->count += n;
    if (!f->next) return NULL;
    float *out = f->next;
    const float scale = kind == WEIGHT ? sqrtf(3.0f / (float)fan_in) : 0.0f;
    for (int64_t i = 0; i < n; i++) {
        const float u = uniform(f);
        switch (kind) {
        case WEIGHT: out[i] = u * scale; break; /* variance 1 / fan_in */
        case BIAS: out[i] = 0.2f * u; break;
        case GAIN: out[i] = 1.0f + 0.5f * u; break;
        case LAYER_SCALE: out[i] = powf(10.0f, -3.0f + 3.0f * u); break; /* 1e-6..1 */
        case GRN_GAIN: out[i] = 0.5f * u; break;
        }
    }
    f->next += n;
    return out;
}

/* Every parameter in the loader's slot order: stem and head, the
 * downsamples, then the blocks stage by stage; GRN (V2) or layer scale (V1)
 * as w->has_grn says. */
static void lay_out(cnx_convnext_weights *w, filler *f) {
    const int c0 = w->widths[0], last = w->widths[w->num_stages - 1];
    w->stem_weight = take(f, (int64_t)c0 * 3 * 4 * 4, WEIGHT, 3 * 4 * 4);
    w->stem_bias = take(f, c0, BIAS, 0);
    w->stem_norm_weight = take(f, c0, GAIN, 0);
    w->stem_norm_bias = take(f, c0, BIAS, 0);
    w->head_norm_weight = take(f, last, GAIN, 0);
    w->head_norm_bias = take(f, last, BIAS, 0);
    w->head_weight = take(f, (int64_t)w->num_classes * last, WEIGHT, last);
    w->head_bias = take(f, w->num_classes, BIAS, 0);
    for (int s = 1; s < w->num_stages; s++) {
        const int64_t c = w->widths[s], prev = w->widths[s - 1];
        cnx_downsample_weights *d = &w->downsample[s];
        d->norm_weight = take(f, prev, GAIN, 0);
        d->norm_bias = take(f, prev, BIAS, 0);
        d->conv_weight = take(f, c * prev * 2 * 2, WEIGHT, prev * 2 * 2);
        d->conv_bias = take(f, c, BIAS, 0);
    }
    for (int s = 0; s < w->num_stages; s++) {
        const int64_t c = w->widths[s];
        for (int b = 0; b < w->depths[s]; b++) {
            cnx_block_weights *k = &w->blocks[s][b];
            k->dw_weight = take(f, c * 7 * 7, WEIGHT, 7 * 7);
            k->dw_bias = take(f, c, BIAS, 0);
            k->norm_weight = take(f, c, GAIN, 0);
            k->norm_bias = take(f, c, BIAS, 0);
            k->fc1_weight = take(f, 4 * c * c, WEIGHT, c);
            k->fc1_bias = take(f, 4 * c, BIAS, 0);
            if (w->has_grn) {
                k->grn_weight = take(f, 4 * c, GRN_GAIN, 0);
                k->grn_bias = take(f, 4 * c, BIAS, 0);
            }
            k->fc2_weight = take(f, c * 4 * c, WEIGHT, 4 * c);
            k->fc2_bias = take(f, c, BIAS, 0);
            if (!w->has_grn)
                k->layer_scale = take(f, c, LAYER_SCALE, 0);
        }
    }
}

static cnx_status unknown_architecture(const char *architecture) {
    char known[1024] = "";
    size_t used = 0;
    const char *name = NULL;
    int depths[CNX_MAX_STAGES], widths[CNX_MAX_STAGES], has_grn;
    for (size_t i = 0; cnx_convnext_architecture(i, &name, depths, widths, &has_grn); i++) {
        int wrote = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", name);
        if (wrote < 0 || (size_t)wrote >= sizeof known - used) break;
        used += (size_t)wrote;
    }
    return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "unknown architecture \"%s\"; known: %s",
                    architecture, known);
}

cnx_status cnx_convnext_weights_random(const char *architecture, uint64_t seed,
                                       cnx_convnext_weights *w) {
    if (!architecture || !w)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_convnext_weights_random: %s is NULL",
                        architecture ? "weights" : "architecture");
    memset(w, 0, sizeof *w);
    const char *name = NULL;
    int found = 0;
    for (size_t a = 0;
         !found && cnx_convnext_architecture(a, &name, w->depths, w->widths, &w->has_grn); a++)
        found = strcmp(name, architecture) == 0;
    if (!found) {
        memset(w, 0, sizeof *w);
        return unknown_architecture(architecture);
    }
    w->num_stages = CNX_MAX_STAGES;
    w->num_classes = RANDOM_CLASSES;
    w->has_grn = w->has_grn != 0;
    w->has_layer_scale = !w->has_grn; /* V1 as torchvision and timm make it; V2 has none */
    w->head_norm_eps = 1e-6f;
    snprintf(w->architecture, sizeof w->architecture, "%s", name);
    snprintf(w->weights_dtype, sizeof w->weights_dtype, "F32");
    /* torchvision has no ConvNeXt V2: timm's names are what such a file would use. */
    snprintf(w->naming, sizeof w->naming, "%s", w->has_grn ? "timm" : "torchvision");
    snprintf(w->source, sizeof w->source, "random (seed %" PRIu64 ")", seed);
    w->preprocess = cnx_default_preprocess();

    int total_blocks = 0;
    for (int s = 0; s < w->num_stages; s++) total_blocks += w->depths[s];
    w->block_storage = calloc((size_t)total_blocks, sizeof *w->block_storage);
    if (w->block_storage) {
        for (int s = 0, first = 0; s < w->num_stages; first += w->depths[s], s++)
            w->blocks[s] = w->block_storage + first;
        filler count = {0};
        lay_out(w, &count); /* sizes only: every pointer NULL for now */
        w->num_parameters = count.count;
        w->arena = malloc((size_t)count.count * sizeof(float));
    }
    if (!w->arena) {
        const int64_t parameters = w->num_parameters;
        cnx_convnext_weights_free(w);
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory for %" PRId64
                        " random parameters", architecture, parameters);
    }
    filler fill = {.next = w->arena, .state = seed * 0x9e3779b97f4a7c15ull + 1};
    if (fill.state == 0) fill.state = 0x9e3779b97f4a7c15ull; /* xorshift's fixed point */
    lay_out(w, &fill);
    return CNX_OK;
}
