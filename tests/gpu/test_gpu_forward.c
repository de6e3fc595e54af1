/* The CUDA forward against the CPU backend (the oracle), on seeded random
 * models built in-process: a small one, one with timm-atto widths (channel
 * counts that are not multiples of 32) on a non-square input with odd
 * feature-map sides, the real convnext_tiny shape, and ConvNeXt V2
 * (convnextv2_atto from cnx_engine_create_random: GRN, no layer scale) on
 * the same non-square input.
 *
 *   test_gpu_forward [--quick] [WORK_DIR]
 *
 * Prints "SKIP: reason" and exits 77 without a usable GPU. --quick runs the
 * two small models in fp32 and fp16 only (for compute-sanitizer).
 * CNX_TEST_FAKE_GPU=1 runs the harness with CPU engines in place of CUDA
 * ones (fp32 only, no device pointers): a check of the test itself on
 * machines without a GPU.
 *
 * Budgets, as max |logit - cpu| / max |cpu| over the batch (the CPU logits
 * are fp32 and match torch within 1e-4):
 *   fp32  1e-4  the design's fp32 contract;
 *   tf32  1e-2  and fp16 1e-2: 10-bit mantissas (rounding 2^-11 = 4.9e-4 per
 *               operand) through 18 blocks; LayerNorm renormalizes each block,
 *               so the expected error is a few 1e-3 and 1e-2 leaves room;
 *   bf16  5e-2  7-bit mantissa: 8x fp16's rounding.
 * Top-1: every image whose CPU top-1 margin (top-1 minus top-2 logit) is over
 * twice the budget's absolute error must agree; the raw agreement rate is
 * printed as well. */
#define _POSIX_C_SOURCE 200809L

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cnx.h"
#include "device.h"
#include "precision_budgets.h"
#include "random_model.h"
#include "safetensors_writer.h"
#include "test_check.h"

#ifdef CNX_HAVE_CUDA
#include <cuda_runtime.h>
#endif

static int fake_gpu;

typedef struct {
    const char *name;
    convnext_spec spec; /* the file's; only num_classes with random_arch */
    int height, width;
    int max_batch;
    const char *random_arch; /* not NULL: cnx_engine_create_random(random_arch, 1234) */
} config;

typedef struct {
    double max_rel_error;
    int top1_agree, top1_total, top1_confident_disagree;
} measure;


static float *random_input(int n, int height, int width, uint64_t seed) {
    const size_t count = (size_t)n * 3 * height * width;
    float *x = malloc(count * sizeof(float));
    if (!x) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    random_seed(seed);
    for (size_t i = 0; i < count; i++)
        x[i] = 2.5f * random_uniform();
    return x;
}

static float max_abs(const float *x, size_t count) {
    float m = 0.0f;
    for (size_t i = 0; i < count; i++)
        if (fabsf(x[i]) > m || isnan(x[i]))
            m = isnan(x[i]) ? INFINITY : fabsf(x[i]);
    return m;
}

static int argmax(const float *row, int classes, float *margin) {
    int best = 0;
    for (int c = 1; c < classes; c++)
        if (row[c] > row[best])
            best = c;
    float second = -INFINITY;
    for (int c = 0; c < classes; c++)
        if (c != best && row[c] > second)
            second = row[c];
    *margin = classes > 1 ? row[best] - second : INFINITY;
    return best;
}

