/* The CUDA backend's stream contract (host/cuda/cuda_backend.h), on the
 * emulated GPU with every stream deferred as late as CUDA allows, the
 * legacy default stream included:
 *
 * - legacy stream: on the backend's own stream, device input that the
 *   caller wrote with a synchronous cudaMemcpy from pageable memory (which
 *   returns before its DMA has run) is read after that copy;
 * - graph capture by the caller: after two warm-up calls on the caller's
 *   stream, forward captured into the caller's graph (for a known and a new
 *   batch size, the latter replacing a cached plan that has a graph of its
 *   own) gives, when the graph is launched, the eager bits; the calls that
 *   cannot be captured, and moving the engine onto a capturing stream, are
 *   refused without spoiling the caller's capture;
 * - a caller's stream destroyed before the backend moves off it or is
 *   destroyed: neither touches the dead stream.
 *
 *   emulate_streams [WORK_DIR] */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime.h>

#include "convnext_weights.h"
#include "cuda_backend.h"
#include "random_model.h"
#include "emulate_api.h"
#include "test_check.h"


enum { N = 2, SIDE = 32 };

typedef struct {
    cnx_convnext_weights weights;
    int classes;
    size_t input_floats, logit_floats;
    float *input;    /* host, pageable */
    float *expected; /* the eager logits from host memory */
} fixture;

static int make_fixture(fixture *f, const char *dir) {
    const int depths[4] = {1, 1, 1, 1}, widths[4] = {16, 24, 32, 40};
    convnext_spec spec = random_spec(CNX_NAMING_TORCHVISION, depths, widths, 10);
    char path[4200];
    snprintf(path, sizeof path, "%s/emulate_streams.safetensors", dir);
    CHECK(write_random_model(&spec, 23, path) == 0, "write the model");
    const cnx_status status = cnx_convnext_weights_load(path, &f->weights);
    unlink(path);
    CHECK(status == CNX_OK, "load: %s", cnx_last_error());
    if (status != CNX_OK)
        return 0;
    f->classes = f->weights.num_classes;
    f->input_floats = (size_t)N * 3 * SIDE * SIDE;
    f->logit_floats = (size_t)N * f->classes;
    f->input = random_floats(f->input_floats, 3);
    f->expected = malloc(f->logit_floats * sizeof(float));
    cuda_backend *gpu = NULL;
    CHECK(cuda_backend_create(&f->weights, CNX_PRECISION_FP32, N, SIDE, 0, NULL, &gpu) == CNX_OK &&
              cuda_backend_forward(gpu, f->input, 0, N, SIDE, SIDE, f->expected, 0) == CNX_OK,
          "eager reference: %s", cnx_last_error());
    cuda_backend_destroy(gpu);
    return 1;
}

/* Device logits equal to the first `rows` rows of the reference, bitwise. */
static int same_logits(const fixture *f, const float *d_logits, int rows) {
    float *got = malloc(f->logit_floats * sizeof(float));
    emu_cudaMemcpy(got, d_logits, (size_t)rows * f->classes * sizeof(float), cudaMemcpyDeviceToHost);
    const int same = memcmp(got, f->expected, (size_t)rows * f->classes * sizeof(float)) == 0;
    free(got);
    return same;
}

/* d_in holds the poison; then the input is written over it with a
 * synchronous cudaMemcpy from pageable memory, which returns once the
 * source is staged: the copy itself waits on the legacy stream. */
static void write_behind_poison(const fixture *f, float *d_in, const float *poison) {
    emu_cudaMemcpy(d_in, poison, f->input_floats * sizeof(float), cudaMemcpyHostToDevice);
    emu_cudaStreamSynchronize(NULL);
    emu_cudaMemcpy(d_in, f->input, f->input_floats * sizeof(float), cudaMemcpyHostToDevice);
}

