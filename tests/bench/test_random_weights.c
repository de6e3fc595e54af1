/* Random-weight models (weights/random_weights.c, cnx_engine_create_random),
 * which cnx-bench runs when it is given no weights file: torchvision's and
 * timm's parameter counts (V1 with layer scale, V2 with GRN and none), every
 * value finite and in its range, the same values for the same seed, a clear
 * error for an unknown name, and engines that run. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cnx.h"
#include "random_weights.h"
#include "test_check.h"

static void check_ranges(const cnx_convnext_weights *w) {
    int finite = 1;
    for (int64_t i = 0; i < w->num_parameters; i++) finite = finite && isfinite(w->arena[i]);
    CHECK(finite, "%s: every value finite", w->architecture);
    const int v2 = w->has_grn;
    int in_range = 1, shaped = 1;
    double grn_magnitude = 0.0, log_scale_sum = 0.0;
    int64_t scales = 0;
    for (int s = 0; s < w->num_stages; s++)
        for (int b = 0; b < w->depths[s]; b++) {
            const cnx_block_weights *k = &w->blocks[s][b];
            /* V1: layer scale, no GRN; V2: GRN, no layer scale. */
            shaped = shaped && (k->layer_scale == NULL) == v2 && (k->grn_weight != NULL) == v2 &&
                     (k->grn_bias != NULL) == v2;
            if (!shaped)
                continue;
            for (int c = 0; c < w->widths[s]; c++)
                in_range = in_range && (v2 || (k->layer_scale[c] >= 1e-6f && k->layer_scale[c] <= 1.0f)) &&
                           k->norm_weight[c] >= 0.5f && k->norm_weight[c] <= 1.5f &&
                           fabsf(k->dw_bias[c]) <= 0.2f;
            for (int c = 0; !v2 && c < w->widths[s]; c++, scales++)
                log_scale_sum += log10(k->layer_scale[c]);
            for (int c = 0; v2 && c < 4 * w->widths[s]; c++) {
                in_range = in_range && fabsf(k->grn_weight[c]) <= 0.5f && fabsf(k->grn_bias[c]) <= 0.2f;
                grn_magnitude += fabsf(k->grn_weight[c]);
            }
        }
    CHECK(shaped, "%s: %s in every block", w->architecture,
          v2 ? "GRN and no layer scale" : "layer scale and no GRN");
    CHECK(in_range, "%s: layer scale in [1e-6, 1], GRN gains in +-0.5, gains in [0.5, 1.5], biases in +-0.2",
          w->architecture);
    /* Log-uniform over 1e-6..1, as trained checkpoints spread layer scales:
     * a mean decade of -3 (atto: 1840 channels, a standard error of 0.04). */
    CHECK(v2 || fabs(log_scale_sum / (double)scales + 3.0) < 0.2,
          "%s: mean log10(layer scale) %g, want -3", w->architecture,
          log_scale_sum / (double)scales);
    if (v2) {
        int64_t grn_values = 0;
        for (int s = 0; s < w->num_stages; s++)
            grn_values += (int64_t)w->depths[s] * 4 * w->widths[s];
        /* Uniform in +-0.5: a mean magnitude of 0.25, far from timm's zeros. */
        CHECK(fabs(grn_magnitude / (double)grn_values - 0.25) < 0.01, "%s: mean |GRN gain| %g",
              w->architecture, grn_magnitude / (double)grn_values);
    }
    /* The head: uniform with variance 1 / fan_in, so within sqrt(3 / fan_in). */
    const int last = w->widths[w->num_stages - 1];
    const float bound = sqrtf(3.0f / last);
    double squares = 0;
    int bounded = 1;
    for (int64_t i = 0; i < (int64_t)w->num_classes * last; i++) {
        bounded = bounded && fabsf(w->head_weight[i]) <= bound;
        squares += (double)w->head_weight[i] * w->head_weight[i];
    }
    const double variance = squares / ((double)w->num_classes * last);
    CHECK(bounded && fabs(variance * last - 1.0) < 0.05, "%s: head variance %g, want 1/%d",
          w->architecture, variance, last);
}

