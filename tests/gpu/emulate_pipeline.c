/* The engine's image paths on the emulated GPU (tests/gpu/emulate_cuda.h):
 * cnx_engine_classify_files, cnx_engine_classify_images and
 * cnx_engine_classify_pixels_device running host/engine/engine_images.c,
 * image_batch.c, file_pipeline.c, cuda_upload.c, host_memory.c,
 * cuda_backend_enqueue_pixels and the preprocessing kernel on the CPU,
 * against the CPU engine with the same random weights. No GPU needed.
 *
 *   emulate_pipeline IMAGE_DIR [WORK_DIR] [STREAM_MODE]
 *
 * STREAM_MODE (default random:7): how the emulated streams run, see
 * emu_set_stream_mode in emulate_runtime.cpp. The default defers every
 * stream's work as late as CUDA allows, in a seeded random interleaving, so
 * that a result read before it was waited for, or a buffer reused while a
 * copy still reads it, gives wrong values here.
 *
 * Checks: results delivered in input order, exactly once each; bad files
 * (empty, truncated PNG, text, missing) fail alone, with the status the
 * decoder gives and a message naming the file; every good result's top-k
 * classes equal the CPU engine's (up to ties within the tolerance) and its
 * logits within 1e-4 * max|ref| (fp32), the reference being
 * cnx_preprocess_image + cnx_engine_forward on the CPU engine; batch sizes
 * that do and do not divide the count and larger than it, 1 and several
 * decode threads, k = 0 with logits, no logits; the same file run on the
 * CPU engine; the callback stopping the run; a device fault in the middle
 * of a run (every file still reported once, the engine usable after);
 * host images in more batches than max_batch, one of them bad, one without
 * pixels, a device fault in the second batch (every image gets a status);
 * device pixels (odd offsets, one descriptor past the end, the caller's
 * stream) against classify_images, bit for bit; images larger than the
 * pinned buffer's initial size (a 2000x1500 PNG among the files, synthetic
 * large images); the emulation's own deferred streams and misuse checks;
 * an engine on a second device making no context on the first; one plan
 * per batch size whatever the bad files in a batch; nothing of
 * the emulated runtime (device or pinned memory, streams, events, graphs)
 * left behind. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <png.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cuda_runtime.h>

#include "cnx.h"
#include "emulate_api.h"
#include "test_check.h"


enum { SIDE = 64, RESIZE = 72, K = 5, GPU_BATCH = 16, CPU_BATCH = 8, MAX_FILES = 16 };

static cnx_engine *gpu, *cpu;
static cnx_preprocess pp;
static int classes;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------ references */

/* The CPU engine's logits for one image, by the plainest path:
 * cnx_preprocess_image, then one forward. */
static float *reference(const cnx_image *image) {
    float *input = malloc(sizeof(float) * 3 * SIDE * SIDE);
    float *logits = malloc(sizeof(float) * classes);
    const int ok = cnx_preprocess_image(image, &pp, input) == CNX_OK &&
                   cnx_engine_forward(cpu, input, 1, SIDE, SIDE, logits) == CNX_OK;
    CHECK(ok, "reference %dx%d: %s", image->width, image->height, cnx_last_error());
    free(input);
    if (!ok) {
        free(logits);
        return NULL;
    }
    return logits;
}

static double max_abs(const float *x, int n) {
    double m = 0;
    for (int i = 0; i < n; i++)
        if (fabs(x[i]) > m)
            m = fabs(x[i]);
    return m;
}

/* got_logits (NULL: none) and got_top (k of them; NULL: none) against ref. */
static void compare(const char *label, const float *ref, const float *got_logits,
                    const cnx_prediction *got_top, int k) {
    if (!ref)
        return;
    const double tol = 1e-4 * max_abs(ref, classes);
    if (got_logits) {
        double worst = 0;
        int at = 0;
        for (int c = 0; c < classes; c++) {
            const double d = fabs((double)got_logits[c] - ref[c]);
            if (!(d <= worst)) {
                worst = isnan(d) ? INFINITY : d;
                at = c;
            }
        }
        CHECK(worst <= tol, "%s: logit %d off by %.3g (tolerance %.3g)", label, at, worst, tol);
    }
    if (got_top) {
        cnx_prediction want[K];
        cnx_top_k(ref, classes, k, want);
        for (int j = 0; j < k; j++) {
            const cnx_prediction *g = &got_top[j];
            const int same = g->class_index == want[j].class_index ||
                             (g->class_index >= 0 && g->class_index < classes &&
                              fabs((double)ref[g->class_index] - ref[want[j].class_index]) <= 2 * tol);
            CHECK(same && fabs((double)g->probability - want[j].probability) <= 1e-4 &&
                      fabs((double)g->logit - want[j].logit) <= 2 * tol,
                  "%s: rank %d: class %d p %.6f logit %.6f, want class %d p %.6f logit %.6f", label,
                  j, g->class_index, g->probability, g->logit, want[j].class_index,
                  want[j].probability, want[j].logit);
        }
    }
}

/* --------------------------------------------------------------- files */