static void legacy_stream_ordering(const fixture *f) {
    cuda_backend *gpu = NULL;
    float *d_in = NULL, *d_logits = NULL;
    CHECK(cuda_backend_create(&f->weights, CNX_PRECISION_FP32, N, SIDE, 0, NULL, &gpu) == CNX_OK,
          "create: %s", cnx_last_error());
    emu_cudaMalloc((void **)&d_in, f->input_floats * sizeof(float));
    emu_cudaMalloc((void **)&d_logits, f->logit_floats * sizeof(float));
    float *poison = malloc(f->input_floats * sizeof(float));
    memset(poison, 0xff, f->input_floats * sizeof(float)); /* NaN: a stale read shows */
    for (int run = 0; run < 3; run++) { /* eager, capture, replay */
        write_behind_poison(f, d_in, poison);
        const cnx_status status = cuda_backend_forward(gpu, d_in, 1, N, SIDE, SIDE, d_logits, 1);
        CHECK(status == CNX_OK && same_logits(f, d_logits, N),
              "run %d: forward on device input written on the legacy stream read it stale (%s)",
              run, status == CNX_OK ? "wrong logits" : cnx_last_error());
        write_behind_poison(f, d_in, poison);
        cnx_prediction top[N], want;
        const cnx_status classified = cuda_backend_classify(gpu, d_in, 1, N, SIDE, SIDE, 1, top);
        CHECK(classified == CNX_OK, "run %d: classify on legacy-stream input: %s", run,
              cnx_last_error());
        for (int i = 0; i < N && classified == CNX_OK; i++) {
            cnx_top_k(f->expected + (size_t)i * f->classes, f->classes, 1, &want);
            CHECK(top[i].class_index == want.class_index && top[i].logit == want.logit,
                  "run %d: classify image %d: class %d (logit %g), want %d (%g)", run, i,
                  top[i].class_index, top[i].logit, want.class_index, want.logit);
        }
    }
    free(poison);
    cuda_backend_destroy(gpu);
    emu_cudaFree(d_in);
    emu_cudaFree(d_logits);
}

/* forward(rows images) captured into the caller's graph, launched. */
static void capture_forward(const fixture *f, cuda_backend *gpu, cudaStream_t stream,
                            const float *d_in, float *d_logits, int rows) {
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    CHECK(emu_cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess,
          "begin capture");
    const cnx_status status = cuda_backend_forward(gpu, d_in, 1, rows, SIDE, SIDE, d_logits, 1);
    CHECK(status == CNX_OK, "batch %d: forward during the caller's capture: %s", rows,
          cnx_last_error());
    const cudaError_t ended = emu_cudaStreamEndCapture(stream, &graph);
    CHECK(ended == cudaSuccess && graph, "batch %d: the caller's capture ended with error %d",
          rows, (int)ended);
    if (ended != cudaSuccess || !graph)
        return;
    CHECK(emu_cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess, "instantiate");
    for (int launch = 0; launch < 2; launch++) {
        memset(d_logits, 0xff, f->logit_floats * sizeof(float)); /* emulated device memory */
        CHECK(emu_cudaGraphLaunch(exec, stream) == cudaSuccess &&
                  emu_cudaStreamSynchronize(stream) == cudaSuccess,
              "launch the caller's graph");
        CHECK(same_logits(f, d_logits, rows),
              "batch %d, launch %d: the caller's graph differs from the eager logits", rows, launch);
    }
    emu_cudaGraphExecDestroy(exec);
    emu_cudaGraphDestroy(graph);
}

/* During the caller's capture: what cannot be captured is refused, and
 * the capture goes on. */
static void refused_in_capture(const fixture *f, cuda_backend *gpu, cudaStream_t stream,
                               const float *d_in, float *d_logits) {
    cudaGraph_t graph = NULL;
    CHECK(emu_cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess,
          "begin capture");
    float host_logits[N * 16];
    cnx_prediction top[N];
    CHECK(cuda_backend_forward(gpu, d_in, 1, N, SIDE, SIDE, host_logits, 0) == CNX_ERROR_UNSUPPORTED,
          "forward to host logits during a capture: %s", cnx_last_error());
    CHECK(cuda_backend_forward(gpu, f->input, 0, N, SIDE, SIDE, d_logits, 1) == CNX_ERROR_UNSUPPORTED,
          "forward from host input during a capture: %s", cnx_last_error());
    CHECK(cuda_backend_classify(gpu, d_in, 1, N, SIDE, SIDE, 1, top) == CNX_ERROR_UNSUPPORTED,
          "classify during a capture: %s", cnx_last_error());
    CHECK(cuda_backend_set_stream(gpu, NULL) == CNX_OK &&
              cuda_backend_set_stream(gpu, stream) == CNX_ERROR_INVALID_ARGUMENT,
          "moving onto a capturing stream: %s", cnx_last_error());
    enum cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    emu_cudaStreamIsCapturing(stream, &status);
    CHECK(status == cudaStreamCaptureStatusActive, "the caller's capture was spoiled (%d)",
          (int)status);
    CHECK(emu_cudaStreamEndCapture(stream, &graph) == cudaSuccess, "end the caller's capture");
    if (graph)
        emu_cudaGraphDestroy(graph);
    CHECK(cuda_backend_set_stream(gpu, stream) == CNX_OK, "back onto the caller's stream: %s",
          cnx_last_error());
}

