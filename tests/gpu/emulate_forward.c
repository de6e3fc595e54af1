/* The CUDA backend (host/cuda/cuda_backend.c and every forward kernel) run on
 * the CPU through tests/gpu/emulate_cuda.h, against the CPU backend, on
 * random models (layer scales log-uniform over 1e-6..1 per channel, as
 * trained checkpoints have them) whose widths exercise every kernel variant:
 * 8..64 (under a warp), 40..320 (not multiples of 32, odd feature-map
 * sides), and 96, 192, 400, 800 with 1000 classes (each pixel-per-warp
 * choice of the depthwise kernel, a softmax wider than a block). ConvNeXt
 * V2 (GRN after the GELU, no layer scale) on the small and the atto shapes,
 * the latter with Hugging Face's head LayerNorm epsilon 1e-12. No GPU
 * needed.
 *
 *   emulate_forward [WORK_DIR]
 *
 * Checks, per precision: logits within the budgets of test_gpu_forward (the
 * emulated GEMM rounds its inputs as the real types do), bitwise equal
 * results from the eager run, the graph capture and its replays, the
 * device-pointer path on a caller's stream, top-k against cnx_top_k, and
 * inputs larger than planned. Then, in fp32, that both backends take the
 * head epsilon from the weights (a large one moves the logits, and alike);
 * and fp16 and bf16 where tiny layer scales matter: a last stage whose layer
 * scales, and the stream they add to, are all 1e-5 and below (folded into
 * fc2's fp16 weights they would be subnormal or zero), errors printed and
 * held to the budgets. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime.h>

#include "convnext_weights.h"
#include "cpu_backend.h"
#include "cuda_backend.h"
#include "precision_budgets.h"
#include "random_model.h"
#include "emulate_api.h"
#include "test_check.h"



/* Arrays the test hangs on loaded weights in place of the file's. */
typedef struct {
    float *values;
} extra_arrays;

/* ConvNeXt V2 from loaded V1 weights: random GRN gains (+-0.5) and biases
 * (+-0.2) in every block, no layer scale. */
static extra_arrays make_v2(cnx_convnext_weights *w, uint64_t seed) {
    size_t total = 0;
    for (int s = 0; s < w->num_stages; s++)
        total += (size_t)w->depths[s] * 8 * w->widths[s];
    extra_arrays extra = {malloc(total * sizeof(float))};
    float *next = extra.values;
    random_seed(seed);
    for (int s = 0; s < w->num_stages; s++) {
        const int hidden = 4 * w->widths[s];
        for (int j = 0; j < w->depths[s]; j++) {
            cnx_block_weights *b = &w->blocks[s][j];
            for (int i = 0; i < hidden; i++)
                next[i] = 0.5f * random_uniform();
            b->grn_weight = next;
            next += hidden;
            for (int i = 0; i < hidden; i++)
                next[i] = 0.2f * random_uniform();
            b->grn_bias = next;
            next += hidden;
            b->layer_scale = NULL;
        }
    }
    w->has_grn = 1;
    w->has_layer_scale = 0;
    return extra;
}

/* A random model of spec, through a file and the loader; 0 on failure. */
static int load_model(const char *name, const convnext_spec *spec, const char *dir,
                      cnx_convnext_weights *w) {
    char path[4200];
    snprintf(path, sizeof path, "%s/emulate_%s.safetensors", dir, name);
    CHECK(write_random_model(spec, 11, path) == 0, "%s: write", name);
    const cnx_status status = cnx_convnext_weights_load(path, w);
    CHECK(status == CNX_OK, "%s: load: %s", name, cnx_last_error());
    unlink(path);
    return status == CNX_OK;
}

/* The CPU backend's logits for input. */
static cnx_status cpu_logits(const cnx_convnext_weights *w, const float *input, int n, int height,
                             int width, float *out) {
    cpu_backend *cpu = NULL;
    const int size = height > width ? height : width;
    cnx_status status = cpu_backend_create(w, n, size, 0, &cpu);
    if (status == CNX_OK)
        status = cpu_backend_forward(cpu, input, n, height, width, out);
    cpu_backend_destroy(cpu);
    return status;
}