static int write_bytes(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    const int ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static void *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *data = malloc(*size ? *size : 1);
    if (fread(data, 1, *size, f) != *size) {
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}

/* A width x height RGB test pattern (smooth, with some detail). */
static cnx_image make_pattern(int width, int height, int seed) {
    cnx_image image = {width, height, malloc((size_t)width * height * 3)};
    uint32_t state = 2463534242u + (uint32_t)seed;
    for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            uint8_t *p = image.rgb + ((size_t)y * width + x) * 3;
            p[0] = (uint8_t)((x * 255) / width + (state & 15));
            p[1] = (uint8_t)((y * 255) / height);
            p[2] = (uint8_t)(((x / 37 + y / 23) & 1) * 160 + ((state >> 8) & 31));
        }
    }
    return image;
}

static int write_png(const char *path, const cnx_image *image) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_compression_level(png, 1);
    png_set_IHDR(png, info, (png_uint_32)image->width, (png_uint_32)image->height, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < image->height; y++)
        png_write_row(png, image->rgb + (size_t)y * image->width * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f) == 0 ? 0 : -1;
}

typedef struct {
    const char *paths[MAX_FILES];
    size_t n;
    cnx_status expect[MAX_FILES]; /* what cnx_image_decode_file says */
    float *ref[MAX_FILES];        /* the CPU's logits of the good ones */
    uint64_t pixel_bytes;         /* decoded bytes of the good ones */
    size_t bad;
} file_set;

typedef struct {
    const file_set *set;
    int k, want_logits;
    size_t stop_at; /* return nonzero after this many results; 0: never */
    size_t delivered;
    int seen[MAX_FILES];
    cnx_status status[MAX_FILES];
    char error[MAX_FILES][1024];
    int has_top[MAX_FILES], has_logits[MAX_FILES];
    cnx_prediction top[MAX_FILES][K];
    float *logits; /* [MAX_FILES][classes] */
    int out_of_order;
} collector;

static int on_result(void *user, const cnx_file_result *r) {
    collector *c = user;
    if (r->index != c->delivered || r->index >= c->set->n || r->path != c->set->paths[r->index]) {
        c->out_of_order++;
        fprintf(stderr, "result %zu (%s) delivered as number %zu\n", r->index, r->path, c->delivered);
        c->delivered++;
        return 0;
    }
    const size_t i = r->index;
    c->delivered++;
    c->seen[i]++;
    c->status[i] = r->status;
    snprintf(c->error[i], sizeof c->error[i], "%s", r->error ? r->error : "(NULL)");
    c->has_top[i] = r->top != NULL;
    c->has_logits[i] = r->logits != NULL;
    if (r->top)
        memcpy(c->top[i], r->top, sizeof(cnx_prediction) * (size_t)c->k);
    if (r->logits)
        memcpy(c->logits + i * (size_t)classes, r->logits, sizeof(float) * classes);
    return c->stop_at && c->delivered == c->stop_at;
}

static void live(long counts[5]) {
    emu_live(&counts[0], &counts[1], &counts[2], &counts[3], &counts[4]);
}

/* Device and pinned memory, streams, events (graphs are the engine's cache). */
static int same_live(const long a[5], const long b[5]) {
    return memcmp(a, b, 4 * sizeof(long)) == 0;
}

static collector *new_collector(const file_set *set, int k, int want_logits, size_t stop_at) {
    collector *c = calloc(1, sizeof *c);
    c->set = set;
    c->k = k;
    c->want_logits = want_logits;
    c->stop_at = stop_at;
    c->logits = malloc(sizeof(float) * MAX_FILES * classes);
    return c;
}

static void free_collector(collector *c) {
    free(c->logits);
    free(c);
}

/* One classify_files run, checked file by file. */
static void files_run_on(cnx_engine *engine, int max_batch, const file_set *set, int batch,
                         int threads, int k, int want_logits) {
    char label[96];
    snprintf(label, sizeof label, "files%s batch %d threads %d k %d logits %d",
             engine == cpu ? " (CPU)" : "", batch, threads, k, want_logits);
    const double start = now();
    long before[5], after[5];
    live(before);
    collector *c = new_collector(set, k, want_logits, 0);
    cnx_files_options o = cnx_default_files_options();
    o.preprocess = &pp;
    o.k = k;
    o.want_logits = want_logits;
    o.batch = batch;
    o.decode_threads = threads;
    cnx_files_stats stats;
    const cnx_status status = cnx_engine_classify_files(engine, set->paths, set->n, &o, on_result, c,
                                                        &stats);
    CHECK(status == CNX_OK, "%s: status %d: %s", label, status, cnx_last_error());
    CHECK(c->delivered == set->n && !c->out_of_order, "%s: %zu results for %zu files, %d out of order",
          label, c->delivered, set->n, c->out_of_order);
    for (size_t i = 0; i < set->n; i++) {
        char item[160];
        snprintf(item, sizeof item, "%s: file %zu (%s)", label, i, set->paths[i]);
        CHECK(c->seen[i] == 1, "%s: delivered %d times", item, c->seen[i]);
        if (c->seen[i] != 1)
            continue;
        CHECK(c->status[i] == set->expect[i], "%s: status %d, want %d (%s)", item, c->status[i],
              set->expect[i], c->error[i]);
        if (set->expect[i] != CNX_OK) {
            CHECK(strstr(c->error[i], set->paths[i]) && !c->has_top[i] && !c->has_logits[i],
                  "%s: message \"%s\" does not name the file, or results were given", item,
                  c->error[i]);
            continue;
        }
        CHECK(c->error[i][0] == '\0', "%s: error \"%s\" on success", item, c->error[i]);
        CHECK(c->has_top[i] == (k > 0) && c->has_logits[i] == want_logits,
              "%s: top %s, logits %s", item, c->has_top[i] ? "given" : "NULL",
              c->has_logits[i] ? "given" : "NULL");
        compare(item, set->ref[i], c->has_logits[i] ? c->logits + i * (size_t)classes : NULL,
                c->has_top[i] ? c->top[i] : NULL, k);
    }
    int effective = batch ? batch : max_batch;
    if (effective > max_batch)
        effective = max_batch;
    if ((size_t)effective > set->n)
        effective = (int)set->n;
    const int want_threads = (size_t)threads > set->n ? (int)set->n : threads;
    CHECK(stats.images == set->n && stats.failed == set->bad && stats.batch == effective &&
              stats.batches == (int)((set->n + effective - 1) / effective) &&
              stats.decode_threads == want_threads && stats.pixel_bytes == set->pixel_bytes,
          "%s: stats images %zu failed %zu batch %d batches %d threads %d pixels %llu", label,
          stats.images, stats.failed, stats.batch, stats.batches, stats.decode_threads,
          (unsigned long long)stats.pixel_bytes);
    live(after);
    CHECK(same_live(before, after), "%s: the emulated runtime holds more after the run", label);
    free_collector(c);
    printf("%-44s %.1f s (decode %.2f s, waiting for the device %.2f s)\n", label, now() - start,
           stats.decode, stats.wait_device);
}