/* The caller captures a forward of a shape the engine has no plan for,
 * while all its plans hold graphs: the plan replaced keeps its graph until
 * the capture is over (destroying it then might wait on its launches). */
static void capture_replacing_a_plan(const fixture *f, cuda_backend *gpu, cudaStream_t stream,
                                     const float *d_in, float *d_logits) {
    enum { PLANS = 8, SHAPES = PLANS + 1 };
    static const int widths[SHAPES] = {32, 36, 40, 44, 48, 52, 56, 60, 64};
    float want[16];
    cuda_backend *fresh = NULL;
    CHECK(cuda_backend_create(&f->weights, CNX_PRECISION_FP32, N, SIDE, 0, NULL, &fresh) == CNX_OK &&
              cuda_backend_forward(fresh, f->input, 0, 1, SIDE, widths[PLANS], want, 0) == CNX_OK,
          "the new shape's eager logits: %s", cnx_last_error());
    cuda_backend_destroy(fresh);
    for (int i = 0; i < PLANS; i++)
        for (int run = 0; run < 2; run++) /* eager, then a graph of its own */
            CHECK(cuda_backend_forward(gpu, d_in, 1, 1, SIDE, widths[i], d_logits, 1) == CNX_OK,
                  "1 image of %dx%d: %s", SIDE, widths[i], cnx_last_error());
    emu_cudaStreamSynchronize(stream);
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    emu_cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
    const cnx_status status = cuda_backend_forward(gpu, d_in, 1, 1, SIDE, widths[PLANS], d_logits, 1);
    CHECK(status == CNX_OK, "a new shape during the capture: %s", cnx_last_error());
    const cudaError_t ended = emu_cudaStreamEndCapture(stream, &graph);
    CHECK(ended == cudaSuccess && graph, "a new shape spoiled the caller's capture (%d)", (int)ended);
    if (ended == cudaSuccess && graph && emu_cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess) {
        memset(d_logits, 0xff, f->logit_floats * sizeof(float));
        emu_cudaGraphLaunch(exec, stream);
        emu_cudaStreamSynchronize(stream);
        CHECK(memcmp(d_logits, want, (size_t)f->classes * sizeof(float)) == 0,
              "the new shape's captured logits differ from the eager ones");
        emu_cudaGraphExecDestroy(exec);
    }
    if (graph)
        emu_cudaGraphDestroy(graph);
    /* The next call, uncaptured, frees the retired graph. */
    CHECK(cuda_backend_forward(gpu, d_in, 1, N, SIDE, SIDE, d_logits, 1) == CNX_OK &&
              emu_cudaStreamSynchronize(stream) == cudaSuccess && same_logits(f, d_logits, N),
          "after the capture: %s", cnx_last_error());
}

