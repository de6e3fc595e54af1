/* Each iteration is one cnx_engine_classify_files call over every file
 * (opt.batch = the row's batch, --threads decode threads, -k); its latency
 * is the call's wall time and the throughput files * iterations over the
 * wall time of the timed loop. */
#define _DEFAULT_SOURCE /* scandir, alphasort, strcasecmp */

#include "bench_files.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench_cuda.h"
#include "bench_loop.h"

static int is_image(const struct dirent *entry) {
    const char *dot = strrchr(entry->d_name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
                   strcasecmp(dot, ".png") == 0);
}

int bench_files_list(const char *dir, char ***paths, size_t *count) {
    struct dirent **entries;
    const int n = scandir(dir, &entries, is_image, alphasort);
    if (n <= 0) {
        fprintf(stderr, "cnx-bench: --images: %s: %s\n", dir,
                n < 0 ? "cannot read the folder" : "no *.jpg, *.jpeg or *.png files");
        if (n == 0) free(entries);
        return -1;
    }
    *paths = calloc((size_t)n, sizeof **paths);
    *count = 0;
    for (int i = 0; i < n; i++) {
        const size_t length = strlen(dir) + strlen(entries[i]->d_name) + 2;
        char *path = *paths ? malloc(length) : NULL;
        if (path) {
            snprintf(path, length, "%s/%s", dir, entries[i]->d_name);
            (*paths)[(*count)++] = path;
        }
        free(entries[i]);
    }
    free(entries);
    if (*count < (size_t)n) {
        fprintf(stderr, "cnx-bench: --images: out of memory\n");
        bench_files_free(*paths, *count);
        return -1;
    }
    return 0;
}

void bench_files_free(char **paths, size_t count) {
    for (size_t i = 0; paths && i < count; i++) free(paths[i]);
    free(paths);
}

typedef struct failures {
    size_t count;
    char first[512];
} failures;

static int count_failures(void *user, const cnx_file_result *result) {
    failures *f = user;
    if (result->status != CNX_OK && f->count++ == 0)
        snprintf(f->first, sizeof f->first, "%s", result->error);
    return 0;
}

/* The last iteration's stats, and which stage bounds the run. */
static void explain(bench_context *ctx, const cnx_files_stats *s, double h2d_gb_per_s) {
    FILE *out = ctx->notes;
    const double wall = s->wall > 0 ? s->wall : 1e-9;
    const int threads = s->decode_threads > 0 ? s->decode_threads : 1;
    fprintf(out, "Files: %zu images (%zu failed), %.1f MB of pixels, in %d batches of %d, %d "
            "decode threads; wall %.1f ms\n", s->images, s->failed, s->pixel_bytes / 1e6,
            s->batches, s->batch, s->decode_threads, s->wall * 1e3);
    fprintf(out, "Time: decode %.1f ms summed over the threads; the driver waited %.1f ms (%.0f%%) "
            "for decoding, %.1f ms (%.0f%%) for the device\n", s->decode * 1e3,
            s->wait_decode * 1e3, 100 * s->wait_decode / wall, s->wait_device * 1e3,
            100 * s->wait_device / wall);
    if (s->wait_decode < 0.1 * wall && s->wait_device < 0.1 * wall)
        fprintf(out, "Verdict: neither decoding nor the device holds the driver up (each wait "
                "under 10%% of the wall): its own work bounds this run%s\n",
                ctx->on_cuda ? "" : " (on the CPU: preprocessing and the model)");
    else if (s->wait_decode >= s->wait_device)
        fprintf(out, "Verdict: decoding bounds this run: %.1f images/s per decode thread, %.1f "
                "images/s with all %d threads\n", s->decode > 0 ? s->images / s->decode : 0.0,
                s->decode > 0 ? s->images / (s->decode / threads) : 0.0, threads);
    else
        fprintf(out, "Verdict: the device bounds this run: the driver waited for the model %.0f%% "
                "of the wall (compare with --mode model's throughput)\n",
                100 * s->wait_device / wall);
    if (h2d_gb_per_s > 0) {
        const double ms = s->pixel_bytes / (h2d_gb_per_s * 1e9) * 1e3;
        fprintf(out, "PCIe: %.1f MB of pixels per run at %.1f GB/s (pinned H2D, measured) = %.2f "
                "ms, %.1f%% of the wall\n", s->pixel_bytes / 1e6, h2d_gb_per_s, ms,
                100 * ms / (wall * 1e3));
    }
    fflush(out);
}