static void files_run(const file_set *set, int batch, int threads, int k, int want_logits) {
    files_run_on(gpu, GPU_BATCH, set, batch, threads, k, want_logits);
}

/* The callback stops the run after `stop_at` results. */
static void files_stop(const file_set *set, int batch, size_t stop_at) {
    char label[64];
    snprintf(label, sizeof label, "files stop after %zu (batch %d)", stop_at, batch);
    long before[5], after[5];
    live(before);
    collector *c = new_collector(set, K, 1, stop_at);
    cnx_files_options o = cnx_default_files_options();
    o.preprocess = &pp;
    o.want_logits = 1;
    o.batch = batch;
    o.decode_threads = 2;
    const cnx_status status = cnx_engine_classify_files(gpu, set->paths, set->n, &o, on_result, c, NULL);
    CHECK(status == CNX_ERROR_INTERNAL && strstr(cnx_last_error(), "stopped"),
          "%s: status %d, message \"%s\"", label, status, cnx_last_error());
    CHECK(c->delivered == stop_at && !c->out_of_order, "%s: %zu results", label, c->delivered);
    for (size_t i = 0; i < stop_at && i < set->n; i++)
        if (set->expect[i] == CNX_OK && c->status[i] == CNX_OK)
            compare(label, set->ref[i], c->logits + i * (size_t)classes, c->top[i], K);
    live(after);
    CHECK(same_live(before, after), "%s: the emulated runtime holds more after the run", label);
    free_collector(c);
}

/* A device call fails in the middle of the run: the run says so, and every
 * file is still reported once, the ones not classified with the fault. */
static void files_fault(const file_set *set, const char *call, long after_calls) {
    char label[96];
    snprintf(label, sizeof label, "files fault in %s after %ld calls", call, after_calls);
    long before[5], after[5];
    live(before);
    collector *c = new_collector(set, K, 0, 0);
    cnx_files_options o = cnx_default_files_options();
    o.preprocess = &pp;
    o.batch = 3;
    o.decode_threads = 2;
    /* A non-sticky error (a sticky one would end the CUDA context). */
    emu_fail_call(call, after_calls, (int)cudaErrorInvalidValue);
    const cnx_status status = cnx_engine_classify_files(gpu, set->paths, set->n, &o, on_result, c, NULL);
    emu_fail_call(NULL, 0, 0);
    CHECK(status == CNX_ERROR_DEVICE, "%s: status %d (%s)", label, status, cnx_last_error());
    CHECK(c->delivered == set->n && !c->out_of_order, "%s: %zu results for %zu files", label,
          c->delivered, set->n);
    size_t failed = 0;
    for (size_t i = 0; i < set->n; i++) {
        CHECK(c->seen[i] == 1, "%s: file %zu delivered %d times", label, i, c->seen[i]);
        if (c->status[i] == CNX_OK) {
            compare(label, set->ref[i], NULL, c->top[i], K);
        } else {
            failed++;
            CHECK(strstr(c->error[i], set->paths[i]) != NULL, "%s: file %zu: message \"%s\"", label,
                  i, c->error[i]);
        }
    }
    CHECK(failed > set->bad, "%s: only the bad files failed", label);
    live(after);
    CHECK(same_live(before, after), "%s: the emulated runtime holds more after the run", label);
    free_collector(c);
    /* The engine works again: CUDA keeps a failed call's error for the next
     * cudaGetLastError, which every kernel launcher asks, so a fault handled
     * must be cleared, or the next launch fails with it. */
    cnx_image image;
    if (cnx_image_decode_file(set->paths[0], 0, &image) == CNX_OK) {
        cnx_prediction top[K];
        const cnx_status again = cnx_engine_classify_images(gpu, &image, 1, &pp, K, top, NULL, NULL);
        CHECK(again == CNX_OK, "%s: the next call fails: %s", label, cnx_last_error());
        if (again == CNX_OK)
            compare(label, set->ref[0], NULL, top, K);
        cnx_image_free(&image);
    }
    emu_cudaGetLastError(); /* whatever happened, the checks after this start clean */
}

