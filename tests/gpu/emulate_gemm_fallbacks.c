/* The CUDA backend's GEMM fallbacks, on the emulated GPU (emulate_cuda.h)
 * with a cuBLASLt short of algorithms (emu_lt_* in emulate_runtime.cpp),
 * against the CPU backend. No GPU needed.
 *
 *   emulate_gemm_fallbacks [WORK_DIR]
 *
 * Checks, on a small random model (13 GEMM plans, 15 matmuls a forward):
 * - no algorithm with the bias epilogue: the bias added by add_bias, before
 *   fc2's beta = 1 GEMM and after the beta = 0 ones (stem, downsampling,
 *   classifier); logits within each precision's budget, graphs alike;
 * - no heuristic result, for every GEMM or one: creation fails with the
 *   GEMM's name, shape and precision and leaks nothing; for a batch planned
 *   later, that forward fails and the engine goes on working;
 * - a first-ranked result that is unusable (its state, its workspace): the
 *   next is planned;
 * - the first (or first two) algorithms refused by cublasLtMatmul: the next
 *   runs, once per plan (the choice is kept for later runs and the graph);
 *   every algorithm failing: an error naming the GEMM; a launch that failed
 *   (EXECUTION_FAILED): tried again where the output is overwritten (fc1),
 *   an error where it is added to (fc2); on a stream the caller is
 *   capturing, no other algorithm is tried. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "convnext_weights.h"
#include "cpu_backend.h"
#include "cuda_backend.h"
#include "precision_budgets.h"
#include "random_model.h"
#include "emulate_api.h"
#include "test_check.h"


enum {
    BATCH = 2,
    SIDE = 64,
    PLANS = 13,    /* stem, 3 downsampling, 4 fc1, 4 fc2, classifier */
    MATMULS = 15,  /* stage 2 has two blocks */
    OFFERED = 3,   /* algorithms the emulated heuristic ranks */
};


static cnx_convnext_weights model;
static float *input, *ref; /* BATCH images, the CPU backend's logits */
static size_t classes;

/* What the emulation holds alive: device and host memory, streams, events,
 * graphs, cuBLASLt objects. */
typedef struct {
    long counts[6];
} live_objects;

static live_objects live(void) {
    live_objects l;
    emu_live(&l.counts[0], &l.counts[1], &l.counts[2], &l.counts[3], &l.counts[4]);
    l.counts[5] = emu_lt_live();
    return l;
}

static void check_no_leak(const char *label, live_objects before) {
    const live_objects after = live();
    static const char *what[] = {"device allocations", "host allocations", "streams", "events",
                                 "graphs", "cuBLASLt objects"};
    for (int i = 0; i < 6; i++)
        CHECK(after.counts[i] == before.counts[i], "%s: %ld %s alive, %ld before", label,
              after.counts[i], what[i], before.counts[i]);
}

static void uses(int rank, long *ran, long *refused) {
    emu_lt_algorithm_uses(rank, ran, refused);
}

/* A forward of n images, its logits within the precision's budget; the
 * status. */
static cnx_status forward_checked(const char *label, cuda_backend *gpu, int precision, int n,
                                  float *logits) {
    const cnx_status status = cuda_backend_forward(gpu, input, 0, n, SIDE, SIDE, logits, 0);
    CHECK(status == CNX_OK, "%s: forward of %d: %s", label, n, cnx_last_error());
    if (status != CNX_OK)
        return status;
    const double error = relative_error(logits, ref, (size_t)n * classes);
    CHECK(error <= precision_budgets[precision], "%s: batch %d: error %.3e over %.0e", label, n, error,
          precision_budgets[precision]);
    if (n == BATCH)
        printf("%-34s %-5s max|err|/max|cpu| %.3e (budget %.0e)\n", label, precision_names[precision], error,
               precision_budgets[precision]);
    return status;
}