/* Adds the comparison of got against ref (n rows) to m; NaN counts as infinite error. */
static void compare(measure *m, const float *got, const float *ref, int n, int classes,
                    double budget) {
    const size_t count = (size_t)n * classes;
    const double scale = max_abs(ref, count);
    double worst = 0.0;
    for (size_t i = 0; i < count; i++) {
        const double d = fabs((double)got[i] - ref[i]);
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    const double rel = scale > 0 ? worst / scale : worst;
    if (!(rel <= m->max_rel_error))
        m->max_rel_error = rel;
    for (int i = 0; i < n; i++) {
        float margin, unused;
        const int want = argmax(ref + (size_t)i * classes, classes, &margin);
        const int have = argmax(got + (size_t)i * classes, classes, &unused);
        m->top1_total++;
        if (want == have)
            m->top1_agree++;
        else if (margin > 2.0 * budget * scale)
            m->top1_confident_disagree++;
    }
}

static cnx_status make_engine(const char *path, cnx_device device, cnx_precision precision,
                              int max_batch, int input_size, cnx_engine **engine) {
    cnx_options o = cnx_default_options();
    o.device = device;
    o.precision = precision;
    o.max_batch = max_batch;
    o.input_size = input_size;
    return cnx_engine_create(path, &o, engine);
}

/* A config's engine: from its file at path, or its random architecture. */
static cnx_status make_config_engine(const config *c, const char *path, cnx_device device,
                                     cnx_precision precision, int max_batch, int input_size,
                                     cnx_engine **engine) {
    if (!c->random_arch)
        return make_engine(path, device, precision, max_batch, input_size, engine);
    cnx_options o = cnx_default_options();
    o.device = device;
    o.precision = precision;
    o.max_batch = max_batch;
    o.input_size = input_size;
    return cnx_engine_create_random(c->random_arch, 1234, &o, engine);
}

/* The tanh approximation cuBLASLt's GELU epilogue computes, against erf. */
static void report_gelu_tanh(void) {
    double worst = 0.0, at = 0.0;
    for (double x = -8.0; x <= 8.0; x += 1e-4) {
        const double exact = 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
        const double approx = 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        if (fabs(approx - exact) > worst) {
            worst = fabs(approx - exact);
            at = x;
        }
    }
    printf("note: the tanh GELU (cuBLASLt's epilogue) differs from the erf GELU by up to %.3g "
           "(at x = %.3f); cnx uses erf\n", worst, at);
}

static int same_bits(const float *a, const float *b, size_t count) {
    return memcmp(a, b, count * sizeof(float)) == 0;
}

#ifdef CNX_HAVE_CUDA
#define CUDA_CHECK(call)                                                               \
    do {                                                                               \
        cudaError_t e_ = (call);                                                       \
        CHECK(e_ == cudaSuccess, "%s: %s", #call, cudaGetErrorString(e_));             \
    } while (0)

/* The device-pointer entries on a caller's stream must give the host path's
 * bits: the same plan, kernels and algorithms, only the stream differs. */
static void check_device_pointers(cnx_engine *engine, const config *c, const float *input,
                                  const float *want, const cnx_prediction *want_top, int k,
                                  const char *label) {
    const int n = c->max_batch, classes = c->spec.num_classes;
    const size_t in_bytes = (size_t)n * 3 * c->height * c->width * sizeof(float);
    const size_t out_count = (size_t)n * classes;
    float *d_in = NULL, *d_logits = NULL;
    cudaStream_t stream = NULL;
    float *got = calloc(out_count, sizeof(float));
    cnx_prediction *top = calloc((size_t)n * k, sizeof *top);
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaMalloc((void **)&d_in, in_bytes));
    CUDA_CHECK(cudaMalloc((void **)&d_logits, out_count * sizeof(float)));
    if (!got || !top || !stream || !d_in || !d_logits)
        goto done;
    CUDA_CHECK(cudaMemcpy(d_in, input, in_bytes, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaDeviceSynchronize()); /* the legacy-stream copy vs non-blocking streams */
    CHECK(cnx_engine_set_cuda_stream(engine, stream) == CNX_OK, "%s: set stream: %s", label,
          cnx_last_error());
    /* Eager, captured, replayed on the new stream. */
    for (int run = 0; run < 3; run++) {
        CUDA_CHECK(cudaMemsetAsync(d_logits, 0xff, out_count * sizeof(float), stream));
        cnx_status status = cnx_engine_forward_device(engine, d_in, n, c->height, c->width, d_logits);
        CHECK(status == CNX_OK, "%s: forward_device run %d: %s", label, run, cnx_last_error());
        CUDA_CHECK(cudaStreamSynchronize(stream));
        CUDA_CHECK(cudaMemcpy(got, d_logits, out_count * sizeof(float), cudaMemcpyDeviceToHost));
        CHECK(same_bits(got, want, out_count),
              "%s: forward_device run %d on a caller stream differs from the host path", label, run);
    }
    cnx_status status = cnx_engine_classify_device(engine, d_in, n, c->height, c->width, k, top);
    CHECK(status == CNX_OK, "%s: classify_device: %s", label, cnx_last_error());
    CHECK(memcmp(top, want_top, (size_t)n * k * sizeof *top) == 0,
          "%s: classify_device differs from classify", label);
    CHECK(cnx_engine_set_cuda_stream(engine, NULL) == CNX_OK, "%s: back to the own stream: %s",
          label, cnx_last_error());
    /* On the engine's own stream the call returns with the logits written. */
    CUDA_CHECK(cudaMemset(d_logits, 0xff, out_count * sizeof(float)));
    CUDA_CHECK(cudaDeviceSynchronize()); /* the legacy-stream memset vs the engine's stream */
    status = cnx_engine_forward_device(engine, d_in, n, c->height, c->width, d_logits);
    CHECK(status == CNX_OK, "%s: forward_device on the own stream: %s", label, cnx_last_error());
    CUDA_CHECK(cudaMemcpy(got, d_logits, out_count * sizeof(float), cudaMemcpyDeviceToHost));
    CHECK(same_bits(got, want, out_count), "%s: forward_device on the own stream differs", label);
done:
    if (d_in)
        cudaFree(d_in);
    if (d_logits)
        cudaFree(d_logits);
    if (stream)
        cudaStreamDestroy(stream);
    free(got);
    free(top);
}
#endif

/* One precision of one config against the CPU logits `ref` of max_batch + 2
 * images of `input`. */
static void check_precision(const config *c, const char *path, cnx_precision precision,
                            const float *input, const float *ref) {
    const int classes = c->spec.num_classes, max = c->max_batch;
    const int input_size = c->height > c->width ? c->height : c->width;
    const double budget = precision_budgets[precision];
    char label[96];
    snprintf(label, sizeof label, "%s/%s", c->name, precision_names[precision]);

    cnx_engine *engine = NULL;
    cnx_status status = make_config_engine(c, path, fake_gpu ? CNX_DEVICE_CPU : CNX_DEVICE_CUDA,
                                           precision, max, input_size, &engine);
    CHECK(status == CNX_OK, "%s: create: %s", label, cnx_last_error());
    if (status != CNX_OK)
        return;
    cnx_model_info info;
    CHECK(cnx_engine_info(engine, &info) == CNX_OK, "%s: info", label);
    if (!fake_gpu) {
        CHECK(info.device == CNX_DEVICE_CUDA && strstr(info.device_name, precision_names[precision]),
              "%s: info says device %d, \"%s\"", label, (int)info.device, info.device_name);
    }

    measure m = {0, 0, 0, 0};
    const size_t out_count = (size_t)(max + 2) * classes;
    float *first = malloc(out_count * sizeof(float));  /* batch max, eager */
    float *runs[3];
    for (int r = 0; r < 3; r++)
        runs[r] = malloc(out_count * sizeof(float));
    float *logits = malloc(out_count * sizeof(float));
    if (!first || !runs[0] || !runs[1] || !runs[2] || !logits) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }

    /* Batches 1, 3 and max: the first run of each plan is eager. */
    const int batches[3] = {1, 3 < max ? 3 : max, max};
    for (int b = 0; b < 3; b++) {
        const int n = batches[b];
        float *out = n == max ? first : logits;
        memset(out, 0xff, (size_t)n * classes * sizeof(float));
        status = cnx_engine_forward(engine, input, n, c->height, c->width, out);
        CHECK(status == CNX_OK, "%s: forward batch %d: %s", label, n, cnx_last_error());
        compare(&m, out, ref, n, classes, budget);
    }
    /* Batch max again: captured into a graph, then replayed twice. Each must
     * equal the eager run bit for bit. */
    for (int r = 0; r < 3; r++) {
        memset(runs[r], 0xff, (size_t)max * classes * sizeof(float));
        status = cnx_engine_forward(engine, input, max, c->height, c->width, runs[r]);
        CHECK(status == CNX_OK, "%s: forward run %d: %s", label, r, cnx_last_error());
        CHECK(same_bits(runs[r], first, (size_t)max * classes),
              "%s: run %d (%s) differs from the eager run", label, r, r ? "graph replay" : "capture");
    }
    /* Another plan in between must not disturb the graph of this one. */
    status = cnx_engine_forward(engine, input, 1, c->height, c->width, logits);
    CHECK(status == CNX_OK, "%s: forward batch 1 again: %s", label, cnx_last_error());
    status = cnx_engine_forward(engine, input, max, c->height, c->width, runs[0]);
    CHECK(status == CNX_OK && same_bits(runs[0], first, (size_t)max * classes),
          "%s: replay after another plan differs", label);

    /* max + 2 images: split into max and 2. */
    memset(logits, 0xff, out_count * sizeof(float));
    status = cnx_engine_forward(engine, input, max + 2, c->height, c->width, logits);
    CHECK(status == CNX_OK, "%s: forward of %d images: %s", label, max + 2, cnx_last_error());
    CHECK(same_bits(logits, first, (size_t)max * classes), "%s: the split's first chunk differs", label);
    compare(&m, logits, ref, max + 2, classes, budget);

    /* classify: the device top-k against cnx_top_k on the same logits. */
    const int k = classes < 5 ? classes : 5;
    cnx_prediction *top = calloc((size_t)max * k, sizeof *top);
    cnx_prediction *want = calloc((size_t)k, sizeof *want);
    status = cnx_engine_classify(engine, input, max, c->height, c->width, k, top);
    CHECK(status == CNX_OK, "%s: classify: %s", label, cnx_last_error());
    for (int i = 0; i < max && status == CNX_OK; i++) {
        CHECK(cnx_top_k(first + (size_t)i * classes, classes, k, want) == CNX_OK, "%s: top_k", label);
        for (int j = 0; j < k; j++) {
            const cnx_prediction *g = &top[(size_t)i * k + j], *w = &want[j];
            CHECK(g->class_index == w->class_index && g->logit == w->logit &&
                      fabsf(g->probability - w->probability) <= 1e-6f * (1.0f + w->probability),
                  "%s: image %d rank %d: got class %d p %.9g logit %.9g, want class %d p %.9g logit %.9g",
                  label, i, j, g->class_index, g->probability, g->logit, w->class_index,
                  w->probability, w->logit);
        }
    }

#ifdef CNX_HAVE_CUDA
    if (!fake_gpu)
        check_device_pointers(engine, c, input, first, top, k, label);
#endif

    const double scale = max_abs(ref, out_count);
    printf("%-6s %-5s  max|err|/max|cpu| %.3e (budget %.0e)  top-1 %d/%d agree, %d confident "
           "disagreements  (max|cpu| %.3g)\n", c->name, precision_names[precision], m.max_rel_error,
           budget, m.top1_agree, m.top1_total, m.top1_confident_disagree, scale);
    CHECK(m.max_rel_error <= budget, "%s: max relative logit error %.3e over the budget %.0e",
          label, m.max_rel_error, budget);
    CHECK(m.top1_confident_disagree == 0, "%s: %d images with a clear top-1 disagree", label,
          m.top1_confident_disagree);

    free(top);
    free(want);
    free(first);
    for (int r = 0; r < 3; r++)
        free(runs[r]);
    free(logits);
    cnx_engine_destroy(engine);
}

static void check_config(const config *c, const char *dir, int quick) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, c->name);
    if (!c->random_arch)
        CHECK(write_random_model(&c->spec, 1234, path) == 0, "%s: write %s", c->name, path);
    const int classes = c->spec.num_classes, n = c->max_batch + 2;
    const int input_size = c->height > c->width ? c->height : c->width;
    float *input = random_input(n, c->height, c->width, 99);
    float *ref = malloc((size_t)n * classes * sizeof(float));

    cnx_engine *cpu = NULL;
    cnx_status status = make_config_engine(c, path, CNX_DEVICE_CPU, CNX_PRECISION_FP32, n,
                                           input_size, &cpu);
    CHECK(status == CNX_OK, "%s: CPU engine: %s", c->name, cnx_last_error());
    if (status == CNX_OK) {
        status = cnx_engine_forward(cpu, input, n, c->height, c->width, ref);
        CHECK(status == CNX_OK, "%s: CPU forward: %s", c->name, cnx_last_error());
        /* The CPU engine refuses device pointers and streams. */
        float dummy = 0.0f;
        CHECK(cnx_engine_forward_device(cpu, input, 1, c->height, c->width, &dummy) ==
                  CNX_ERROR_UNSUPPORTED, "%s: forward_device on a CPU engine", c->name);
        CHECK(cnx_engine_set_cuda_stream(cpu, NULL) == CNX_OK, "%s: NULL stream on a CPU engine",
              c->name);
        CHECK(cnx_engine_set_cuda_stream(cpu, &dummy) == CNX_ERROR_UNSUPPORTED,
              "%s: a stream on a CPU engine", c->name);
        cnx_engine_destroy(cpu);
    }
    if (status == CNX_OK) {
        for (int p = CNX_PRECISION_FP32; p <= CNX_PRECISION_BF16; p++) {
            if (fake_gpu && p != CNX_PRECISION_FP32)
                continue;
            if (quick && p != CNX_PRECISION_FP32 && p != CNX_PRECISION_FP16)
                continue;
            check_precision(c, path, (cnx_precision)p, input, ref);
        }
    }
    free(input);
    free(ref);
    unlink(path);
}