/* -------------------------------------------------------------- images */

/* classify_images on both engines: n images, one of them bad. */
static void images_run(const cnx_image *images, float *const *refs, int n, int bad) {
    char label[64];
    snprintf(label, sizeof label, "images n %d", n);
    const double start = now();
    cnx_prediction *top = malloc(sizeof *top * (size_t)n * K);
    float *logits = malloc(sizeof(float) * (size_t)n * classes);
    cnx_status *status = malloc(sizeof *status * (size_t)n);
    for (int e = 0; e < 2; e++) {
        cnx_engine *engine = e ? cpu : gpu;
        const char *name = e ? "CPU" : "GPU";
        const cnx_status s = cnx_engine_classify_images(engine, images, n, &pp, K, top, logits, status);
        char bad_name[32];
        snprintf(bad_name, sizeof bad_name, "image %d", bad);
        CHECK(bad < 0 ? s == CNX_OK : (s != CNX_OK && strstr(cnx_last_error(), bad_name) != NULL),
              "%s %s: status %d, message \"%s\"", label, name, s, cnx_last_error());
        for (int i = 0; i < n; i++) {
            char item[128];
            snprintf(item, sizeof item, "%s %s: image %d", label, name, i);
            if (i == bad) {
                CHECK(status[i] != CNX_OK && top[(size_t)i * K].class_index == -1 &&
                          isnan(logits[(size_t)i * classes]),
                      "%s: the bad image has status %d", item, status[i]);
                continue;
            }
            CHECK(status[i] == CNX_OK, "%s: status %d", item, status[i]);
            compare(item, refs[i], logits + (size_t)i * classes, top + (size_t)i * K, K);
        }
    }
    /* Only top, then only logits (k ignored), on the first few. */
    n = n < 8 ? n : 8;
    bad = bad < n ? bad : -1;
    memset(logits, 0, sizeof(float) * (size_t)n * classes);
    CHECK(cnx_engine_classify_images(gpu, images, n, &pp, 3, top, NULL, NULL) == (bad < 0 ? CNX_OK : status[bad]),
          "%s: top only: %s", label, cnx_last_error());
    for (int i = 0; i < n; i++)
        if (i != bad)
            compare(label, refs[i], NULL, top + (size_t)i * 3, 3);
    CHECK(cnx_engine_classify_images(gpu, images, n, &pp, 0, NULL, logits, NULL) == (bad < 0 ? CNX_OK : status[bad]),
          "%s: logits only: %s", label, cnx_last_error());
    for (int i = 0; i < n; i++)
        if (i != bad)
            compare(label, refs[i], logits + (size_t)i * classes, NULL, 0);
    free(top);
    free(logits);
    free(status);
    printf("%-44s %.1f s\n", label, now() - start);
}

/* An image without pixels (rgb NULL) fails alone, on both engines. On the
 * GPU in a child process: a crash there is a failed check, not the end of
 * the test (the CPU engine's OpenMP pool would not survive a fork). */
static int null_pixels_fail_alone(cnx_engine *engine, const cnx_image *good_image) {
    cnx_image images[2] = {*good_image, {good_image->width, good_image->height, NULL}};
    cnx_status status[2];
    cnx_prediction top[2 * K];
    const cnx_status s = cnx_engine_classify_images(engine, images, 2, &pp, K, top, NULL, status);
    return s == CNX_ERROR_INVALID_ARGUMENT && status[0] == CNX_OK &&
           status[1] == CNX_ERROR_INVALID_ARGUMENT && strstr(cnx_last_error(), "image 1") != NULL;
}

static void images_null_pixels(const cnx_image *good_image) {
    CHECK(null_pixels_fail_alone(cpu, good_image),
          "CPU engine, an image with rgb NULL: not failed alone with INVALID_ARGUMENT naming it");
    const pid_t child = fork();
    if (child == 0)
        _exit(null_pixels_fail_alone(gpu, good_image) ? 0 : 1);
    int how = 0;
    waitpid(child, &how, 0);
    CHECK(WIFEXITED(how) && WEXITSTATUS(how) == 0, "GPU engine, an image with rgb NULL: %s",
          WIFSIGNALED(how) ? "crashed" : "not failed alone with INVALID_ARGUMENT naming it");
}

/* ------------------------------------------------------- device pixels */

/* The images packed into one device buffer at odd offsets, descs on the
 * host, one descriptor running past the end; then the same on the caller's
 * stream, with the pixels' upload queued there just before. */