/* The eager run, the capture and two replays: the same bits each. */
static void forward_four_times(const char *label, cuda_backend *gpu, int precision) {
    float got[BATCH * 8], again[BATCH * 8];
    if (forward_checked(label, gpu, precision, BATCH, got) != CNX_OK)
        return;
    for (int run = 1; run <= 3; run++) {
        memset(again, 0, sizeof again);
        const cnx_status status = cuda_backend_forward(gpu, input, 0, BATCH, SIDE, SIDE, again, 0);
        CHECK(status == CNX_OK && memcmp(again, got, classes * BATCH * sizeof(float)) == 0,
              "%s: run %d (%s) differs: %s", label, run, run == 1 ? "capture" : "replay",
              cnx_last_error());
    }
}

static cuda_backend *create(const char *label, int precision) {
    cuda_backend *gpu = NULL;
    const cnx_status status =
        cuda_backend_create(&model, (cnx_precision)precision, BATCH, SIDE, 0, NULL, &gpu);
    CHECK(status == CNX_OK, "%s: create: %s", label, cnx_last_error());
    return gpu;
}

/* No algorithm with the bias epilogue: every bias by add_bias. */
static void check_bias_by_kernel(void) {
    for (int p = 0; p < 4; p++) {
        emu_lt_reset();
        emu_lt_reject_bias_epilogue(1);
        cuda_backend *gpu = create("no bias epilogue", p);
        if (!gpu)
            continue;
        forward_four_times("no bias epilogue (bias by kernel)", gpu, p);
        long ran, refused;
        uses(0, &ran, &refused);
        CHECK(ran == 4 * MATMULS && refused == 0, "no bias epilogue, %s: %ld matmuls ran, %ld refused",
              precision_names[p], ran, refused);
        cuda_backend_destroy(gpu);
    }
}

/* The message of a failed planning names the GEMM, its shape, the precision. */
static void check_planning_fails(const char *label, cnx_status status, const char *gemm) {
    const char *message = cnx_last_error();
    CHECK(status == CNX_ERROR_DEVICE && strstr(message, gemm) && strstr(message, "no algorithm"),
          "%s: status %d, message \"%s\" (want \"%s\")", label, (int)status, message, gemm);
    printf("%s: %s\n", label, message);
}