/* One forward of each backend: the CUDA logits' error against the CPU's,
 * and (when cpu_out is not NULL) the CPU logits. */
static double one_forward(const char *label, const cnx_convnext_weights *w, cnx_precision precision,
                          int n, int height, int width, float *cpu_out) {
    const size_t out = (size_t)n * w->num_classes;
    const int size = height > width ? height : width;
    float *input = random_floats((size_t)n * 3 * height * width, 5);
    float *ref = malloc(out * sizeof(float)), *got = malloc(out * sizeof(float));
    cuda_backend *gpu = NULL;
    double error = INFINITY;
    if (cpu_logits(w, input, n, height, width, ref) == CNX_OK &&
        cuda_backend_create(w, precision, n, size, 0, NULL, &gpu) == CNX_OK &&
        cuda_backend_forward(gpu, input, 0, n, height, width, got, 0) == CNX_OK)
        error = relative_error(got, ref, out);
    else
        CHECK(0, "%s: %s", label, cnx_last_error());
    if (cpu_out)
        memcpy(cpu_out, ref, out * sizeof(float));
    cuda_backend_destroy(gpu);
    free(input);
    free(ref);
    free(got);
    return error;
}

static void check_weights(const char *name, const cnx_convnext_weights *weights, int n, int height,
                          int width) {
    const cnx_convnext_weights w = *weights;
    const int classes = w.num_classes, size = height > width ? height : width;
    const size_t out = (size_t)n * classes;
    float *input = random_floats((size_t)n * 3 * height * width, 5);
    float *ref = malloc(out * sizeof(float)), *got = malloc(out * sizeof(float));
    float *again = malloc(out * sizeof(float));
    cpu_backend *cpu = NULL;
    CHECK(cpu_backend_create(&w, n, size, 0, &cpu) == CNX_OK, "%s: CPU backend", name);
    CHECK(cpu_backend_forward(cpu, input, n, height, width, ref) == CNX_OK, "%s: CPU forward", name);

    for (int p = 0; p < 4; p++) {
        char label[64];
        snprintf(label, sizeof label, "%s/%s", name, precision_names[p]);
        cuda_backend *gpu = NULL;
        cnx_status status = cuda_backend_create(&w, (cnx_precision)p, n, size, 0, NULL, &gpu);
        CHECK(status == CNX_OK, "%s: create: %s", label, cnx_last_error());
        if (status != CNX_OK)
            continue;
        CHECK(cuda_backend_capacity(gpu, height, width) == n, "%s: capacity %d", label,
              cuda_backend_capacity(gpu, height, width));
        /* Eager, captured, replayed: the same bits. */
        status = cuda_backend_forward(gpu, input, 0, n, height, width, got, 0);
        CHECK(status == CNX_OK, "%s: forward: %s", label, cnx_last_error());
        const double error = relative_error(got, ref, out);
        printf("%-6s %-5s max|err|/max|cpu| %.3e (budget %.0e)\n", name, precision_names[p], error, precision_budgets[p]);
        CHECK(error <= precision_budgets[p], "%s: error %.3e over %.0e", label, error, precision_budgets[p]);
        for (int run = 1; run <= 3; run++) {
            memset(again, 0, out * sizeof(float));
            status = cuda_backend_forward(gpu, input, 0, n, height, width, again, 0);
            CHECK(status == CNX_OK && memcmp(again, got, out * sizeof(float)) == 0,
                  "%s: run %d (%s) differs: %s", label, run, run == 1 ? "capture" : "replay",
                  cnx_last_error());
        }
        /* A smaller batch: its own plan, the same rows. */
        status = cuda_backend_forward(gpu, input, 0, 1, height, width, again, 0);
        CHECK(status == CNX_OK && relative_error(again, ref, (size_t)classes) <= precision_budgets[p],
              "%s: batch 1: %s", label, cnx_last_error());

        /* Device pointers on a caller's stream. */
        float *d_in = NULL, *d_logits = NULL;
        cudaStream_t stream = NULL;
        emu_cudaMalloc((void **)&d_in, (size_t)n * 3 * height * width * sizeof(float));
        emu_cudaMalloc((void **)&d_logits, out * sizeof(float));
        emu_cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
        memcpy(d_in, input, (size_t)n * 3 * height * width * sizeof(float)); /* host memory here */
        CHECK(cuda_backend_set_stream(gpu, stream) == CNX_OK && cuda_backend_on_caller_stream(gpu),
              "%s: set stream", label);
        for (int run = 0; run < 3; run++) {
            memset(d_logits, 0xff, out * sizeof(float));
            status = cuda_backend_forward(gpu, d_in, 1, n, height, width, d_logits, 1);
            emu_cudaStreamSynchronize(stream); /* the call only queued the work */
            CHECK(status == CNX_OK && memcmp(d_logits, got, out * sizeof(float)) == 0,
                  "%s: device run %d differs: %s", label, run, cnx_last_error());
        }
        const int k = classes < 5 ? classes : 5;
        cnx_prediction *top = calloc((size_t)n * k, sizeof *top), want[5];
        status = cuda_backend_classify(gpu, d_in, 1, n, height, width, k, top);
        CHECK(status == CNX_OK, "%s: classify: %s", label, cnx_last_error());
        for (int i = 0; i < n && status == CNX_OK; i++) {
            cnx_top_k(got + (size_t)i * classes, classes, k, want);
            for (int j = 0; j < k; j++) {
                const cnx_prediction *g = &top[(size_t)i * k + j];
                CHECK(g->class_index == want[j].class_index && g->logit == want[j].logit &&
                          fabsf(g->probability - want[j].probability) <= 1e-6f,
                      "%s: image %d rank %d: class %d p %g, want %d p %g", label, i, j,
                      g->class_index, g->probability, want[j].class_index, want[j].probability);
            }
        }
        free(top);
        CHECK(cuda_backend_set_stream(gpu, NULL) == CNX_OK && !cuda_backend_on_caller_stream(gpu),
              "%s: own stream", label);
        emu_cudaStreamDestroy(stream);
        emu_cudaFree(d_in);
        emu_cudaFree(d_logits);

        /* Twice the side: a quarter of the images per call, or none. */
        if (p == 0) {
            const int big = 2 * size;
            float *big_input = random_floats((size_t)3 * big * big, 9);
            float big_ref[1000], big_got[1000];
            cpu_backend *big_cpu = NULL;
            CHECK(cpu_backend_create(&w, 1, big, 0, &big_cpu) == CNX_OK &&
                      cpu_backend_forward(big_cpu, big_input, 1, big, big, big_ref) == CNX_OK,
                  "%s: CPU at %d", label, big);
            CHECK(cuda_backend_capacity(gpu, big, big) == n / 4, "%s: capacity at %d is %d", label,
                  big, cuda_backend_capacity(gpu, big, big));
            if (n / 4 >= 1) {
                status = cuda_backend_forward(gpu, big_input, 0, 1, big, big, big_got, 0);
                CHECK(status == CNX_OK && relative_error(big_got, big_ref, (size_t)classes) <= precision_budgets[0],
                      "%s: forward at %d: %s", label, big, cnx_last_error());
            } else {
                status = cuda_backend_forward(gpu, big_input, 0, 1, big, big, big_got, 0);
                CHECK(status == CNX_ERROR_INVALID_ARGUMENT, "%s: %d images at %d accepted", label, 1, big);
            }
            cpu_backend_destroy(big_cpu);
            free(big_input);
        }
        cuda_backend_destroy(gpu);
    }
    cpu_backend_destroy(cpu);
    free(input);
    free(ref);
    free(got);
    free(again);
}