static void pixels_run(const cnx_image *images, float *const *refs, int n) {
    const double start = now();
    const int count = n + 1, past = n / 2; /* descriptor `past` runs off the end */
    cnx_image_desc *descs = calloc((size_t)count, sizeof *descs);
    float **order = calloc((size_t)count, sizeof *order);
    uint64_t bytes = 0;
    for (int i = 0, j = 0; i < count; i++) {
        if (i == past)
            continue;
        bytes += 1 + (uint64_t)(i % 3); /* odd offsets */
        descs[i] = (cnx_image_desc){bytes, images[j].width, images[j].height};
        order[i] = refs[j];
        bytes += (uint64_t)images[j].width * images[j].height * 3;
        j++;
    }
    descs[past] = (cnx_image_desc){bytes - 100, 16, 16};
    uint8_t *host = NULL, *device = NULL;
    emu_cudaHostAlloc((void **)&host, bytes, 0);
    emu_cudaMalloc((void **)&device, bytes);
    for (int i = 0, j = 0; i < count; i++) {
        if (i == past)
            continue;
        memcpy(host + descs[i].offset, images[j].rgb, (size_t)images[j].width * images[j].height * 3);
        j++;
    }
    cnx_prediction *top = malloc(sizeof *top * (size_t)count * K);
    float *logits = malloc(sizeof(float) * (size_t)count * classes);
    cnx_status *status = malloc(sizeof *status * (size_t)count);
    for (int run = 0; run < 2; run++) {
        const char *label = run ? "pixels on the caller's stream" : "pixels";
        cudaStream_t stream = NULL;
        memset(device, 0xff, bytes); /* host memory here: a missed upload is NaN */
        if (run == 0) {
            emu_cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice);
        } else {
            emu_cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
            emu_cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream);
            CHECK(cnx_engine_set_cuda_stream(gpu, stream) == CNX_OK, "%s: set stream: %s", label,
                  cnx_last_error());
        }
        const cnx_status s = cnx_engine_classify_pixels_device(gpu, device, bytes, descs, count, &pp,
                                                               K, top, logits, status);
        char past_name[32];
        snprintf(past_name, sizeof past_name, "image %d", past);
        CHECK(s == CNX_ERROR_INVALID_ARGUMENT && strstr(cnx_last_error(), past_name) &&
                  strstr(cnx_last_error(), "past"),
              "%s: status %d, message \"%s\"", label, s, cnx_last_error());
        for (int i = 0; i < count; i++) {
            char item[64];
            snprintf(item, sizeof item, "%s: image %d", label, i);
            if (i == past) {
                CHECK(status[i] == CNX_ERROR_INVALID_ARGUMENT && top[(size_t)i * K].class_index == -1,
                      "%s: status %d", item, status[i]);
                continue;
            }
            CHECK(status[i] == CNX_OK, "%s: status %d", item, status[i]);
            compare(item, order[i], logits + (size_t)i * classes, top + (size_t)i * K, K);
        }
        if (stream) {
            CHECK(cnx_engine_set_cuda_stream(gpu, NULL) == CNX_OK, "%s: own stream: %s", label,
                  cnx_last_error());
            emu_cudaStreamDestroy(stream);
        }
    }
    /* The same pixels through classify_images: the same bits. */
    cnx_image *packed = calloc((size_t)count, sizeof *packed);
    uint8_t *filler = calloc(16 * 16 * 3, 1);
    for (int i = 0; i < count; i++)
        packed[i] = (cnx_image){descs[i].width, descs[i].height, i == past ? filler : host + descs[i].offset};
    cnx_prediction *top2 = malloc(sizeof *top2 * (size_t)count * K);
    float *logits2 = malloc(sizeof(float) * (size_t)count * classes);
    cnx_engine_classify_images(gpu, packed, count, &pp, K, top2, logits2, NULL);
    for (int i = 0; i < count; i++)
        if (i != past)
            CHECK(memcmp(logits + (size_t)i * classes, logits2 + (size_t)i * classes,
                         sizeof(float) * classes) == 0 &&
                      memcmp(top + (size_t)i * K, top2 + (size_t)i * K, sizeof *top * K) == 0,
                  "pixels: image %d differs from classify_images", i);
    /* The CPU engine has no device pixels. */
    CHECK(cnx_engine_classify_pixels_device(cpu, device, bytes, descs, count, &pp, K, top, NULL,
                                            NULL) == CNX_ERROR_UNSUPPORTED,
          "pixels: the CPU engine took device pixels");
    free(packed);
    free(filler);
    free(top2);
    free(logits2);
    emu_cudaFree(device);
    emu_cudaFreeHost(host);
    free(top);
    free(logits);
    free(status);
    free(descs);
    free(order);
    printf("%-44s %.1f s\n", "pixels (own stream, caller's stream)", now() - start);
}

/* ---------------------------------------------------- the emulation itself */

/* Runs misuse() in a child process: the emulation must abort it. */
static void check_aborts(void (*misuse)(void), const char *what) {
    const pid_t child = fork();
    if (child == 0) {
        freopen("/dev/null", "w", stderr);
        misuse();
        _exit(0);
    }
    int how = 0;
    waitpid(child, &how, 0);
    CHECK(WIFSIGNALED(how) && WTERMSIG(how) == SIGABRT, "the emulation let %s through", what);
}

static void sync_unrecorded_event(void) {
    cudaEvent_t e;
    emu_cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
    emu_cudaEventSynchronize(e);
}

