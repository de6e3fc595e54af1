/* Throughput of the CUDA forward on random convnext_tiny weights (the real
 * shape: depths 3,3,9,3, widths 96..768, 1000 classes, 224x224).
 *
 *   bench_forward [--batch N] [--iters N] [--precisions fp16,bf16,...] [WORK_DIR]
 *
 * For each precision: an engine planned for the batch (halved until it fits
 * in memory), input already on the GPU, work on the bench's own stream.
 * Three warm-up forwards (eager, graph capture, replay), then CUDA events
 * around `iters` back-to-back forwards of the whole batch: images/s is
 * batch * iters / elapsed. The host path (cnx_engine_forward from host
 * memory: finite-value scan, H2D, forward, D2H) is timed once more with the
 * wall clock, for comparison. Not a ctest: a device run records its output.
 * Prints "SKIP: reason" and exits 77 without a usable GPU. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cnx.h"
#include "device.h"
#include "random_model.h"

#ifdef CNX_HAVE_CUDA
#include <cuda_runtime.h>

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define CUDA_OR_FAIL(call)                                                              \
    do {                                                                                \
        cudaError_t e_ = (call);                                                        \
        if (e_ != cudaSuccess) {                                                        \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,               \
                    cudaGetErrorString(e_));                                            \
            return 1;                                                                   \
        }                                                                               \
    } while (0)

typedef struct {
    const char *precision;
    int batch;
    double create_s, ms_per_batch, images_per_s, host_images_per_s;
    const char *error;
} result;

static const char *names[] = {"fp32", "tf32", "fp16", "bf16"};

static int run_precision(const char *path, cnx_precision precision, int batch, int iters,
                         const float *d_input, const float *h_input, cudaStream_t stream,
                         result *r) {
    static char error[512];
    memset(r, 0, sizeof *r);
    r->precision = names[precision];
    cnx_engine *engine = NULL;
    cnx_status status = CNX_ERROR_OUT_OF_MEMORY;
    for (; batch >= 1; batch /= 2) {
        cnx_options o = cnx_default_options();
        o.device = CNX_DEVICE_CUDA;
        o.precision = precision;
        o.max_batch = batch;
        o.input_size = 224;
        o.cuda_stream = stream;
        const double t0 = now_seconds();
        status = cnx_engine_create(path, &o, &engine);
        r->create_s = now_seconds() - t0;
        if (status != CNX_ERROR_OUT_OF_MEMORY)
            break;
        fprintf(stderr, "%s: batch %d does not fit (%s); halving\n", names[precision], batch,
                cnx_last_error());
    }
    r->batch = batch;
    if (status != CNX_OK) {
        snprintf(error, sizeof error, "%s", cnx_last_error());
        r->error = error;
        return 1;
    }
    float *d_logits = NULL;
    float *h_logits = malloc((size_t)batch * 1000 * sizeof(float));
    CUDA_OR_FAIL(cudaMalloc((void **)&d_logits, (size_t)batch * 1000 * sizeof(float)));
    for (int i = 0; i < 3 && status == CNX_OK; i++)
        status = cnx_engine_forward_device(engine, d_input, batch, 224, 224, d_logits);
    CUDA_OR_FAIL(cudaStreamSynchronize(stream));
    cudaEvent_t start, stop;
    CUDA_OR_FAIL(cudaEventCreate(&start));
    CUDA_OR_FAIL(cudaEventCreate(&stop));
    CUDA_OR_FAIL(cudaEventRecord(start, stream));
    for (int i = 0; i < iters && status == CNX_OK; i++)
        status = cnx_engine_forward_device(engine, d_input, batch, 224, 224, d_logits);
    CUDA_OR_FAIL(cudaEventRecord(stop, stream));
    CUDA_OR_FAIL(cudaEventSynchronize(stop));
    float ms = 0.0f;
    CUDA_OR_FAIL(cudaEventElapsedTime(&ms, start, stop));
    if (status == CNX_OK) {
        r->ms_per_batch = ms / iters;
        r->images_per_s = batch * 1000.0 / r->ms_per_batch;
        /* The host path: warm once (its own plan is the same), then time once. */
        status = cnx_engine_forward(engine, h_input, batch, 224, 224, h_logits);
        const double t0 = now_seconds();
        if (status == CNX_OK)
            status = cnx_engine_forward(engine, h_input, batch, 224, 224, h_logits);
        r->host_images_per_s = batch / (now_seconds() - t0);
    }
    if (status != CNX_OK) {
        snprintf(error, sizeof error, "%s", cnx_last_error());
        r->error = error;
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaFree(d_logits);
    free(h_logits);
    cnx_engine_destroy(engine);
    return status == CNX_OK ? 0 : 1;
}
#endif