static void check_model(const char *name, const convnext_spec *spec, int n, int height,
                        int width, const char *dir) {
    cnx_convnext_weights w;
    if (!load_model(name, spec, dir, &w))
        return;
    check_weights(name, &w, n, height, width);
    cnx_convnext_weights_free(&w);
}

/* ConvNeXt V2 on spec's shape, with the given head epsilon. */
static void check_v2_model(const char *name, const convnext_spec *spec, float head_eps, int n,
                           int height, int width, const char *dir) {
    cnx_convnext_weights w;
    if (!load_model(name, spec, dir, &w))
        return;
    extra_arrays grn = make_v2(&w, 21);
    w.head_norm_eps = head_eps;
    check_weights(name, &w, n, height, width);
    cnx_convnext_weights_free(&w);
    free(grn.values);
}

/* Both backends use the weights' head epsilon: 1.0 (against the pooled
 * features' variance of about 1) moves the CPU logits well past the fp32
 * budget, and the CUDA logits follow. */
static void check_head_eps(const convnext_spec *spec, int n, int height, int width,
                           const char *dir) {
    cnx_convnext_weights w;
    if (!load_model("head_eps", spec, dir, &w))
        return;
    const size_t out = (size_t)n * w.num_classes;
    float *usual = malloc(out * sizeof(float)), *large = malloc(out * sizeof(float));
    w.head_norm_eps = 1e-6f;
    const double usual_error = one_forward("head_eps/1e-6", &w, CNX_PRECISION_FP32, n, height, width, usual);
    w.head_norm_eps = 1.0f;
    const double large_error = one_forward("head_eps/1", &w, CNX_PRECISION_FP32, n, height, width, large);
    const double moved = relative_error(large, usual, out);
    printf("head eps 1 vs 1e-6: CPU logits moved %.3e; fp32 max|err|/max|cpu| %.3e and %.3e\n",
           moved, usual_error, large_error);
    CHECK(moved > 1e-2, "head eps: the CPU logits moved only %.3e", moved);
    CHECK(usual_error <= precision_budgets[0] && large_error <= precision_budgets[0],
          "head eps: fp32 errors %.3e (1e-6), %.3e (1)", usual_error, large_error);
    free(usual);
    free(large);
    cnx_convnext_weights_free(&w);
}

