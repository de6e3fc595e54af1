/* The image entry points: cnx_engine_classify_files (the decode-thread
 * pipeline) and cnx_engine_classify_images against decoding, preprocessing
 * and classifying each image by hand; bad files among good ones; input
 * order; batch sizes that do and do not divide the count; the callback
 * stopping the run; and argument errors. On the CPU engine always; then on
 * a CUDA engine when a GPU is usable (upload, the preprocessing kernel, the
 * forward and top-k on the device), where "by hand" is the same engine's
 * cnx_engine_forward on the CPU's preprocessing, and top-k ranks may swap
 * only between classes whose probabilities tie within the tolerance. (The
 * emulated test, emulate_pipeline.c, checks the CUDA side without a GPU.)
 *
 *   test_image_batches IMAGE_DIR [WORK_DIR]     (default WORK_DIR: a new folder in /tmp) */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cnx.h"
#include "device.h"
#include "test_check.h"

enum { MAX_FILES = 64, K = 3, CLASSES = 1000 };
/* fp32 on either device: GEMMs of other shapes round differently. */
#define PROB_TOLERANCE 1e-5f

static const cnx_preprocess params = {.resize = 72, .crop = 64, .mean = {0.485f, 0.456f, 0.406f},
                                      .std = {0.229f, 0.224f, 0.225f}, .normalize = 1};

typedef struct {
    const char *paths[MAX_FILES];
    int good[MAX_FILES];
    size_t count;
} file_list;

/* By hand: decode, preprocess, classify one image. */
static int reference(cnx_engine *engine, const char *path, cnx_prediction *top, float *logits) {
    cnx_image image;
    if (cnx_image_decode_file(path, 0, &image) != CNX_OK)
        return -1;
    float *input = malloc(sizeof(float) * 3 * params.crop * params.crop);
    int ok = input && cnx_preprocess_image(&image, &params, input) == CNX_OK &&
             cnx_engine_forward(engine, input, 1, params.crop, params.crop, logits) == CNX_OK &&
             cnx_top_k(logits, CLASSES, K, top) == CNX_OK;
    free(input);
    cnx_image_free(&image);
    return ok ? 0 : -1;
}

typedef struct {
    const file_list *files;
    cnx_engine *engine;
    size_t calls;
    int stop_after; /* 0: never */
    int want_logits;
} run_check;

static int on_result(void *user, const cnx_file_result *r) {
    run_check *c = user;
    CHECK(r->index == c->calls, "result %zu came in place %zu", r->index, c->calls);
    c->calls++;
    if (r->index >= c->files->count)
        return 1;
    CHECK(r->path == c->files->paths[r->index], "result %zu has the wrong path", r->index);
    if (!c->files->good[r->index]) {
        CHECK(r->status != CNX_OK && strstr(r->error, r->path) && !r->top && !r->logits,
              "%s: a bad file should fail by name, got status %d \"%s\"", r->path, r->status,
              r->error);
    } else {
        cnx_prediction want[K];
        float logits[CLASSES];
        CHECK(reference(c->engine, r->path, want, logits) == 0, "%s: reference failed", r->path);
        CHECK(r->status == CNX_OK && r->top && strcmp(r->error, "") == 0, "%s: failed: %s",
              r->path, r->error);
        if (r->status == CNX_OK) {
            for (int j = 0; j < K; j++) {
                /* A rank may differ only where the reference's neighbours tie. */
                const int tie = (j > 0 && want[j - 1].probability - want[j].probability <= PROB_TOLERANCE) ||
                                (j + 1 < K && want[j].probability - want[j + 1].probability <= PROB_TOLERANCE);
                CHECK((r->top[j].class_index == want[j].class_index || tie) &&
                          fabsf(r->top[j].probability - want[j].probability) <= PROB_TOLERANCE,
                      "%s: rank %d is class %d p=%g, by hand %d p=%g", r->path, j,
                      r->top[j].class_index, r->top[j].probability, want[j].class_index,
                      want[j].probability);
            }
            CHECK(!!r->logits == c->want_logits, "%s: logits %s", r->path,
                  r->logits ? "given though not asked for" : "missing");
            float worst = 0.0f, scale = 0.0f;
            for (int i = 0; r->logits && i < CLASSES; i++) {
                worst = fmaxf(worst, fabsf(r->logits[i] - logits[i]));
                scale = fmaxf(scale, fabsf(logits[i]));
            }
            CHECK(worst <= 1e-4f * fmaxf(scale, 1.0f), "%s: logits differ by %g (max |logit| %g)",
                  r->path, worst, scale);
        }
    }
    return c->stop_after && c->calls == (size_t)c->stop_after;
}