static void caller_capture(const fixture *f) {
    cudaStream_t stream = NULL;
    float *d_in = NULL, *d_logits = NULL;
    emu_cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    emu_cudaMalloc((void **)&d_in, f->input_floats * sizeof(float));
    emu_cudaMalloc((void **)&d_logits, f->logit_floats * sizeof(float));
    memcpy(d_in, f->input, f->input_floats * sizeof(float)); /* host memory here */
    cuda_backend *gpu = NULL;
    CHECK(cuda_backend_create(&f->weights, CNX_PRECISION_FP32, N, SIDE, 0, stream, &gpu) == CNX_OK,
          "create on the caller's stream: %s", cnx_last_error());
    for (int run = 0; run < 2; run++) { /* eager, then our own graph */
        CHECK(cuda_backend_forward(gpu, d_in, 1, N, SIDE, SIDE, d_logits, 1) == CNX_OK &&
                  emu_cudaStreamSynchronize(stream) == cudaSuccess && same_logits(f, d_logits, N),
              "warm-up %d: %s", run, cnx_last_error());
    }
    capture_forward(f, gpu, stream, d_in, d_logits, N);
    capture_forward(f, gpu, stream, d_in, d_logits, 1); /* a plan built during the capture */
    refused_in_capture(f, gpu, stream, d_in, d_logits);
    capture_replacing_a_plan(f, gpu, stream, d_in, d_logits);
    /* And eagerly again afterwards. */
    CHECK(cuda_backend_forward(gpu, d_in, 1, N, SIDE, SIDE, d_logits, 1) == CNX_OK &&
              emu_cudaStreamSynchronize(stream) == cudaSuccess && same_logits(f, d_logits, N),
          "after the capture: %s", cnx_last_error());
    cuda_backend_destroy(gpu);
    emu_cudaStreamDestroy(stream);
    emu_cudaFree(d_in);
    emu_cudaFree(d_logits);
}

/* Runs on a caller's stream, which the caller destroys, then leaves it:
 * by set_stream (moving to its own) or by destroy. */
static void dead_caller_stream(const fixture *f, int leave_by_destroy) {
    cudaStream_t stream = NULL;
    float *d_in = NULL, *d_logits = NULL;
    emu_cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    emu_cudaMalloc((void **)&d_in, f->input_floats * sizeof(float));
    emu_cudaMalloc((void **)&d_logits, f->logit_floats * sizeof(float));
    memcpy(d_in, f->input, f->input_floats * sizeof(float));
    cuda_backend *gpu = NULL;
    CHECK(cuda_backend_create(&f->weights, CNX_PRECISION_FP32, N, SIDE, 0, NULL, &gpu) == CNX_OK &&
              cuda_backend_set_stream(gpu, stream) == CNX_OK,
          "create and move to the caller's stream: %s", cnx_last_error());
    CHECK(cuda_backend_forward(gpu, d_in, 1, N, SIDE, SIDE, d_logits, 1) == CNX_OK,
          "forward on the caller's stream: %s", cnx_last_error());
    emu_cudaStreamDestroy(stream); /* CUDA finishes its work first */
    CHECK(same_logits(f, d_logits, N), "logits on the caller's stream");
    if (!leave_by_destroy) {
        CHECK(cuda_backend_set_stream(gpu, NULL) == CNX_OK,
              "set_stream(NULL) after the caller destroyed its stream: %s", cnx_last_error());
        CHECK(cuda_backend_forward(gpu, d_in, 1, N, SIDE, SIDE, d_logits, 1) == CNX_OK &&
                  same_logits(f, d_logits, N),
              "forward on the own stream again: %s", cnx_last_error());
    }
    cuda_backend_destroy(gpu);
    emu_cudaFree(d_in);
    emu_cudaFree(d_logits);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    emu_set_stream_mode("deferred");
    long before[5], after[5];
    emu_live(&before[0], &before[1], &before[2], &before[3], &before[4]);
    fixture f;
    memset(&f, 0, sizeof f);
    if (make_fixture(&f, dir)) {
        legacy_stream_ordering(&f);
        caller_capture(&f);
        dead_caller_stream(&f, 0);
        dead_caller_stream(&f, 1);
        cnx_convnext_weights_free(&f.weights);
    }
    free(f.input);
    free(f.expected);
    emu_live(&after[0], &after[1], &after[2], &after[3], &after[4]);
    CHECK(memcmp(before, after, sizeof before) == 0,
          "the emulated runtime holds %ld device, %ld host allocations, %ld streams, %ld events, "
          "%ld graphs more than before", after[0] - before[0], after[1] - before[1],
          after[2] - before[2], after[3] - before[3], after[4] - before[4]);
    emu_report();
    return test_summary();
}