/* The last stage at magnitude m < 1: its layer scales log-uniform over
 * [m/10, m] per channel, and the residual stream it adds to (the last
 * downsample's LayerNorm gain and bias, and its conv bias) scaled by m, so
 * that each block's increment is as large as that stream. (The blocks'
 * LayerNorms see it under their epsilon; the head's, at 1e-12, normalizes
 * it.) At m = 1, the generator's layer scales, log-uniform over 1e-6..1.
 * The stage's layer scales come first in the arrays. */
static extra_arrays scale_last_stage(cnx_convnext_weights *w, float m, uint64_t seed) {
    const int last = w->num_stages - 1, c = w->widths[last], prev = w->widths[last - 1];
    extra_arrays extra = {malloc(((size_t)w->depths[last] * c + 2 * prev + c) * sizeof(float))};
    float *next = extra.values;
    random_seed(seed);
    for (int j = 0; j < w->depths[last]; j++) {
        for (int i = 0; i < c; i++)
            next[i] = m < 1.0f ? m * powf(10.0f, -0.5f + 0.5f * random_uniform())
                               : w->blocks[last][j].layer_scale[i];
        w->blocks[last][j].layer_scale = next;
        next += c;
    }
    cnx_downsample_weights *d = &w->downsample[last];
    const float **stream[3] = {&d->norm_weight, &d->norm_bias, &d->conv_bias};
    for (int k = 0; k < 3; k++) {
        const int count = k < 2 ? prev : c;
        for (int i = 0; i < count; i++)
            next[i] = m * (*stream[k])[i];
        *stream[k] = next;
        next += count;
    }
    return extra;
}

/* fp16 and bf16 with layer scales over 1e-6..1: the generator's, and a last
 * stage whose layer scales (and the stream they add to) are all 1e-5 and
 * below (torchvision's initial 1e-6, barely trained). Folded into fc2's
 * fp16 weights such scales are subnormal or zero, and the blocks' work was
 * lost (fp16 error 8.1e-2 before each GEMM's weights were kept in range).
 * Without the stage's blocks (layer scales 0) the CPU logits move far past
 * the budgets, so a lost block shows. */
