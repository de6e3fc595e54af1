/* On CUDA: the bench's stream; random input uploaded once; per iteration
 * events around cnx_engine_forward_device (the latency and the GPU time)
 * and the wall clock around the call (host_ms: the enqueue time); the
 * throughput is batch * iterations over the wall time of the timed loop.
 * H2D: events around one pinned upload of the float batch, timed apart for
 * reference. On the CPU: cnx_engine_forward from host memory, wall clock. */
#include "bench_model.h"

#include <stdlib.h>

#include "bench_cuda.h"
#include "bench_loop.h"
#include "bench_random.h"

enum { H2D_REPEATS = 5 };

typedef struct buffers {
    float *input, *logits; /* host */
    size_t input_count, logits_count;
} buffers;

/* Inputs like normalized pixels: uniform in [-2.5, 2.5], seeded. */
static void fill_input(float *input, size_t count, uint64_t seed) {
    uint64_t state = bench_random_state(seed, 1);
    for (size_t i = 0; i < count; i++) {
        const double u = (double)(bench_random_next(&state) >> 11) / 9007199254740992.0; /* [0,1) */
        input[i] = (float)(5.0 * u - 2.5);
    }
}

static int summarize(bench_row *row, const bench_series *latency, const bench_series *host) {
    if (bench_summarize(latency->values, latency->count, &row->latency) != 0 ||
        bench_summarize(host->values, host->count, &row->host) != 0) {
        bench_row_fail(row, "out of memory");
        return -1;
    }
    row->iterations = latency->count;
    return 0;
}

static void run_cpu(bench_context *ctx, cnx_engine *engine, const buffers *b, bench_row *row) {
    const int size = ctx->input_size, batch = row->batch;
    bench_series latency = {0};
    for (int i = 0; i < ctx->options->warmup; i++)
        if (cnx_engine_forward(engine, b->input, batch, size, size, b->logits) != CNX_OK) {
            bench_row_fail(row, "%s", cnx_last_error());
            return;
        }
    bench_loop loop = bench_loop_start(ctx->options);
    while (bench_loop_next(&loop)) {
        const double t0 = bench_now();
        const cnx_status status = cnx_engine_forward(engine, b->input, batch, size, size, b->logits);
        const double ms = (bench_now() - t0) * 1e3;
        if (status != CNX_OK) {
            bench_row_fail(row, "%s", cnx_last_error());
            break;
        }
        if (bench_series_push(&latency, ms) != 0) {
            bench_row_fail(row, "out of memory");
            break;
        }
    }
    const double wall = bench_loop_elapsed(&loop);
    if (!row->error[0] && summarize(row, &latency, &latency) == 0)
        row->throughput = (double)batch * latency.count / wall;
    bench_series_free(&latency);
}

#ifdef CNX_HAVE_CUDA
static void run_cuda(bench_context *ctx, cnx_engine *engine, const buffers *b, bench_row *row) {
    const int size = ctx->input_size, batch = row->batch;
    cudaStream_t stream = (cudaStream_t)ctx->stream;
    float *d_input = NULL, *d_logits = NULL;
    cudaEvent_t start = NULL, stop = NULL;
    bench_series latency = {0}, host = {0}, h2d = {0};
    BENCH_CUDA(row, cudaMalloc((void **)&d_input, b->input_count * sizeof(float)));
    BENCH_CUDA(row, cudaMalloc((void **)&d_logits, b->logits_count * sizeof(float)));
    BENCH_CUDA(row, cudaMemcpy(d_input, b->input, b->input_count * sizeof(float),
                               cudaMemcpyHostToDevice));
    BENCH_CUDA(row, cudaDeviceSynchronize()); /* before the non-blocking stream reads it */
    BENCH_CUDA(row, cudaEventCreate(&start));
    BENCH_CUDA(row, cudaEventCreate(&stop));
    if (bench_time_h2d(stream, b->input_count * sizeof(float), H2D_REPEATS, &h2d, row) != 0)
        goto done;

    for (int i = 0; i < ctx->options->warmup; i++)
        if (cnx_engine_forward_device(engine, d_input, batch, size, size, d_logits) != CNX_OK) {
            bench_row_fail(row, "%s", cnx_last_error());
            goto done;
        }
    BENCH_CUDA(row, cudaStreamSynchronize(stream));

    bench_loop loop = bench_loop_start(ctx->options);
    while (bench_loop_next(&loop)) {
        BENCH_CUDA(row, cudaEventRecord(start, stream));
        const double t0 = bench_now();
        const cnx_status status =
            cnx_engine_forward_device(engine, d_input, batch, size, size, d_logits);
        const double t1 = bench_now();
        if (status != CNX_OK) {
            bench_row_fail(row, "%s", cnx_last_error());
            goto done;
        }
        BENCH_CUDA(row, cudaEventRecord(stop, stream));
        BENCH_CUDA(row, cudaEventSynchronize(stop));
        if (bench_series_push(&latency, bench_event_ms(start, stop)) != 0 ||
            bench_series_push(&host, (t1 - t0) * 1e3) != 0) {
            bench_row_fail(row, "out of memory");
            goto done;
        }
    }
    const double wall = bench_loop_elapsed(&loop);
    bench_health_sample(ctx->health);
    if (summarize(row, &latency, &host) != 0 ||
        bench_summarize(h2d.values, h2d.count, &row->h2d) != 0)
        goto done;
    row->gpu = row->latency; /* the events bracket the forward alone */
    row->has_gpu = row->has_h2d = 1;
    row->throughput = (double)batch * latency.count / wall;
done:
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    cudaFree(d_input);
    cudaFree(d_logits);
    bench_series_free(&latency);
    bench_series_free(&host);
    bench_series_free(&h2d);
}
#endif

static void run_one(bench_context *ctx, cnx_precision precision, int batch) {
    const char *variant = !ctx->on_cuda ? "cpu" : ctx->options->graphs ? "graphs" : "no-graphs";
    bench_row *row = bench_new_row(ctx, bench_precision_name(precision), variant, NULL, batch);
    if (!row) return;
    bench_progress("%s, batch %d", row->name, batch);
    cnx_engine *engine = NULL;
    const size_t pixels = (size_t)ctx->input_size * ctx->input_size;
    buffers b = {.input_count = (size_t)batch * 3 * pixels,
                 .logits_count = (size_t)batch * ctx->info.num_classes};
    b.input = malloc(b.input_count * sizeof(float));
    b.logits = malloc(b.logits_count * sizeof(float));
    if (!b.input || !b.logits) {
        bench_row_fail(row, "out of memory for a batch of %d", batch);
    } else if (bench_engine_create(ctx, precision, batch, &engine) != CNX_OK) {
        bench_row_fail(row, "%s", cnx_last_error());
    } else {
        fill_input(b.input, b.input_count, ctx->options->seed);
#ifdef CNX_HAVE_CUDA
        if (ctx->on_cuda)
            run_cuda(ctx, engine, &b, row);
        else
#endif
            run_cpu(ctx, engine, &b, row);
    }
    cnx_engine_destroy(engine);
    free(b.input);
    free(b.logits);
    bench_finish_row(ctx, row);
}

void bench_run_model(bench_context *ctx) {
    const bench_options *o = ctx->options;
    for (int p = 0; p < o->num_precisions; p++)
        for (int b = 0; b < o->num_batches; b++) run_one(ctx, o->precisions[p], o->batches[b]);
}