static void copy_past_pinned(void) {
    uint8_t *pinned, *device;
    emu_cudaHostAlloc((void **)&pinned, 100, 0);
    emu_cudaMalloc((void **)&device, 200);
    emu_cudaMemcpy(device, pinned, 101, cudaMemcpyHostToDevice);
}

static void free_pinned_with_cuda_free(void) {
    void *pinned;
    emu_cudaHostAlloc(&pinned, 100, 0);
    emu_cudaFree(pinned);
}

/* The deferred streams do what the checks above rely on: a copy to host
 * memory is not there before its stream is waited for, a copy from
 * page-locked memory reads it when it runs, one from pageable memory when
 * it is queued, and an event orders two streams. */
static void emulation_self_check(const char *mode) {
    emu_set_stream_mode("deferred");
    enum { N = 4096 };
    uint8_t *src, *dst, *device, pageable[N];
    cudaStream_t a, b;
    cudaEvent_t e;
    emu_cudaHostAlloc((void **)&src, N, 0);
    emu_cudaHostAlloc((void **)&dst, N, 0);
    emu_cudaMalloc((void **)&device, 2 * N);
    emu_cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking);
    emu_cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking);
    emu_cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
    memset(src, 1, N);
    memset(pageable, 3, N);
    emu_cudaMemcpyAsync(device, src, N, cudaMemcpyHostToDevice, a);
    emu_cudaMemcpyAsync(device + N, pageable, N, cudaMemcpyHostToDevice, a);
    memset(src, 2, N); /* the copy has not run: it reads this */
    memset(pageable, 4, N); /* staged at the call: it does not */
    emu_cudaEventRecord(e, a);
    emu_cudaStreamWaitEvent(b, e, 0);
    emu_cudaMemcpyAsync(dst, device, N, cudaMemcpyDeviceToHost, b);
    CHECK(dst[0] == 0xff && dst[N - 1] == 0xff, "emulation: a copy to host memory was there early");
    emu_cudaStreamSynchronize(b);
    CHECK(dst[0] == 2 && dst[N - 1] == 2, "emulation: the stream wait or the late read failed (%d)",
          dst[0]);
    emu_cudaMemcpyAsync(dst, device + N, N, cudaMemcpyDeviceToHost, b);
    emu_cudaEventRecord(e, b);
    emu_cudaEventSynchronize(e);
    CHECK(dst[0] == 3 && dst[N - 1] == 3, "emulation: a pageable source was not staged (%d)", dst[0]);
    emu_cudaEventDestroy(e);
    emu_cudaStreamDestroy(a);
    emu_cudaStreamDestroy(b);
    emu_cudaFree(device);
    emu_cudaFreeHost(src);
    emu_cudaFreeHost(dst);
    emu_set_stream_mode(mode);
    check_aborts(sync_unrecorded_event, "a wait on an event never recorded");
    check_aborts(copy_past_pinned, "a copy past a page-locked allocation");
    check_aborts(free_pinned_with_cuda_free, "cudaFree of page-locked memory");
}

/* A device fault in the second of two batches: every image still gets its
 * status, and the failed ones -1 ranks and NaN logits (cnx.h). */
static void images_fault(const cnx_image *images, float *const *refs, int n) {
    cnx_prediction *top = malloc(sizeof *top * (size_t)n * K);
    float *logits = malloc(sizeof(float) * (size_t)n * classes);
    cnx_status *status = malloc(sizeof *status * (size_t)n);
    for (int i = 0; i < n; i++) {
        status[i] = (cnx_status)-7; /* never written */
        top[(size_t)i * K].class_index = 12345;
        logits[(size_t)i * classes] = 0.0f;
    }
    emu_fail_call("cudaEventSynchronize", 1, (int)cudaErrorInvalidValue);
    const cnx_status s = cnx_engine_classify_images(gpu, images, n, &pp, K, top, logits, status);
    emu_fail_call(NULL, 0, 0);
    emu_cudaGetLastError(); /* see files_fault */
    CHECK(s == CNX_ERROR_DEVICE, "images fault: status %d (%s)", s, cnx_last_error());
    int unset = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        if (status[i] == (cnx_status)-7) {
            unset++;
        } else if (status[i] != CNX_OK) {
            failed++;
            CHECK(top[(size_t)i * K].class_index == -1 && isnan(logits[(size_t)i * classes]),
                  "images fault: failed image %d has results", i);
        } else {
            compare("images fault", refs[i], logits + (size_t)i * classes, top + (size_t)i * K, K);
        }
    }
    CHECK(unset == 0 && failed > 0, "images fault: %d of %d images have no status (%d failed)",
          unset, n, failed);
    free(top);
    free(logits);
    free(status);
}

/* ---------------------------------------------------------------- main */

static cnx_engine *make_engine_on(cnx_device device, int max_batch, int cuda_device) {
    cnx_options o = cnx_default_options();
    o.device = device;
    o.cuda_device = cuda_device;
    o.precision = CNX_PRECISION_FP32;
    o.input_size = SIDE;
    o.max_batch = max_batch;
    cnx_engine *engine = NULL;
    const cnx_status s = cnx_engine_create_random("convnext_atto", 3, &o, &engine);
    CHECK(s == CNX_OK, "create (device %d): %s", (int)device, cnx_last_error());
    return engine;
}

