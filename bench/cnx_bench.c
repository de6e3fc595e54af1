/* cnx-bench: throughput and latency of cnx, trtexec-style (docs/design.md
 * sections 5 and 8). See bench_options.c for the command line; each mode is
 * a file (bench_model.c, bench_preprocess.c, bench_files.c). */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_context.h"
#include "bench_files.h"
#include "bench_health.h"
#include "bench_model.h"
#include "bench_options.h"
#include "bench_preprocess.h"
#include "bench_report.h"
#include "cnx.h"
#include "device.h"

#ifdef CNX_HAVE_CUDA
#include <cuda_runtime.h>
#endif

/* The preprocessing for a model input of `size`: the weights' crop becomes
 * size and their resize is scaled alike (236/224 stays 236/224). */
static cnx_preprocess scaled_preprocess(cnx_preprocess p, int size) {
    if (p.crop != size) {
        const long resize = ((long)p.resize * size + p.crop / 2) / p.crop;
        p.resize = resize < 1 ? 1 : resize > CNX_MAX_SIDE ? CNX_MAX_SIDE : (int)resize;
        p.crop = size;
    }
    return p;
}

/* The GPU's PCI bus id, for NVML ("" when unknown). Makes no CUDA context. */
static void gpu_bus_id(char *bus_id, size_t size) {
    bus_id[0] = '\0';
#ifdef CNX_HAVE_CUDA
    if (cudaDeviceGetPCIBusId(bus_id, (int)size, 0) != cudaSuccess) bus_id[0] = '\0';
#else
    (void)size;
#endif
}

/* The bench's own stream, which every engine and copy of the run uses.
 * 0, or -1 after printing why. */
static int create_stream(void **stream) {
#ifdef CNX_HAVE_CUDA
    cudaStream_t s;
    const cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        fprintf(stderr, "cnx-bench: cannot create a CUDA stream: %s\n", cudaGetErrorString(e));
        return -1;
    }
    *stream = s;
#else
    (void)stream;
#endif
    return 0;
}

static void close_cuda(void *stream) {
#ifdef CNX_HAVE_CUDA
    if (stream) cudaStreamDestroy((cudaStream_t)stream);
#else
    (void)stream;
#endif
}

/* The first engine, at batch 1: checks the weights and the device (exit 2
 * when either is unusable), and says what the run is on. */
static int probe(bench_context *ctx, bench_options *o) {
    cnx_engine *engine = NULL;
    const cnx_precision precision = o->num_precisions ? o->precisions[0]
                                    : ctx->stream       ? CNX_PRECISION_FP16
                                                        : CNX_PRECISION_FP32;
    if (bench_engine_create(ctx, precision, 1, &engine) != CNX_OK) {
        fprintf(stderr, "cnx-bench: %s\n", cnx_last_error());
        return -1;
    }
    cnx_engine_info(engine, &ctx->info);
    cnx_engine_destroy(engine);
    ctx->device = ctx->info.device;
    ctx->on_cuda = ctx->device == CNX_DEVICE_CUDA;
    bench_apply_defaults(o, ctx->on_cuda);
    if (o->mode == BENCH_MODE_END_TO_END && o->k > ctx->info.num_classes) {
        fprintf(stderr, "cnx-bench: -k: %d is more than the model's %d classes\n", o->k,
                ctx->info.num_classes);
        return -1;
    }
    ctx->input_size = o->input_size ? o->input_size : ctx->info.preprocess.crop;
    ctx->preprocess = scaled_preprocess(ctx->info.preprocess, ctx->input_size);
    return 0;
}

static void describe_run(bench_report *report, const bench_context *ctx, const bench_options *o) {
    snprintf(report->device, sizeof report->device, "%s", ctx->info.device_name);
    snprintf(report->model, sizeof report->model, "%s", ctx->info.architecture);
    snprintf(report->weights, sizeof report->weights, "%s",
             o->weights ? o->weights : ctx->info.source);
    report->input_size = ctx->input_size;
    report->mode = bench_mode_name(o->mode);
    if (!ctx->on_cuda && o->mode != BENCH_MODE_PREPROCESS)
        for (int p = 0; p < o->num_precisions; p++)
            if (o->precisions[p] != CNX_PRECISION_FP32) {
                bench_warn(report, "the CPU computes fp32 whatever --precision says: its %s rows "
                           "are fp32 figures", bench_precision_name(o->precisions[p]));
                break;
            }
    if (!o->graphs && !ctx->on_cuda)
        bench_warn(report, "--no-graphs has no effect on the CPU");
}

int main(int argc, char **argv) {
    bench_options o;
    const int parsed = bench_parse_options(argc, argv, &o);
    if (parsed) return parsed == 1 ? 0 : 2;
    if (!o.graphs) setenv("CNX_CUDA_GRAPHS", "0", 1); /* read at engine creation */

    char **paths = NULL;
    size_t num_paths = 0;
    if (o.mode == BENCH_MODE_END_TO_END && bench_files_list(o.images, &paths, &num_paths) != 0)
        return 2;
    bench_report report;
    if (bench_report_init(&report, argc, argv) != 0) {
        fprintf(stderr, "cnx-bench: out of memory\n");
        bench_report_free(&report);
        bench_files_free(paths, num_paths);
        return 2;
    }

    bench_context ctx = {.options = &o, .report = &report, .device = o.device,
                         .notes = o.json ? stderr : stdout};
    char name[128], why[256], bus_id[32] = "";
    int status = 2;
    const int gpu = o.device != CNX_DEVICE_CPU &&
                    cnx_cuda_usable(0, name, sizeof name, why, sizeof why);
    if (gpu) { /* the GPU is checked before this process becomes a user of it */
        gpu_bus_id(bus_id, sizeof bus_id);
        ctx.health = bench_health_begin(&report, 1, bus_id[0] ? bus_id : NULL);
        if (create_stream(&ctx.stream) != 0) goto done;
    }
    if (probe(&ctx, &o) != 0) goto done;
    if (!ctx.on_cuda) { /* the CPU's load, once the run is sure to start */
        bench_health_end(ctx.health, &report);
        ctx.health = bench_health_begin(&report, 0, NULL);
    }
    describe_run(&report, &ctx, &o);
    if (!o.json) bench_print_header(stdout, &report);

    switch (o.mode) {
    case BENCH_MODE_MODEL: bench_run_model(&ctx); break;
    case BENCH_MODE_PREPROCESS: bench_run_preprocess(&ctx); break;
    case BENCH_MODE_END_TO_END: bench_run_files(&ctx, paths, num_paths); break;
    }
    bench_health_end(ctx.health, &report);
    ctx.health = NULL;
    if (o.json)
        bench_print_json(stdout, &report);
    else
        bench_print_warnings(stdout, &report);
    status = 0;
    for (int i = 0; i < report.num_rows; i++)
        if (report.rows[i].error[0]) status = 1;
done:
    bench_health_end(ctx.health, &report);
    close_cuda(ctx.stream);
    bench_report_free(&report);
    bench_files_free(paths, num_paths);
    return status;
}