static void check_layer_scale_magnitudes(const convnext_spec *spec, int n, int height, int width,
                                         const char *dir) {
    static const float magnitudes[] = {1.0f, 1e-5f};
    const size_t out = (size_t)n * spec->num_classes;
    float *with = malloc(out * sizeof(float)), *without = malloc(out * sizeof(float));
    float *input = random_floats((size_t)n * 3 * height * width, 5);
    for (size_t i = 0; i < sizeof magnitudes / sizeof magnitudes[0]; i++) {
        cnx_convnext_weights w;
        if (!load_model("layer_scale", spec, dir, &w))
            break;
        w.head_norm_eps = 1e-12f;
        extra_arrays scaled = scale_last_stage(&w, magnitudes[i], 41);
        const int last = w.num_stages - 1;
        char label[64];
        if (magnitudes[i] < 1.0f)
            snprintf(label, sizeof label, "layer scale, last stage %.0e..%.0e",
                     magnitudes[i] / 10, magnitudes[i]);
        else
            snprintf(label, sizeof label, "layer scale 1e-6..1");
        for (int p = CNX_PRECISION_FP16; p <= CNX_PRECISION_BF16; p++) {
            const double error = one_forward(label, &w, (cnx_precision)p, n, height, width, NULL);
            printf("%s  %-5s max|err|/max|cpu| %.3e (budget %.0e)\n", label, precision_names[p], error,
                   precision_budgets[p]);
            CHECK(error <= precision_budgets[p], "%s, %s: error %.3e over %.0e", label, precision_names[p], error,
                  precision_budgets[p]);
        }
        CHECK(cpu_logits(&w, input, n, height, width, with) == CNX_OK, "%s: CPU", label);
        memset(scaled.values, 0, (size_t)w.depths[last] * w.widths[last] * sizeof(float));
        CHECK(cpu_logits(&w, input, n, height, width, without) == CNX_OK, "%s: CPU", label);
        const double moved = relative_error(without, with, out);
        printf("%s  without the last stage's blocks the CPU logits move %.3e\n", label, moved);
        CHECK(moved > 10 * precision_budgets[CNX_PRECISION_FP16], "%s: the blocks move the logits only %.3e",
              label, moved);
        free(scaled.values);
        cnx_convnext_weights_free(&w);
    }
    free(input);
    free(with);
    free(without);
}

int main(int argc, char **argv) {
    char dir[2048];
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "/tmp/cnx_emulate_XXXXXX");
    if (argc > 1 ? test_make_dir(dir) != 0 : mkdtemp(dir) == NULL) {
        fprintf(stderr, "cannot create %s\n", dir);
        return 2;
    }
    const int small_d[4] = {1, 1, 2, 1}, small_w[4] = {8, 16, 32, 64};
    const int atto_d[4] = {1, 1, 1, 1}, atto_w[4] = {40, 80, 160, 320};
    const int wide_d[4] = {1, 1, 1, 1}, wide_w[4] = {96, 192, 400, 800};
    const convnext_spec small = random_spec(CNX_NAMING_TORCHVISION, small_d, small_w, 5);
    const convnext_spec atto = random_spec(CNX_NAMING_TIMM, atto_d, atto_w, 37);
    const convnext_spec wide = random_spec(CNX_NAMING_TORCHVISION, wide_d, wide_w, 1000);
    check_model("small", &small, 4, 64, 64, dir);
    check_model("atto", &atto, 2, 96, 80, dir);
    check_model("wide", &wide, 2, 64, 64, dir);
    check_v2_model("small_v2", &small, 1e-6f, 4, 64, 64, dir);
    check_v2_model("atto_v2_hf", &atto, 1e-12f, 2, 96, 80, dir);
    check_head_eps(&small, 4, 64, 64, dir);
    const int deep_d[4] = {2, 2, 4, 2};
    const convnext_spec deep = random_spec(CNX_NAMING_TIMM, deep_d, atto_w, 37);
    check_layer_scale_magnitudes(&deep, 2, 64, 64, dir);
    if (argc <= 1)
        rmdir(dir);
    emu_report();
    return test_summary();
}