int main(void) {
    /* V2's counts are timm's (timm.create_model(name).parameters()). */
    static const struct { const char *name; int64_t parameters; int v2; } known[] = {
        {"convnext_atto", 3695520, 0},   {"convnext_tiny", 28589128, 0},
        {"convnext_small", 50223688, 0}, {"convnextv2_atto", 3708400, 1},
        {"convnextv2_nano", 15623800, 1}, {"convnextv2_tiny", 28635496, 1}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        cnx_convnext_weights w;
        const cnx_status status = cnx_convnext_weights_random(known[i].name, 3, &w);
        CHECK(status == CNX_OK, "%s: %s", known[i].name, cnx_last_error());
        if (status != CNX_OK) continue;
        CHECK(w.num_parameters == known[i].parameters, "%s: %lld parameters, want %lld",
              known[i].name, (long long)w.num_parameters, (long long)known[i].parameters);
        CHECK(w.has_grn == known[i].v2 && w.has_layer_scale == !known[i].v2 &&
                  w.head_norm_eps == 1e-6f,
              "%s: has_grn %d, has_layer_scale %d, head epsilon %g", known[i].name, w.has_grn,
              w.has_layer_scale, (double)w.head_norm_eps);
        CHECK(strcmp(w.architecture, known[i].name) == 0 && w.num_classes == 1000 &&
                  strcmp(w.source, "random (seed 3)") == 0 &&
                  strcmp(w.naming, known[i].v2 ? "timm" : "torchvision") == 0 &&
                  strcmp(w.weights_dtype, "F32") == 0 && w.preprocess.crop == 224 &&
                  w.preprocess.resize == 236,
              "%s: described as %s, %d classes, \"%s\", %s, %s, %d/%d", known[i].name,
              w.architecture, w.num_classes, w.source, w.naming, w.weights_dtype,
              w.preprocess.resize, w.preprocess.crop);
        /* The last array ends exactly at the arena's end. */
        const cnx_block_weights *last = &w.blocks[3][w.depths[3] - 1];
        const float *last_array = known[i].v2 ? last->fc2_bias : last->layer_scale;
        CHECK(last_array && last_array + w.widths[3] == w.arena + w.num_parameters,
              "%s: the arrays fill the arena", known[i].name);
        check_ranges(&w);
        cnx_convnext_weights_free(&w);
        CHECK(w.arena == NULL && w.block_storage == NULL, "freed");
    }

    cnx_convnext_weights a, b, c;
    CHECK(cnx_convnext_weights_random("convnext_atto", 7, &a) == CNX_OK &&
              cnx_convnext_weights_random("convnext_atto", 7, &b) == CNX_OK &&
              cnx_convnext_weights_random("convnext_atto", 8, &c) == CNX_OK,
          "three atto models");
    CHECK(memcmp(a.arena, b.arena, (size_t)a.num_parameters * sizeof(float)) == 0,
          "the same seed gives the same values");
    CHECK(memcmp(a.arena, c.arena, (size_t)a.num_parameters * sizeof(float)) != 0,
          "another seed gives other values");
    cnx_convnext_weights_free(&a);
    cnx_convnext_weights_free(&b);
    cnx_convnext_weights_free(&c);

    cnx_convnext_weights none;
    const cnx_status unknown = cnx_convnext_weights_random("convnext_huge", 0, &none);
    CHECK(unknown == CNX_ERROR_INVALID_ARGUMENT && strstr(cnx_last_error(), "convnext_huge") &&
              strstr(cnx_last_error(), "convnext_atto") &&
              strstr(cnx_last_error(), "convnext_xxlarge") &&
              strstr(cnx_last_error(), "convnextv2_atto") &&
              strstr(cnx_last_error(), "convnextv2_huge") && none.arena == NULL,
          "unknown name: status %d, \"%s\"", (int)unknown, cnx_last_error());

    /* Through the public API, on the CPU: a forward with finite logits, V1 and V2. */
    cnx_options options = cnx_default_options();
    options.device = CNX_DEVICE_CPU;
    options.max_batch = 2;
    options.input_size = 32;
    cnx_engine *engine = NULL;
    static const struct { const char *name; long long parameters; } engines[] = {
        {"convnext_atto", 3695520}, {"convnextv2_atto", 3708400}};
    for (int e = 0; e < 2; e++) {
        const cnx_status created = cnx_engine_create_random(engines[e].name, 1, &options, &engine);
        CHECK(created == CNX_OK, "cnx_engine_create_random(%s): %s", engines[e].name,
              cnx_last_error());
        if (created == CNX_OK) {
            cnx_model_info info;
            CHECK(cnx_engine_info(engine, &info) == CNX_OK &&
                      strcmp(info.architecture, engines[e].name) == 0 &&
                      info.num_parameters == engines[e].parameters &&
                      strcmp(info.source, "random (seed 1)") == 0,
                  "engine info: %s, %lld, %s", info.architecture, (long long)info.num_parameters,
                  info.source);
            float input[2 * 3 * 32 * 32], logits[2 * 1000];
            for (size_t i = 0; i < sizeof input / sizeof input[0]; i++)
                input[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
            const cnx_status ran = cnx_engine_forward(engine, input, 2, 32, 32, logits);
            int finite = 1, varied = 0;
            for (int i = 0; i < 2000; i++) {
                finite = finite && isfinite(logits[i]);
                varied = varied || logits[i] != logits[0];
            }
            CHECK(ran == CNX_OK && finite && varied, "%s forward: %s", engines[e].name,
                  cnx_last_error());
            cnx_engine_destroy(engine);
        }
    }
    engine = (cnx_engine *)&options; /* must be reset to NULL on failure */
    CHECK(cnx_engine_create_random("nope", 0, &options, &engine) == CNX_ERROR_INVALID_ARGUMENT &&
              engine == NULL,
          "cnx_engine_create_random of an unknown name");

    return test_summary();
}