static cnx_engine *make_engine(cnx_device device, int max_batch) {
    return make_engine_on(device, max_batch, 0);
}

/* Bad files change how many good images a batch holds, but not the plan
 * the GPU runs it with: batches of 4 of the 13 files (3, 2, 3 and 1 good
 * ones) take two plans, for 4 and for 1 images, not one per good count. A
 * plan asks the heuristic the same number of times whatever its size. */
static void plans_per_batch(const file_set *set) {
    const long before = emu_lt_heuristic_calls();
    cnx_engine *engine = make_engine(CNX_DEVICE_CUDA, GPU_BATCH); /* plans for GPU_BATCH */
    if (!engine)
        return;
    const long per_plan = emu_lt_heuristic_calls() - before;
    files_run_on(engine, GPU_BATCH, set, 4, 2, K, 1);
    const long plans = (emu_lt_heuristic_calls() - before) / per_plan - 1;
    CHECK(plans == 2, "batches of 4 with bad files among them built %ld plans, want 2", plans);
    cnx_engine_destroy(engine);
}

/* An engine on device 1 of 2, used from a thread of its own (whose current
 * device is 0, as any new thread's): every context it makes, for its device
 * memory and its page-locked batches, is on device 1. A context on a device
 * the engine does not use costs that GPU hundreds of MiB. */
typedef struct {
    cnx_engine *engine;
    const file_set *set;
    const cnx_image *images;
    int n;
} second_device_work;

static void *use_second_device(void *arg) {
    const second_device_work *w = arg;
    files_run_on(w->engine, GPU_BATCH, w->set, 3, 2, K, 1);
    cnx_prediction *top = malloc(sizeof *top * (size_t)w->n * K);
    cnx_status *status = malloc(sizeof *status * (size_t)w->n);
    const cnx_status s = cnx_engine_classify_images(w->engine, w->images, w->n, &pp, K, top, NULL,
                                                    status);
    CHECK(s == CNX_OK, "device 1: classify_images: %s", cnx_last_error());
    free(top);
    free(status);
    return NULL;
}