static void write_file(const char *path, const void *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(bytes, 1, size, f);
        fclose(f);
    }
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The shared images, with bad files between them. */
static void list_files(const char *image_dir, const char *work, file_list *files, char *storage) {
    static const char *bad[] = {"empty.png", "text.jpg", "truncated.png", "missing.png"};
    char *next = storage;
    DIR *dir = opendir(image_dir);
    struct dirent *e;
    char *good[MAX_FILES];
    size_t goods = 0;
    while (dir && (e = readdir(dir)) && goods < 16) {
        const char *dot = strrchr(e->d_name, '.');
        if (!dot || (strcmp(dot, ".png") && strcmp(dot, ".jpg") && strcmp(dot, ".jpeg")))
            continue;
        good[goods++] = next;
        next += sprintf(next, "%s/%s", image_dir, e->d_name) + 1;
    }
    if (dir)
        closedir(dir);
    qsort(good, goods, sizeof *good, by_name);
    char path[4096];
    snprintf(path, sizeof path, "%s/empty.png", work);
    write_file(path, "", 0);
    snprintf(path, sizeof path, "%s/text.jpg", work);
    write_file(path, "not an image\n", 13);
    snprintf(path, sizeof path, "%s/truncated.png", work);
    write_file(path, "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
    files->count = 0;
    for (size_t i = 0; i < goods; i++) {
        files->paths[files->count] = good[i];
        files->good[files->count++] = 1;
        if (i < 4) {
            files->paths[files->count] = next;
            next += sprintf(next, "%s/%s", work, bad[i]) + 1;
            files->good[files->count++] = 0;
        }
    }
}

static void run_files(cnx_engine *engine, const file_list *files, int batch, int threads,
                      int want_logits) {
    cnx_files_options o = cnx_default_files_options();
    o.preprocess = &params;
    o.k = K;
    o.batch = batch;
    o.decode_threads = threads;
    o.want_logits = want_logits;
    run_check c = {files, engine, 0, 0, want_logits};
    cnx_files_stats stats;
    cnx_status status = cnx_engine_classify_files(engine, files->paths, files->count, &o, on_result,
                                                  &c, &stats);
    CHECK(status == CNX_OK, "batch %d, %d threads: %s", batch, threads, cnx_last_error());
    CHECK(c.calls == files->count && stats.images == files->count,
          "batch %d: %zu results for %zu files", batch, c.calls, files->count);
    CHECK(stats.failed == 4, "batch %d: %zu failed, want the 4 bad files", batch, stats.failed);
    const int size = batch && batch < 4 ? batch : 4; /* the engine's max_batch caps it */
    CHECK(stats.batch == size && stats.batches == (int)((files->count + size - 1) / size),
          "batch %d: stats say %d batches of %d", batch, stats.batches, stats.batch);
    CHECK(stats.pixel_bytes > 0 && stats.wall > 0 && stats.decode > 0, "batch %d: empty stats", batch);
}

static void check_stop(cnx_engine *engine, const file_list *files) {
    cnx_files_options o = cnx_default_files_options();
    o.preprocess = &params;
    o.k = K;
    o.batch = 2;
    run_check c = {files, engine, 0, 3, 0};
    const cnx_status status =
        cnx_engine_classify_files(engine, files->paths, files->count, &o, on_result, &c, NULL);
    CHECK(status == CNX_ERROR_INTERNAL && strstr(cnx_last_error(), "stopped") && c.calls == 3,
          "stopping after 3: status %d, %zu calls, \"%s\"", status, c.calls, cnx_last_error());
}

static void check_bad_arguments(cnx_engine *engine, const file_list *files) {
    cnx_files_options o = cnx_default_files_options();
    run_check c = {files, engine, 0, 0, 0};
    o.k = CLASSES + 1;
    CHECK(cnx_engine_classify_files(engine, files->paths, 1, &o, on_result, &c, NULL) ==
              CNX_ERROR_INVALID_ARGUMENT, "k over the classes is refused");
    o.k = 0;
    CHECK(cnx_engine_classify_files(engine, files->paths, 1, &o, on_result, &c, NULL) ==
              CNX_ERROR_INVALID_ARGUMENT, "neither top-k nor logits is refused");
    o = cnx_default_files_options();
    cnx_preprocess no_std = params;
    no_std.std[1] = 0.0f;
    o.preprocess = &no_std;
    CHECK(cnx_engine_classify_files(engine, files->paths, 1, &o, on_result, &c, NULL) ==
              CNX_ERROR_INVALID_ARGUMENT && c.calls == 0, "a zero std is refused before any file");
    CHECK(cnx_engine_classify_files(engine, files->paths, 1, NULL, NULL, NULL, NULL) ==
              CNX_ERROR_INVALID_ARGUMENT, "no callback is refused");
    CHECK(cnx_engine_classify_files(engine, NULL, 1, NULL, on_result, &c, NULL) != CNX_OK,
          "NULL paths are refused");
}

/* classify_images: host images, one of them too small to preprocess. */
static void check_images(cnx_engine *engine, const file_list *files) {
    cnx_image images[MAX_FILES];
    int n = 0;
    for (size_t i = 0; i < files->count && n < MAX_FILES - 1; i++)
        if (files->good[i] && cnx_image_decode_file(files->paths[i], 0, &images[n]) == CNX_OK)
            n++;
    uint8_t one_pixel[3] = {1, 2, 3};
    images[n++] = (cnx_image){0, 1, one_pixel}; /* width 0: refused */
    cnx_prediction *top = malloc(sizeof *top * n * K);
    float *logits = malloc(sizeof *logits * n * CLASSES);
    cnx_status status[MAX_FILES];
    const cnx_status result = cnx_engine_classify_images(engine, images, n, &params, K, top, logits,
                                                         status);
    CHECK(result == CNX_ERROR_INVALID_ARGUMENT && strstr(cnx_last_error(), "image "),
          "classify_images returns the bad image's status, got %d \"%s\"", result, cnx_last_error());
    for (int i = 0; i < n - 1; i++) {
        float want_logits[CLASSES];
        float *input = malloc(sizeof(float) * 3 * params.crop * params.crop);
        cnx_prediction want[K];
        cnx_preprocess_image(&images[i], &params, input);
        cnx_engine_forward(engine, input, 1, params.crop, params.crop, want_logits);
        cnx_top_k(want_logits, CLASSES, K, want);
        free(input);
        CHECK(status[i] == CNX_OK &&
                  (top[i * K].class_index == want[0].class_index ||
                   want[0].probability - want[1].probability <= PROB_TOLERANCE) &&
                  fabsf(logits[(size_t)i * CLASSES] - want_logits[0]) <= 1e-4f * fmaxf(fabsf(want_logits[0]), 1.0f),
              "image %d: status %d, class %d (by hand %d)", i, status[i], top[i * K].class_index,
              want[0].class_index);
    }
    CHECK(status[n - 1] != CNX_OK && top[(n - 1) * K].class_index == -1 &&
              isnan(logits[(size_t)(n - 1) * CLASSES]),
          "the bad image gets class -1 and NaN logits");
    for (int i = 0; i < n - 1; i++)
        cnx_image_free(&images[i]);
    free(top);
    free(logits);
}

/* Every check above on one engine. */
static void check_engine(cnx_device device, const file_list *files) {
    cnx_options options = cnx_default_options();
    options.device = device;
    options.input_size = params.crop;
    options.max_batch = 4;
    cnx_engine *engine = NULL;
    CHECK(cnx_engine_create_random("convnext_atto", 3, &options, &engine) == CNX_OK, "engine: %s",
          cnx_last_error());
    if (!engine)
        return;
    cnx_model_info info;
    cnx_engine_info(engine, &info);
    printf("engine: %s\n", info.device_name);
    const int batches[] = {1, 3, 4, 0, 1000};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++)
        run_files(engine, files, batches[b], b % 2 ? 1 : 3, b == 2);
    check_stop(engine, files);
    check_bad_arguments(engine, files);
    check_images(engine, files);
    if (device == CNX_DEVICE_CPU) {
        uint8_t pixels[3] = {0};
        CHECK(cnx_engine_classify_pixels_device(engine, pixels, 3, NULL, 0, &params, K, NULL, NULL,
                                                NULL) == CNX_ERROR_UNSUPPORTED,
              "device pixels on a CPU engine are refused");
    }
    cnx_engine_destroy(engine);
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: test_image_batches IMAGE_DIR [WORK_DIR]\n");
        return 2;
    }
    char work[] = "/tmp/cnx-image-batches-XXXXXX";
    const char *work_dir = argc == 3 ? argv[2] : mkdtemp(work);
    if (!work_dir) {
        perror("mkdtemp");
        return 2;
    }
    static char storage[MAX_FILES * 4096];
    file_list files;
    list_files(argv[1], work_dir, &files, storage);
    CHECK(files.count >= 8, "found %zu files in %s", files.count, argv[1]);

    check_engine(CNX_DEVICE_CPU, &files);
    char name[128], why[256];
    if (cnx_cuda_usable(0, name, sizeof name, why, sizeof why))
        check_engine(CNX_DEVICE_CUDA, &files);
    else
        printf("the CUDA half skipped: %s\n", why);
    return test_summary();
}