/* Inputs larger than planned: split into fewer images per call, or refused
 * when not even one fits. */
static void check_larger_inputs(const char *dir) {
    if (fake_gpu)
        return;
    char path[4200];
    snprintf(path, sizeof path, "%s/larger.safetensors", dir);
    const convnext_spec spec = writer_small_spec(CNX_NAMING_TORCHVISION, "F32");
    CHECK(write_random_model(&spec, 77, path) == 0, "larger: write");
    const int side = 128, n = 3, classes = spec.num_classes;
    float *input = random_input(n, side, side, 5);
    float ref[3 * 5], got[3 * 5];
    cnx_engine *cpu = NULL, *gpu = NULL;
    CHECK(make_engine(path, CNX_DEVICE_CPU, CNX_PRECISION_FP32, n, side, &cpu) == CNX_OK,
          "larger: CPU engine: %s", cnx_last_error());
    /* Planned for 5 images of 64x64: one 128x128 image fits per call. */
    CHECK(make_engine(path, CNX_DEVICE_CUDA, CNX_PRECISION_FP32, 5, 64, &gpu) == CNX_OK,
          "larger: CUDA engine: %s", cnx_last_error());
    if (cpu && gpu) {
        CHECK(cnx_engine_forward(cpu, input, n, side, side, ref) == CNX_OK, "larger: CPU forward");
        CHECK(cnx_engine_forward(gpu, input, n, side, side, got) == CNX_OK,
              "larger: CUDA forward of 3 images of 128x128: %s", cnx_last_error());
        measure m = {0, 0, 0, 0};
        compare(&m, got, ref, n, classes, precision_budgets[0]);
        CHECK(m.max_rel_error <= precision_budgets[0], "larger: error %.3e", m.max_rel_error);
        float *huge = random_input(1, 512, 512, 6);
        const cnx_status status = cnx_engine_forward(gpu, huge, 1, 512, 512, got);
        CHECK(status == CNX_ERROR_INVALID_ARGUMENT && strstr(cnx_last_error(), "input_size"),
              "larger: 512x512 on an engine planned for 64x64: status %d, \"%s\"", (int)status,
              cnx_last_error());
        free(huge);
    }
    cnx_engine_destroy(cpu);
    cnx_engine_destroy(gpu);
    free(input);
    unlink(path);
}