int main(int argc, char **argv) {
    int batch = 256, iters = 20;
    const char *precisions = "fp32,tf32,fp16,bf16";
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--precisions") == 0 && i + 1 < argc)
            precisions = argv[++i];
        else
            dir = argv[i];
    }
    if (batch < 1 || iters < 1) {
        fprintf(stderr, "usage: bench_forward [--batch N] [--iters N] [--precisions LIST] [DIR]\n");
        return 2;
    }
    char name[128], why[256];
    if (!cnx_cuda_usable(0, name, sizeof name, why, sizeof why)) {
        printf("SKIP: %s\n", why);
        return 77;
    }
#ifndef CNX_HAVE_CUDA
    (void)precisions;
    (void)dir;
    printf("SKIP: built without CUDA\n");
    return 77;
#else
    char path[4096];
    snprintf(path, sizeof path, "%s/bench_tiny_%d.safetensors", dir ? dir : "/tmp", (int)getpid());
    const int depths[4] = {3, 3, 9, 3}, widths[4] = {96, 192, 384, 768};
    const convnext_spec spec = random_spec(CNX_NAMING_TORCHVISION, depths, widths, 1000);
    if (write_random_model(&spec, 42, path) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        return 1;
    }
    const size_t count = (size_t)batch * 3 * 224 * 224;
    float *h_input = malloc(count * sizeof(float));
    if (!h_input) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    random_seed(3);
    for (size_t i = 0; i < count; i++)
        h_input[i] = 2.5f * random_uniform();
    float *d_input = NULL;
    cudaStream_t stream = NULL;
    CUDA_OR_FAIL(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUDA_OR_FAIL(cudaMalloc((void **)&d_input, count * sizeof(float)));
    CUDA_OR_FAIL(cudaMemcpy(d_input, h_input, count * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_OR_FAIL(cudaDeviceSynchronize()); /* before the non-blocking stream reads it */

    printf("device: %s\nmodel: convnext_tiny shape, random weights, 224x224, %d iterations per figure\n",
           name, iters);
    result results[4];
    int ran = 0, failed = 0;
    for (int p = 0; p < 4; p++) {
        if (!strstr(precisions, names[p]))
            continue;
        failed |= run_precision(path, (cnx_precision)p, batch, iters, d_input, h_input, stream,
                                &results[ran]);
        const result *r = &results[ran++];
        if (r->error)
            printf("%s: failed: %s\n", r->precision, r->error);
        else
            printf("%s: batch %d: %.3f ms per batch, %.0f images/s on the device; "
                   "%.0f images/s from host memory; engine created in %.2f s\n",
                   r->precision, r->batch, r->ms_per_batch, r->images_per_s,
                   r->host_images_per_s, r->create_s);
        fflush(stdout);
    }
    printf("\n| precision | batch | ms/batch | images/s (device input) | images/s (host input) |\n");
    printf("|---|---|---|---|---|\n");
    for (int i = 0; i < ran; i++) {
        const result *r = &results[i];
        if (r->error)
            printf("| %s | %d | failed | | |\n", r->precision, r->batch);
        else
            printf("| %s | %d | %.3f | %.0f | %.0f |\n", r->precision, r->batch, r->ms_per_batch,
                   r->images_per_s, r->host_images_per_s);
    }
    cudaFree(d_input);
    cudaStreamDestroy(stream);
    free(h_input);
    unlink(path);
    return failed ? 1 : 0;
#endif
}
