/* Synthetic images: batch of --image-size, random pixels (seeded), packed
 * back to back as cnx_engine_classify_pixels_device takes them. On CUDA,
 * per iteration: events around the upload, then around
 * cnx_preprocess_forward (NCHW, fp32 out); the kernel row's throughput is
 * batch * iterations over the summed kernel times, the other's over the
 * summed upload + kernel times. */
#include "bench_preprocess.h"

#include <stdlib.h>
#include <string.h>

#include "bench_cuda.h"
#include "bench_loop.h"
#include "bench_random.h"

#ifdef CNX_HAVE_CUDA
#include "preprocess.cuh"
#endif

/* docs/design.md section 8: GPU preprocessing over 50k images/s for 500x375. */
#define GOAL_IMAGES_PER_S 50000.0

typedef struct images {
    uint8_t *pixels; /* batch images, packed */
    uint64_t bytes;
    cnx_image_desc *descs;
    int n;
} images;

static void fill_pixels(uint8_t *pixels, uint64_t bytes, uint64_t seed) {
    uint64_t state = bench_random_state(seed, 2);
    for (uint64_t i = 0; i < bytes; i++) pixels[i] = (uint8_t)(bench_random_next(&state) >> 56);
}

static void describe(images *im, int width, int height) {
    const uint64_t image_bytes = (uint64_t)width * height * 3;
    im->bytes = image_bytes * im->n;
    for (int i = 0; i < im->n; i++)
        im->descs[i] = (cnx_image_desc){.offset = image_bytes * i, .width = width, .height = height};
}

static void state_goal(bench_context *ctx, const bench_row *row, const char *what) {
    if (row->error[0]) return;
    const bench_options *o = ctx->options;
    fprintf(ctx->notes, "Goal (docs/design.md section 8: GPU preprocessing over %.0f images/s for "
            "500x375 sources): %.0f images/s %s at batch %d, %dx%d sources: %s\n",
            GOAL_IMAGES_PER_S, row->throughput, what, row->batch, o->image_width, o->image_height,
            !ctx->on_cuda ? "the goal is the GPU's"
            : row->throughput > GOAL_IMAGES_PER_S ? "met" : "NOT met");
    fflush(ctx->notes);
}

static void run_cpu(bench_context *ctx, images *im, bench_row *row) {
    const bench_options *o = ctx->options;
    const size_t out_count = (size_t)3 * ctx->preprocess.crop * ctx->preprocess.crop;
    float *out = malloc(out_count * sizeof(float));
    bench_series latency = {0};
    if (!out) {
        bench_row_fail(row, "out of memory");
        return;
    }
    const int warmup = o->warmup;
    bench_loop loop = bench_loop_start(o);
    for (int i = 0; !row->error[0] && (i < warmup || bench_loop_next(&loop)); i++) {
        const double t0 = bench_now();
        for (int k = 0; k < im->n && !row->error[0]; k++) {
            const cnx_image image = {.width = im->descs[k].width, .height = im->descs[k].height,
                                     .rgb = im->pixels + im->descs[k].offset};
            if (cnx_preprocess_image(&image, &ctx->preprocess, out) != CNX_OK)
                bench_row_fail(row, "%s", cnx_last_error());
        }
        if (i >= warmup && !row->error[0] &&
            bench_series_push(&latency, (bench_now() - t0) * 1e3) != 0)
            bench_row_fail(row, "out of memory");
    }
    if (!row->error[0]) {
        const double wall = bench_loop_elapsed(&loop);
        bench_summarize(latency.values, latency.count, &row->latency);
        row->host = row->latency;
        row->iterations = latency.count;
        row->throughput = (double)row->batch * latency.count / wall;
    }
    bench_series_free(&latency);
    free(out);
    bench_finish_row(ctx, row);
    state_goal(ctx, row, "on one CPU thread");
}

#ifdef CNX_HAVE_CUDA
static double sum(const bench_series *s) {
    double total = 0.0;
    for (int i = 0; i < s->count; i++) total += s->values[i];
    return total;
}

/* Both rows from the samples; NULL kernel row when out of memory. */
static void finish_cuda_rows(bench_row *kernel, bench_row *both, const bench_series *k_ms,
                             const bench_series *h_ms, const bench_series *total_ms,
                             const bench_series *host_ms) {
    bench_summary k, h, host;
    if (bench_summarize(k_ms->values, k_ms->count, &k) != 0 ||
        bench_summarize(h_ms->values, h_ms->count, &h) != 0 ||
        bench_summarize(host_ms->values, host_ms->count, &host) != 0 ||
        bench_summarize(total_ms->values, total_ms->count, &both->latency) != 0) {
        bench_row_fail(kernel, "out of memory");
        bench_row_fail(both, "out of memory");
        return;
    }
    bench_row *rows[2] = {kernel, both};
    for (int r = 0; r < 2; r++) {
        rows[r]->gpu = k;
        rows[r]->h2d = h;
        rows[r]->host = host;
        rows[r]->has_gpu = rows[r]->has_h2d = 1;
        rows[r]->iterations = k_ms->count;
    }
    kernel->latency = k;
    kernel->throughput = (double)kernel->batch * k_ms->count / (sum(k_ms) * 1e-3);
    both->throughput = (double)both->batch * total_ms->count / (sum(total_ms) * 1e-3);
}

