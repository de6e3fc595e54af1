/* The CUDA backend (host/cuda/cuda_backend.c and every forward kernel) run on
 * the CPU through tests/gpu/emulate_cuda.h, against the CPU backend, on
 * random models whose widths exercise every kernel variant: 8..64 (under a
 * warp), 40..320 (not multiples of 32, odd feature-map sides), and
 * 96, 192, 400, 800 with 1000 classes (each pixel-per-warp choice of the
 * depthwise kernel, a softmax wider than a block). No GPU needed.
 *
 *   emulate_forward [WORK_DIR]
 *
 * Checks, per precision: logits within the budgets of test_gpu_forward (the
 * emulated GEMM rounds its inputs as the real types do), bitwise equal
 * results from the eager run, the graph capture and its replays, the
 * device-pointer path on a caller's stream, top-k against cnx_top_k, and
 * inputs larger than planned. */
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
#include "random_model.h"
#include "test_check.h"

/* The emulated runtime, for "device" buffers in the test. */
cudaError_t emu_cudaMalloc(void **p, size_t bytes);
cudaError_t emu_cudaFree(void *p);
cudaError_t emu_cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned flags);
cudaError_t emu_cudaStreamDestroy(cudaStream_t stream);
void emu_report(void);

static const char *names[] = {"fp32", "tf32", "fp16", "bf16"};
static const double budgets[] = {1e-4, 1e-2, 1e-2, 5e-2};

static double relative_error(const float *got, const float *want, size_t count) {
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < count; i++) {
        const double d = fabs((double)got[i] - want[i]);
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
        if (fabs(want[i]) > scale)
            scale = fabs(want[i]);
    }
    return scale > 0 ? worst / scale : worst;
}

static float *random_floats(size_t count, uint64_t seed) {
    float *x = malloc(count * sizeof(float));
    random_seed(seed);
    for (size_t i = 0; i < count; i++)
        x[i] = 2.5f * random_uniform();
    return x;
}

static void check_model(const char *name, const convnext_spec *spec, int n, int height,
                        int width, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/emulate_%s.safetensors", dir, name);
    CHECK(write_random_model(spec, 11, path) == 0, "%s: write", name);
    cnx_convnext_weights w;
    if (cnx_convnext_weights_load(path, &w) != CNX_OK) {
        CHECK(0, "%s: load: %s", name, cnx_last_error());
        return;
    }
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
        snprintf(label, sizeof label, "%s/%s", name, names[p]);
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
        printf("%-6s %-5s max|err|/max|cpu| %.3e (budget %.0e)\n", name, names[p], error, budgets[p]);
        CHECK(error <= budgets[p], "%s: error %.3e over %.0e", label, error, budgets[p]);
        for (int run = 1; run <= 3; run++) {
            memset(again, 0, out * sizeof(float));
            status = cuda_backend_forward(gpu, input, 0, n, height, width, again, 0);
            CHECK(status == CNX_OK && memcmp(again, got, out * sizeof(float)) == 0,
                  "%s: run %d (%s) differs: %s", label, run, run == 1 ? "capture" : "replay",
                  cnx_last_error());
        }
        /* A smaller batch: its own plan, the same rows. */
        status = cuda_backend_forward(gpu, input, 0, 1, height, width, again, 0);
        CHECK(status == CNX_OK && relative_error(again, ref, (size_t)classes) <= budgets[p],
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
                CHECK(status == CNX_OK && relative_error(big_got, big_ref, (size_t)classes) <= budgets[0],
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
    cnx_convnext_weights_free(&w);
    free(input);
    free(ref);
    free(got);
    free(again);
    unlink(path);
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
    if (argc <= 1)
        rmdir(dir);
    emu_report();
    return test_summary();
}