static void second_device(const file_set *set, const cnx_image *images, int n) {
    emu_set_device_count(2);
    emu_devices_touched(); /* from here on */
    second_device_work work = {make_engine_on(CNX_DEVICE_CUDA, GPU_BATCH, 1), set, images, n};
    pthread_t thread;
    if (work.engine && pthread_create(&thread, NULL, use_second_device, &work) == 0)
        pthread_join(thread, NULL);
    cnx_engine_destroy(work.engine);
    const unsigned touched = emu_devices_touched();
    CHECK(touched == 2u, "an engine on device 1 made contexts on the devices of mask 0x%x", touched);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s IMAGE_DIR [WORK_DIR] [STREAM_MODE]\n", argv[0]);
        return 2;
    }
    const char *image_dir = argv[1];
    char dir[2048];
    snprintf(dir, sizeof dir, "%s", argc > 2 ? argv[2] : "/tmp/cnx_pipeline_XXXXXX");
    if (argc > 2 ? test_make_dir(dir) != 0 : mkdtemp(dir) == NULL) {
        fprintf(stderr, "cannot create %s\n", dir);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 3 ? argv[3] : "random:7";
    emu_set_stream_mode(mode);
    printf("streams: %s\n", mode);
    const double start = now();

    gpu = make_engine(CNX_DEVICE_CUDA, GPU_BATCH);
    cpu = make_engine(CNX_DEVICE_CPU, CPU_BATCH);
    cnx_engine *automatic = make_engine(CNX_DEVICE_AUTO, 2);
    if (!gpu || !cpu || !automatic)
        return test_summary();
    cnx_model_info info;
    cnx_engine_info(gpu, &info);
    classes = info.num_classes;
    CHECK(info.device == CNX_DEVICE_CUDA && strstr(info.device_name, "Emulated"),
          "the GPU engine runs on %s", info.device_name);
    printf("GPU engine: %s\n", info.device_name);
    emulation_self_check(mode);
    cnx_engine_info(automatic, &info);
    CHECK(info.device == CNX_DEVICE_CUDA, "CNX_DEVICE_AUTO chose %s", info.device_name);
    cnx_engine_destroy(automatic);
    cnx_engine_info(cpu, &info);
    CHECK(info.device == CNX_DEVICE_CPU, "the CPU engine runs on %s", info.device_name);

    pp = cnx_default_preprocess();
    pp.resize = RESIZE;
    pp.crop = SIDE;

    /* The files: the shared images, bad files between them, one large PNG. */
    static const char *good[] = {"astronaut.png", "brick.png", "camera.png", "chelsea.png",
                                 "coffee.png", "horse.png", "rocket.jpg"};
    char paths[MAX_FILES][4200];
    char empty[4200], truncated[4200], text[4200], missing[4200], big[4200];
    test_path(empty, sizeof empty, dir, "empty.png");
    test_path(truncated, sizeof truncated, dir, "truncated.png");
    test_path(text, sizeof text, dir, "notes.txt");
    test_path(missing, sizeof missing, dir, "missing.png");
    test_path(big, sizeof big, dir, "large.png");
    char source[4200];
    size_t size = 0;
    void *bytes = read_all(test_path(source, sizeof source, image_dir, "chelsea.png"), &size);
    CHECK(bytes && write_bytes(truncated, bytes, size * 2 / 5) == 0, "write %s", truncated);
    free(bytes);
    CHECK(write_bytes(empty, "", 0) == 0, "write %s", empty);
    CHECK(write_bytes(text, "not an image, only some text\n", 29) == 0, "write %s", text);
    unlink(missing);
    cnx_image large = make_pattern(2000, 1500, 1);
    CHECK(write_png(big, &large) == 0, "write %s", big);
    cnx_image_free(&large);

    const char *order[] = {"astronaut.png", empty, "brick.png", big, "camera.png", truncated,
                           "chelsea.png", text, "coffee.png", missing, "horse.png", "rocket.jpg",
                           "astronaut.png"};
    file_set set;
    memset(&set, 0, sizeof set);
    set.n = sizeof order / sizeof order[0];
    for (size_t i = 0; i < set.n; i++) {
        if (order[i][0] == '/' || strchr(order[i], '/'))
            snprintf(paths[i], sizeof paths[i], "%s", order[i]);
        else
            test_path(paths[i], sizeof paths[i], image_dir, order[i]);
        set.paths[i] = paths[i];
        cnx_image image;
        set.expect[i] = cnx_image_decode_file(paths[i], 0, &image);
        if (set.expect[i] == CNX_OK) {
            set.ref[i] = reference(&image);
            set.pixel_bytes += (uint64_t)image.width * image.height * 3;
            cnx_image_free(&image);
        } else {
            set.bad++;
        }
    }
    CHECK(set.bad == 4, "%zu bad files, want 4", set.bad);
    printf("%zu files (%zu bad), references in %.1f s\n", set.n, set.bad, now() - start);

    files_run(&set, 1, 1, K, 1);
    files_run(&set, 3, 3, K, 0);
    files_run(&set, 4, 2, 0, 1);
    files_run(&set, 5, 1, K, 1);
    files_run(&set, 0, 4, 3, 1);   /* the engine's max_batch: more than the files */
    files_run(&set, 100, 1, K, 1); /* over the engine's max_batch */
    files_run_on(cpu, CPU_BATCH, &set, 0, 2, K, 1); /* the same pipeline on the CPU */
    files_stop(&set, 3, 1);
    files_stop(&set, 3, 5);
    files_stop(&set, 4, set.n);
    files_fault(&set, "cudaMemcpyAsync", 7);
    files_fault(&set, "cudaEventSynchronize", 1);
    files_fault(&set, "cudaStreamWaitEvent", 2);

    /* Host images: every good image, again and again, past max_batch. */
    cnx_image decoded[8];
    float *decoded_ref[8];
    for (int i = 0; i < 7; i++) {
        CHECK(cnx_image_decode_file(test_path(source, sizeof source, image_dir, good[i]), 0,
                                    &decoded[i]) == CNX_OK, "decode %s", good[i]);
        decoded_ref[i] = reference(&decoded[i]);
    }
    decoded[7] = make_pattern(97, 203, 2); /* a portrait, odd sizes */
    decoded_ref[7] = reference(&decoded[7]);
    enum { MANY = GPU_BATCH + 5 };
    cnx_image many[MANY];
    float *many_ref[MANY];
    uint8_t dummy[3] = {0};
    for (int i = 0; i < MANY; i++) {
        many[i] = decoded[i % 8];
        many_ref[i] = decoded_ref[i % 8];
    }
    many[6] = (cnx_image){0, 10, dummy}; /* bad: no width */
    images_run(many, many_ref, MANY, 6);
    images_null_pixels(&decoded[3]);
    images_fault(many, many_ref, MANY);

    /* Images over the pinned buffer's initial 640x480x3 per image. */
    cnx_image large_images[5] = {make_pattern(2000, 1500, 3), decoded[3], make_pattern(1500, 2000, 4),
                                 decoded[6], make_pattern(1999, 1501, 5)};
    float *large_ref[5];
    for (int i = 0; i < 5; i++)
        large_ref[i] = reference(&large_images[i]);
    images_run(large_images, large_ref, 5, -1);

    pixels_run(decoded, decoded_ref, 8);
    second_device(&set, decoded, 8);
    plans_per_batch(&set);

    for (int i = 0; i < 5; i += 2)
        cnx_image_free(&large_images[i]);
    for (int i = 0; i < 5; i++)
        free(large_ref[i]);
    for (int i = 0; i < 8; i++) {
        cnx_image_free(&decoded[i]);
        free(decoded_ref[i]);
    }
    for (size_t i = 0; i < set.n; i++)
        free(set.ref[i]);
    cnx_engine_destroy(gpu);
    cnx_engine_destroy(cpu);
    long left[5];
    live(left);
    CHECK(left[0] == 0 && left[1] == 0 && left[2] == 0 && left[3] == 0 && left[4] == 0,
          "left in the emulated runtime: %ld device allocations, %ld pinned, %ld streams, %ld "
          "events, %ld graphs", left[0], left[1], left[2], left[3], left[4]);
    unlink(empty);
    unlink(truncated);
    unlink(text);
    unlink(big);
    if (argc <= 2)
        rmdir(dir);
    emu_report();
    printf("total %.1f s\n", now() - start);
    return test_summary();
}