/* No heuristic result: engine creation fails cleanly. */
static void check_no_results(void) {
    static const struct {
        const char *label;
        long m, n, k;
        int status, precision;
        const char *gemm;
    } cases[] = {
        {"no results for any GEMM", 0, 0, 0, CUBLAS_STATUS_SUCCESS, CNX_PRECISION_FP32,
         "the stem GEMM (m 8, n 512, k 48, fp32)"},
        {"no results for stage 3's fc2", 32, 32, 128, CUBLAS_STATUS_NOT_SUPPORTED,
         CNX_PRECISION_FP16, "the fc2 GEMM (m 32, n 32, k 128, fp16)"},
        {"no results for the classifier", 5, 2, 64, CUBLAS_STATUS_NOT_SUPPORTED,
         CNX_PRECISION_BF16, "the classifier GEMM (m 5, n 2, k 64, bf16)"},
        {"no results for stage 1's fc1", 32, 0, 8, CUBLAS_STATUS_SUCCESS, CNX_PRECISION_TF32,
         "the fc1 GEMM (m 32, n 512, k 8, tf32)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        emu_lt_reset();
        emu_lt_no_results(cases[i].m, cases[i].n, cases[i].k, cases[i].status);
        const live_objects before = live();
        cuda_backend *gpu = (cuda_backend *)1;
        const cnx_status status = cuda_backend_create(&model, (cnx_precision)cases[i].precision,
                                                      BATCH, SIDE, 0, NULL, &gpu);
        check_planning_fails(cases[i].label, status, cases[i].gemm);
        CHECK(gpu == NULL, "%s: an engine came back", cases[i].label);
        check_no_leak(cases[i].label, before);
    }

    /* Only batch 1's stem (n 256): creation (batch 2) works, batch 1 fails,
     * batch 2 goes on. */
    emu_lt_reset();
    emu_lt_no_results(8, 256, 48, CUBLAS_STATUS_NOT_SUPPORTED);
    const live_objects before = live();
    cuda_backend *gpu = create("no results for batch 1", CNX_PRECISION_FP32);
    if (gpu) {
        float logits[BATCH * 8];
        const cnx_status status = cuda_backend_forward(gpu, input, 0, 1, SIDE, SIDE, logits, 0);
        check_planning_fails("no results for batch 1's stem", status,
                             "the stem GEMM (m 8, n 256, k 48, fp32)");
        forward_four_times("no results for batch 1, batch 2", gpu, CNX_PRECISION_FP32);
        cuda_backend_destroy(gpu);
    }
    check_no_leak("no results for batch 1", before);
}

/* A first-ranked result that is unusable: planned past. */
static void check_spoiled_first(void) {
    static const char *how[] = {NULL, "first result not SUCCESS", "first result over the workspace"};
    for (int h = 1; h <= 2; h++) {
        emu_lt_reset();
        emu_lt_spoil_first_result(h);
        const int precision = h == 1 ? CNX_PRECISION_FP16 : CNX_PRECISION_TF32;
        cuda_backend *gpu = create(how[h], precision);
        if (!gpu)
            continue;
        forward_four_times(how[h], gpu, precision);
        long ran0, refused0, ran1, refused1;
        uses(0, &ran0, &refused0);
        uses(1, &ran1, &refused1);
        CHECK(ran0 == 0 && refused0 == 0 && ran1 == 4 * MATMULS && refused1 == 0,
              "%s: rank 0 ran %ld, refused %ld; rank 1 ran %ld, refused %ld", how[h], ran0,
              refused0, ran1, refused1);
        cuda_backend_destroy(gpu);
    }
}

/* The first algorithm of every GEMM fails at run time: each plan falls
 * through once, in its eager run, and keeps the next. */
static void check_first_fails(void) {
    for (int p = 0; p < 4; p++) {
        emu_lt_reset();
        const int status = p % 2 ? CUBLAS_STATUS_NOT_SUPPORTED : CUBLAS_STATUS_INVALID_VALUE;
        emu_lt_fail_algorithms(0, 0, 0, 1, status);
        cuda_backend *gpu = create("first algorithm fails", p);
        if (!gpu)
            continue;
        forward_four_times("first algorithm fails", gpu, p);
        long ran0, refused0, ran1, refused1;
        uses(0, &ran0, &refused0);
        uses(1, &ran1, &refused1);
        CHECK(ran0 == 0 && refused0 == PLANS && ran1 == 4 * MATMULS && refused1 == 0,
              "first algorithm fails, %s: rank 0 ran %ld, refused %ld (want %d); rank 1 ran %ld "
              "(want %d), refused %ld", precision_names[p], ran0, refused0, PLANS, ran1, 4 * MATMULS, refused1);
        /* Batch 1: a plan of its own, which falls through in its turn. */
        float logits[BATCH * 8];
        forward_checked("first algorithm fails, batch 1", gpu, p, 1, logits);
        uses(0, &ran0, &refused0);
        CHECK(refused0 == 2 * PLANS, "first algorithm fails, %s, batch 1: %ld refused, want %d",
              precision_names[p], refused0, 2 * PLANS);
        cuda_backend_destroy(gpu);
    }
}

/* Stage 2's fc1 (m 64, k 16): its first two fail, the third runs. */
static void check_two_fail(void) {
    emu_lt_reset();
    emu_lt_fail_algorithms(64, 0, 16, 2, CUBLAS_STATUS_NOT_SUPPORTED);
    cuda_backend *gpu = create("first two fail", CNX_PRECISION_BF16);
    if (!gpu)
        return;
    forward_four_times("first two fail (stage 2's fc1)", gpu, CNX_PRECISION_BF16);
    long ran[3], refused[3];
    for (int r = 0; r < 3; r++)
        uses(r, &ran[r], &refused[r]);
    CHECK(refused[0] == 1 && refused[1] == 1 && ran[1] == 0 && ran[2] == 4 &&
              ran[0] == 4 * (MATMULS - 1),
          "first two fail: ran %ld %ld %ld, refused %ld %ld", ran[0], ran[1], ran[2], refused[0],
          refused[1]);
    cuda_backend_destroy(gpu);
}

/* A launch that failed (EXECUTION_FAILED) may have written part of D: fc1
 * (beta 0) tries its next algorithm, stage 3's fc2 (beta 1, onto the
 * residual) must not, and fails naming the GEMM. */
static void check_failed_launch(void) {
    emu_lt_reset();
    emu_lt_fail_algorithms(32, 0, 8, 1, CUBLAS_STATUS_EXECUTION_FAILED); /* stage 1's fc1 */
    cuda_backend *gpu = create("failed launch, fc1", CNX_PRECISION_FP32);
    if (gpu) {
        forward_four_times("failed launch, fc1 (beta 0)", gpu, CNX_PRECISION_FP32);
        cuda_backend_destroy(gpu);
    }
    emu_lt_reset();
    emu_lt_fail_algorithms(32, 0, 128, 1, CUBLAS_STATUS_EXECUTION_FAILED); /* stage 3's fc2 */
    gpu = create("failed launch, fc2", CNX_PRECISION_FP32);
    if (gpu) {
        float logits[BATCH * 8];
        const cnx_status status = cuda_backend_forward(gpu, input, 0, BATCH, SIDE, SIDE, logits, 0);
        const char *message = cnx_last_error();
        CHECK(status == CNX_ERROR_DEVICE && strstr(message, "the fc2 GEMM") &&
                  strstr(message, "half added to"),
              "failed launch, fc2: status %d, message \"%s\"", (int)status, message);
        printf("failed launch, fc2: %s\n", message);
        cuda_backend_destroy(gpu);
    }
}

/* Every algorithm of stage 1's fc1 fails: the forward fails naming it, the
 * engine goes on once the fault is gone, and nothing leaks. */
static void check_all_fail(void) {
    emu_lt_reset();
    const live_objects before = live();
    emu_lt_fail_algorithms(32, 0, 8, OFFERED, CUBLAS_STATUS_EXECUTION_FAILED);
    cuda_backend *gpu = create("all algorithms fail", CNX_PRECISION_FP32);
    if (gpu) {
        float logits[BATCH * 8];
        const cnx_status status = cuda_backend_forward(gpu, input, 0, BATCH, SIDE, SIDE, logits, 0);
        const char *message = cnx_last_error();
        CHECK(status == CNX_ERROR_DEVICE &&
                  strstr(message, "the fc1 GEMM (m 32, n 512, k 8, fp32) with algorithm 3 of 3"),
              "all algorithms fail: status %d, message \"%s\"", (int)status, message);
        printf("all algorithms fail: %s\n", message);
        emu_lt_reset();
        forward_four_times("after all algorithms failed once", gpu, CNX_PRECISION_FP32);
        cuda_backend_destroy(gpu);
    }
    check_no_leak("all algorithms fail", before);
}

/* On a stream the caller is capturing, a failed matmul is not retried
 * (the capture is the caller's); the same call on the stream uncaptured
 * falls through. */
static void check_no_retry_in_capture(void) {
    emu_lt_reset();
    emu_lt_fail_algorithms(0, 0, 0, 1, CUBLAS_STATUS_NOT_SUPPORTED);
    cuda_backend *gpu = create("capturing caller", CNX_PRECISION_FP32);
    if (!gpu)
        return;
    const size_t input_bytes = (size_t)BATCH * 3 * SIDE * SIDE * sizeof(float);
    float *d_in = NULL, *d_logits = NULL, logits[BATCH * 8];
    cudaStream_t stream = NULL;
    emu_cudaMalloc((void **)&d_in, input_bytes);
    emu_cudaMalloc((void **)&d_logits, classes * BATCH * sizeof(float));
    emu_cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    memcpy(d_in, input, input_bytes); /* host memory here */
    CHECK(cuda_backend_set_stream(gpu, stream) == CNX_OK, "capturing caller: set stream");

    cudaGraph_t graph = NULL;
    emu_cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
    const cnx_status status = cuda_backend_forward(gpu, d_in, 1, BATCH, SIDE, SIDE, d_logits, 1);
    const char *message = cnx_last_error();
    CHECK(status == CNX_ERROR_DEVICE && strstr(message, "the stem GEMM") &&
              strstr(message, "captured (no other tried)"),
          "capturing caller: status %d, message \"%s\"", (int)status, message);
    printf("capturing caller: %s\n", message);
    emu_cudaStreamEndCapture(stream, &graph);
    if (graph)
        emu_cudaGraphDestroy(graph);
    long ran, refused;
    uses(0, &ran, &refused);
    CHECK(refused == 1, "capturing caller: %ld matmuls refused, want 1 (no retry)", refused);

    const cnx_status again = cuda_backend_forward(gpu, d_in, 1, BATCH, SIDE, SIDE, d_logits, 1);
    CHECK(again == CNX_OK, "capturing caller, then not: %s", cnx_last_error());
    emu_cudaStreamSynchronize(stream); /* the call only queued the work */
    cuda_backend_set_stream(gpu, NULL);
    memcpy(logits, d_logits, classes * BATCH * sizeof(float));
    const double error = relative_error(logits, ref, classes * BATCH);
    CHECK(again == CNX_OK && error <= precision_budgets[0], "capturing caller, then not: error %.3e", error);
    cuda_backend_destroy(gpu);
    emu_cudaStreamDestroy(stream);
    emu_cudaFree(d_in);
    emu_cudaFree(d_logits);
}

int main(int argc, char **argv) {
    char dir[2048], path[2200];
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "/tmp/cnx_fallbacks_XXXXXX");
    if (argc > 1 ? test_make_dir(dir) != 0 : mkdtemp(dir) == NULL) {
        fprintf(stderr, "cannot create %s\n", dir);
        return 2;
    }
    const int depths[4] = {1, 1, 2, 1}, widths[4] = {8, 16, 32, 64};
    const convnext_spec spec = random_spec(CNX_NAMING_TORCHVISION, depths, widths, 5);
    snprintf(path, sizeof path, "%s/fallbacks.safetensors", dir);
    CHECK(write_random_model(&spec, 11, path) == 0, "write %s", path);
    const cnx_status loaded = cnx_convnext_weights_load(path, &model);
    CHECK(loaded == CNX_OK, "load: %s", cnx_last_error());
    unlink(path);
    if (argc <= 1)
        rmdir(dir);
    if (loaded != CNX_OK)
        return test_summary();
    classes = (size_t)model.num_classes;

    const size_t pixels = (size_t)BATCH * 3 * SIDE * SIDE;
    input = malloc(pixels * sizeof(float));
    ref = malloc(classes * BATCH * sizeof(float));
    random_seed(5);
    for (size_t i = 0; i < pixels; i++)
        input[i] = 2.5f * random_uniform();
    cpu_backend *cpu = NULL;
    CHECK(cpu_backend_create(&model, BATCH, SIDE, 0, &cpu) == CNX_OK &&
              cpu_backend_forward(cpu, input, BATCH, SIDE, SIDE, ref) == CNX_OK,
          "CPU backend: %s", cnx_last_error());
    cpu_backend_destroy(cpu);

    check_bias_by_kernel();
    check_no_results();
    check_spoiled_first();
    check_first_fails();
    check_two_fail();
    check_all_fail();
    check_failed_launch();
    check_no_retry_in_capture();
    emu_lt_reset();

    free(input);
    free(ref);
    cnx_convnext_weights_free(&model);
    emu_report();
    return test_summary();
}