int main(int argc, char **argv) {
    int quick = 0;
    const char *dir_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else
            dir_arg = argv[i];
    }
    const char *fake = getenv("CNX_TEST_FAKE_GPU");
    fake_gpu = fake && strcmp(fake, "1") == 0;

    char name[128], why[256];
    if (!fake_gpu && !cnx_cuda_usable(0, name, sizeof name, why, sizeof why)) {
        printf("SKIP: %s\n", why);
        return 77;
    }
#ifndef CNX_HAVE_CUDA
    if (!fake_gpu) {
        printf("SKIP: built without CUDA\n");
        return 77;
    }
#endif
    printf("device: %s\n", fake_gpu ? "CPU standing in for the GPU (CNX_TEST_FAKE_GPU=1)" : name);

    char dir[2048];
    if (dir_arg) {
        snprintf(dir, sizeof dir, "%s", dir_arg);
        if (test_make_dir(dir) != 0) {
            fprintf(stderr, "cannot create %s\n", dir);
            return 2;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/cnx_gpu_XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            fprintf(stderr, "cannot create a temporary folder\n");
            return 2;
        }
    }

    /* A GPU that cuBLASLt or our kernels cannot use is a skip, not a failure. */
    if (!fake_gpu) {
        char path[4200];
        snprintf(path, sizeof path, "%s/probe.safetensors", dir);
        const convnext_spec spec = writer_small_spec(CNX_NAMING_TORCHVISION, "F32");
        cnx_engine *probe = NULL;
        if (write_random_model(&spec, 1, path) == 0 &&
            make_engine(path, CNX_DEVICE_CUDA, CNX_PRECISION_FP32, 1, 64, &probe) == CNX_ERROR_NO_DEVICE) {
            printf("SKIP: %s\n", cnx_last_error());
            unlink(path);
            return 77;
        }
        cnx_engine_destroy(probe);
        unlink(path);
    }
    report_gelu_tanh();

    const int small_d[4] = {1, 1, 2, 1}, small_w[4] = {8, 16, 32, 64};
    const int atto_d[4] = {2, 2, 2, 2}, atto_w[4] = {40, 80, 160, 320};
    const int tiny_d[4] = {3, 3, 9, 3}, tiny_w[4] = {96, 192, 384, 768};
    const int v2_atto_d[4] = {2, 2, 6, 2};
    const config configs[4] = {
        {"small", random_spec(CNX_NAMING_TORCHVISION, small_d, small_w, 5), 64, 64, 5, NULL},
        {"atto", random_spec(CNX_NAMING_TIMM, atto_d, atto_w, 37), 96, 80, 4, NULL},
        {"tiny", random_spec(CNX_NAMING_TORCHVISION, tiny_d, tiny_w, 1000), 224, 224, 8, NULL},
        {"v2atto", random_spec(CNX_NAMING_TIMM, v2_atto_d, atto_w, 1000), 96, 80, 4,
         "convnextv2_atto"},
    };
    for (int i = 0; i < 4; i++) {
        if (quick && i == 2)
            continue;
        check_config(&configs[i], dir, quick);
    }
    check_larger_inputs(dir);
    if (!dir_arg)
        rmdir(dir);
    return test_summary();
}