static void run_one(bench_context *ctx, char **paths, size_t count, cnx_precision precision,
                    int batch, double h2d_gb_per_s) {
    const bench_options *o = ctx->options;
    bench_row *row = bench_new_row(ctx, bench_precision_name(precision), "end-to-end", NULL,
                                   batch);
    if (!row) return;
    row->images_per_iteration = (int)count;
    bench_progress("%s, batch %d", row->name, batch);
    cnx_files_options opt = cnx_default_files_options();
    opt.preprocess = &ctx->preprocess;
    opt.k = o->k;
    opt.batch = batch;
    opt.decode_threads = o->threads;
    cnx_files_stats stats = {0};
    failures failed = {0};
    bench_series latency = {0};
    cnx_engine *engine = NULL;
    if (bench_engine_create(ctx, precision, batch, &engine) != CNX_OK) {
        bench_row_fail(row, "%s", cnx_last_error());
        goto done;
    }
    const char *const *list = (const char *const *)paths;
    for (int i = 0; i < o->warmup; i++)
        if (cnx_engine_classify_files(engine, list, count, &opt, count_failures, &failed,
                                      &stats) != CNX_OK) {
            bench_row_fail(row, "%s", cnx_last_error());
            goto done;
        }
    bench_loop loop = bench_loop_start(o);
    while (bench_loop_next(&loop)) {
        failed.count = 0;
        const double t0 = bench_now();
        const cnx_status status = cnx_engine_classify_files(engine, list, count, &opt,
                                                            count_failures, &failed, &stats);
        const double ms = (bench_now() - t0) * 1e3;
        if (status != CNX_OK) {
            bench_row_fail(row, "%s", cnx_last_error());
            goto done;
        }
        if (bench_series_push(&latency, ms) != 0) {
            bench_row_fail(row, "out of memory");
            goto done;
        }
    }
    const double wall = bench_loop_elapsed(&loop);
    bench_health_sample(ctx->health);
    if (bench_summarize(latency.values, latency.count, &row->latency) != 0) {
        bench_row_fail(row, "out of memory");
        goto done;
    }
    row->host = row->latency;
    row->iterations = latency.count;
    row->throughput = (double)count * latency.count / wall;
done:
    cnx_engine_destroy(engine);
    bench_series_free(&latency);
    bench_finish_row(ctx, row);
    if (!row->error[0]) {
        if (failed.count)
            bench_warn(ctx->report, "%s, batch %d: %zu of %zu files failed (first: %s)",
                       row->name, batch, failed.count, count, failed.first);
        explain(ctx, &stats, h2d_gb_per_s);
    }
}

/* Page-locked host-to-device bandwidth, once: 64 MiB, the median of 5. */
static double measure_h2d(bench_context *ctx) {
#ifdef CNX_HAVE_CUDA
    if (ctx->on_cuda) {
        const size_t bytes = (size_t)64 << 20;
        bench_series ms = {0};
        bench_row scratch;
        memset(&scratch, 0, sizeof scratch);
        bench_summary s;
        double gb_per_s = 0.0;
        if (bench_time_h2d((cudaStream_t)ctx->stream, bytes, 5, &ms, &scratch) == 0 &&
            bench_summarize(ms.values, ms.count, &s) == 0 && s.median > 0)
            gb_per_s = bytes / (s.median * 1e-3) / 1e9;
        else
            bench_warn(ctx->report, "could not measure the H2D bandwidth: %s",
                       scratch.error[0] ? scratch.error : "no samples");
        bench_series_free(&ms);
        return gb_per_s;
    }
#endif
    (void)ctx;
    return 0.0;
}

void bench_run_files(bench_context *ctx, char **paths, size_t count) {
    const bench_options *o = ctx->options;
    const double h2d_gb_per_s = measure_h2d(ctx);
    for (int p = 0; p < o->num_precisions; p++)
        for (int b = 0; b < o->num_batches; b++)
            run_one(ctx, paths, count, o->precisions[p], o->batches[b], h2d_gb_per_s);
}