static void run_cuda(bench_context *ctx, images *im, bench_row *kernel, bench_row *both) {
    const bench_options *o = ctx->options;
    cudaStream_t stream = (cudaStream_t)ctx->stream;
    const int crop = ctx->preprocess.crop;
    uint8_t *h_pixels = NULL, *d_pixels = NULL;
    cnx_image_desc *d_descs = NULL;
    float *d_out = NULL;
    cudaEvent_t events[3] = {NULL, NULL, NULL};
    bench_series k_ms = {0}, h_ms = {0}, total_ms = {0}, host_ms = {0};
    bench_row *row = kernel; /* where BENCH_CUDA records a failure */

    BENCH_CUDA(row, cudaMallocHost((void **)&h_pixels, im->bytes));
    memcpy(h_pixels, im->pixels, im->bytes);
    BENCH_CUDA(row, cudaMalloc((void **)&d_pixels, im->bytes));
    BENCH_CUDA(row, cudaMalloc((void **)&d_descs, (size_t)im->n * sizeof *d_descs));
    BENCH_CUDA(row, cudaMalloc((void **)&d_out, (size_t)im->n * 3 * crop * crop * sizeof(float)));
    BENCH_CUDA(row, cudaMemcpy(d_descs, im->descs, (size_t)im->n * sizeof *d_descs,
                               cudaMemcpyHostToDevice));
    for (int e = 0; e < 3; e++) BENCH_CUDA(row, cudaEventCreate(&events[e]));

    const int warmup = o->warmup;
    bench_loop loop = bench_loop_start(o);
    for (int i = 0; i < warmup || bench_loop_next(&loop); i++) {
        BENCH_CUDA(row, cudaEventRecord(events[0], stream));
        BENCH_CUDA(row, cudaMemcpyAsync(d_pixels, h_pixels, im->bytes, cudaMemcpyHostToDevice,
                                        stream));
        BENCH_CUDA(row, cudaEventRecord(events[1], stream));
        const double t0 = bench_now();
        if (cnx_preprocess_forward(d_out, CNX_LAYOUT_NCHW, CNX_ACT_F32, d_pixels, im->bytes,
                                   d_descs, im->n, &ctx->preprocess, stream) != CNX_OK) {
            bench_row_fail(row, "%s", cnx_last_error());
            goto done;
        }
        const double t1 = bench_now();
        BENCH_CUDA(row, cudaEventRecord(events[2], stream));
        BENCH_CUDA(row, cudaEventSynchronize(events[2]));
        if (i < warmup) continue;
        const double h = bench_event_ms(events[0], events[1]);
        const double k = bench_event_ms(events[1], events[2]);
        if (bench_series_push(&h_ms, h) || bench_series_push(&k_ms, k) ||
            bench_series_push(&total_ms, h + k) || bench_series_push(&host_ms, (t1 - t0) * 1e3)) {
            bench_row_fail(row, "out of memory");
            goto done;
        }
    }
    bench_health_sample(ctx->health);
    finish_cuda_rows(kernel, both, &k_ms, &h_ms, &total_ms, &host_ms);
done:
    if (kernel->error[0] && !both->error[0]) bench_row_fail(both, "%s", kernel->error);
    for (int e = 0; e < 3; e++)
        if (events[e]) cudaEventDestroy(events[e]);
    cudaFreeHost(h_pixels);
    cudaFree(d_pixels);
    cudaFree(d_descs);
    cudaFree(d_out);
    bench_series_free(&k_ms);
    bench_series_free(&h_ms);
    bench_series_free(&total_ms);
    bench_series_free(&host_ms);
    bench_finish_row(ctx, kernel);
    state_goal(ctx, kernel, "from pixels on the GPU");
    bench_finish_row(ctx, both);
    state_goal(ctx, both, "with the upload");
}
#endif

static void run_batch(bench_context *ctx, int batch) {
    const bench_options *o = ctx->options;
    bench_row *kernel = bench_new_row(ctx, "fp32", "preprocess", NULL, batch);
    bench_row *both = ctx->on_cuda ? bench_new_row(ctx, "fp32", "preprocess+h2d",
                                                   "preprocess + H2D", batch) : NULL;
    if (!kernel || (ctx->on_cuda && !both)) return;
    bench_progress("%s, batch %d", kernel->name, batch);
    images im = {.n = batch};
    im.descs = malloc((size_t)batch * sizeof *im.descs);
    if (im.descs) {
        describe(&im, o->image_width, o->image_height);
        im.pixels = malloc(im.bytes);
    }
    if (!im.descs || !im.pixels) {
        bench_row_fail(kernel, "out of memory for %d images of %dx%d", batch, o->image_width,
                       o->image_height);
#ifdef CNX_HAVE_CUDA
    } else if (ctx->on_cuda && cnx_preprocess_check_image(o->image_width, o->image_height,
                                                          &ctx->preprocess) != CNX_OK) {
        bench_row_fail(kernel, "%s", cnx_last_error());
#endif
    } else {
        fill_pixels(im.pixels, im.bytes, o->seed);
    }
    if (kernel->error[0]) {
        bench_finish_row(ctx, kernel);
        if (both) {
            bench_row_fail(both, "%s", kernel->error);
            bench_finish_row(ctx, both);
        }
    } else {
#ifdef CNX_HAVE_CUDA
        if (ctx->on_cuda)
            run_cuda(ctx, &im, kernel, both);
        else
#endif
            run_cpu(ctx, &im, kernel);
    }
    free(im.pixels);
    free(im.descs);
}

void bench_run_preprocess(bench_context *ctx) {
    for (int b = 0; b < ctx->options->num_batches; b++) run_batch(ctx, ctx->options->batches[b]);
}
