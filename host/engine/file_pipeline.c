/* cnx_engine_classify_files: many image files through the engine, with
 * decoding, upload and compute overlapped.
 *
 * Files are cut into batches in input order (batch b holds files
 * b*size .. b*size+size-1). A ring of RING image batches carries them: decode
 * threads take files in order and put each into the ring slot of its batch,
 * waiting when that slot still holds an older batch. The calling thread (the
 * driver) takes the batches in order: it starts batch b on the engine
 * (queued on the GPU), then finishes batch b-1, hands its results to the
 * caller and gives its slot to batch b-1+RING. So the GPU runs batch b-1
 * while b uploads and b+1 decodes, and memory stays at RING batches. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine_internal.h"
#include "error.h"
#include "preprocess.h"

enum { RING = 3, MAX_DECODE_THREADS = 256 };

typedef struct {
    image_batch batch;
    size_t number; /* the batch of the run it holds; SIZE_MAX: none */
    int decoded;   /* of its images, how many are in */
} ring_slot;

typedef struct {
    cnx_engine *engine;
    const char *const *paths;
    size_t n;
    cnx_files_options options;
    int batch_size;
    size_t batches;

    ring_slot ring[RING];
    pthread_mutex_t lock;
    pthread_cond_t slot_opened;   /* a slot took a new batch, or stop */
    pthread_cond_t batch_decoded; /* a batch's last image is in */
    size_t next_file;             /* the next file a decode thread takes */
    int stop;
    double decode_seconds;
    uint64_t pixel_bytes;
} pipeline;

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

cnx_files_options cnx_default_files_options(void) {
    cnx_files_options options;
    memset(&options, 0, sizeof options);
    options.k = 5;
    return options;
}

static int images_in_batch(const pipeline *p, size_t number) {
    const size_t first = number * (size_t)p->batch_size;
    return p->n - first < (size_t)p->batch_size ? (int)(p->n - first) : p->batch_size;
}

/* ---------------------------------------------------------- decoding */

static void decode_one(pipeline *p, ring_slot *slot, size_t file) {
    image_batch *batch = &slot->batch;
    const int index = (int)(file % (size_t)p->batch_size);
    cnx_image image;
    const cnx_status status = cnx_image_decode_file(p->paths[file], p->options.max_pixels, &image);
    uint64_t bytes = 0;
    if (status == CNX_OK) {
        bytes = (uint64_t)image.width * image.height * 3;
        image_batch_put(batch, index, &image, 1, p->paths[file]);
    } else {
        image_batch_fail(batch, index, status, cnx_last_error()); /* names the file */
    }
    pthread_mutex_lock(&p->lock);
    p->pixel_bytes += bytes;
    if (++slot->decoded == batch->count)
        pthread_cond_broadcast(&p->batch_decoded);
    pthread_mutex_unlock(&p->lock);
}

static void *decode_thread(void *arg) {
    pipeline *p = arg;
    double busy = 0.0;
    pthread_mutex_lock(&p->lock);
    while (!p->stop && p->next_file < p->n) {
        const size_t file = p->next_file++;
        const size_t number = file / (size_t)p->batch_size;
        ring_slot *slot = &p->ring[number % RING];
        while (slot->number != number && !p->stop)
            pthread_cond_wait(&p->slot_opened, &p->lock);
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->lock);
        const double start = now_seconds();
        decode_one(p, slot, file);
        busy += now_seconds() - start;
        pthread_mutex_lock(&p->lock);
    }
    p->decode_seconds += busy;
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ------------------------------------------------------------ driving */

/* Gives slot number % RING to batch `number` and wakes the decoders. */
static void open_slot(pipeline *p, size_t number) {
    ring_slot *slot = &p->ring[number % RING];
    pthread_mutex_lock(&p->lock);
    slot->number = number;
    slot->decoded = 0;
    image_batch_reset(&slot->batch, images_in_batch(p, number));
    pthread_cond_broadcast(&p->slot_opened);
    pthread_mutex_unlock(&p->lock);
}

static void stop_decoding(pipeline *p) {
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->slot_opened);
    pthread_mutex_unlock(&p->lock);
}

typedef struct {
    cnx_file_result_fn on_result;
    void *user;
    size_t delivered; /* files handed to the caller so far */
    int stopped;      /* the caller asked to stop */
    cnx_files_stats *stats;
    char failure[IMAGE_BATCH_ERROR_SIZE]; /* what stopped the run */
} delivery;

/* Hands one file's result over, unless the caller has asked to stop. */
static void hand_over(delivery *d, const pipeline *p, cnx_status status, const char *error,
                      const cnx_prediction *top, const float *logits) {
    if (d->stopped)
        return;
    const cnx_file_result result = {d->delivered, p->paths[d->delivered], status,
                                    status == CNX_OK ? "" : error, status == CNX_OK ? top : NULL,
                                    status == CNX_OK && p->options.want_logits ? logits : NULL};
    d->delivered++;
    d->stats->failed += status != CNX_OK;
    d->stopped = d->on_result(d->user, &result) != 0;
}

/* Waits for batch `number` to be decoded and starts it on the engine. */
static cnx_status start_batch(pipeline *p, size_t number, cnx_files_stats *stats) {
    ring_slot *slot = &p->ring[number % RING];
    const double start = now_seconds();
    pthread_mutex_lock(&p->lock);
    while (slot->decoded < slot->batch.count)
        pthread_cond_wait(&p->batch_decoded, &p->lock);
    pthread_mutex_unlock(&p->lock);
    stats->wait_decode += now_seconds() - start;
    image_batch_close(&slot->batch);
    stats->batches++;
    return engine_batch_start(p->engine, &slot->batch, p->options.k, p->options.want_logits);
}

/* Waits for batch `number`'s results and hands them over. */
static cnx_status finish_batch(pipeline *p, size_t number, delivery *d) {
    const image_batch *batch = &p->ring[number % RING].batch;
    const double start = now_seconds();
    const cnx_status status = engine_batch_finish(p->engine, &p->ring[number % RING].batch);
    d->stats->wait_device += now_seconds() - start;
    if (status != CNX_OK && !d->failure[0]) /* before the callbacks can overwrite it */
        snprintf(d->failure, sizeof d->failure, "%s", cnx_last_error());
    for (int i = 0; i < batch->count; i++)
        hand_over(d, p, batch->status[i], batch->error[i], image_batch_top(batch, i),
                  image_batch_logits(batch, i));
    return status;
}

/* The driver loop: batch b+1 is started before batch b is finished, so
 * that the device always has the next batch queued. Returns what stopped
 * it (a failed batch fails its own images first), or CNX_OK. */
static cnx_status drive(pipeline *p, delivery *d) {
    cnx_status status = CNX_OK;
    size_t started = 0;
    for (size_t finished = 0; finished < p->batches && !d->stopped; finished++) {
        while (status == CNX_OK && started < p->batches && started <= finished + 1) {
            status = start_batch(p, started++, d->stats);
            if (status != CNX_OK && !d->failure[0])
                snprintf(d->failure, sizeof d->failure, "%s", cnx_last_error());
        }
        if (finished >= started)
            break; /* never started: the run failed before it */
        const cnx_status finish_status = finish_batch(p, finished, d);
        if (status == CNX_OK)
            status = finish_status;
        if (status == CNX_OK && finished + RING < p->batches)
            open_slot(p, finished + RING); /* the slot this batch leaves */
    }
    return status;
}

/* The files the run never reached get its error, so every file is reported. */
static void hand_over_the_rest(delivery *d, const pipeline *p, cnx_status status) {
    while (d->delivered < p->n && !d->stopped) {
        char message[2 * IMAGE_BATCH_ERROR_SIZE];
        snprintf(message, sizeof message, "%.250s: not classified: %.500s", p->paths[d->delivered],
                 d->failure);
        hand_over(d, p, status, message, NULL, NULL);
    }
    cnx_fail(status, "%s", d->failure);
}

static cnx_status check_options(const cnx_engine *engine, const cnx_files_options *o,
                                const char *const *paths, size_t n, cnx_file_result_fn on_result) {
    if (!engine || (!paths && n > 0) || !on_result)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "classify_files: NULL engine, paths or callback");
    if (o->k != 0)
        CNX_TRY(engine_check_k(engine, o->k));
    if (o->k == 0 && !o->want_logits)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "classify_files: k is 0 and no logits are wanted");
    if (o->batch < 0 || o->decode_threads < 0 || o->decode_threads > MAX_DECODE_THREADS)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "classify_files: batch %d or decode_threads %d out of range (threads: 0..%d)",
                        o->batch, o->decode_threads, MAX_DECODE_THREADS);
    for (size_t i = 0; i < n; i++)
        if (!paths[i])
            return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "classify_files: path %zu is NULL", i);
    return preprocess_check_params(o->preprocess ? o->preprocess : &engine->weights.preprocess);
}

static int decode_thread_count(const cnx_files_options *o, size_t n) {
    long threads = o->decode_threads;
    if (threads == 0)
        threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    if ((size_t)threads > n)
        threads = (long)n;
    return threads > MAX_DECODE_THREADS ? MAX_DECODE_THREADS : (int)threads;
}

static cnx_status make_ring(pipeline *p) {
    const cnx_preprocess *params =
        p->options.preprocess ? p->options.preprocess : &p->engine->weights.preprocess;
    const int limit = engine_image_batch_limit(p->engine, params->crop);
    if (limit < 1)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "classify_files: crop %d is larger than the engine was planned for; "
                        "create it with a larger input_size", params->crop);
    p->batch_size = p->options.batch ? p->options.batch : p->engine->options.max_batch;
    if (p->batch_size > limit)
        p->batch_size = limit;
    if ((size_t)p->batch_size > p->n)
        p->batch_size = (int)p->n;
    p->batches = (p->n + p->batch_size - 1) / p->batch_size;
    for (int s = 0; s < RING; s++) {
        p->ring[s].number = SIZE_MAX;
        if ((size_t)s < p->batches)
            CNX_TRY(image_batch_init(&p->ring[s].batch, p->batch_size,
                                     p->engine->cuda ? p->engine->options.cuda_device : -1, params,
                                     p->engine->weights.num_classes, p->options.k));
    }
    return CNX_OK;
}

cnx_status cnx_engine_classify_files(cnx_engine *engine, const char *const *paths, size_t n,
                                     const cnx_files_options *options,
                                     cnx_file_result_fn on_result, void *user,
                                     cnx_files_stats *stats_out) {
    const cnx_files_options defaults = cnx_default_files_options();
    if (!options)
        options = &defaults;
    cnx_files_stats stats;
    memset(&stats, 0, sizeof stats);
    if (stats_out)
        *stats_out = stats;
    CNX_TRY(check_options(engine, options, paths, n, on_result));
    if (n == 0)
        return CNX_OK;

    const double start = now_seconds();
    pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory");
    *p = (pipeline){.engine = engine, .paths = paths, .n = n, .options = *options};
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->slot_opened, NULL);
    pthread_cond_init(&p->batch_decoded, NULL);
    cnx_status status = make_ring(p);

    pthread_t threads[MAX_DECODE_THREADS];
    int running = 0;
    const int wanted = decode_thread_count(options, n);
    for (size_t b = 0; status == CNX_OK && b < RING && b < p->batches; b++)
        open_slot(p, b);
    while (status == CNX_OK && running < wanted &&
           pthread_create(&threads[running], NULL, decode_thread, p) == 0)
        running++;
    if (status == CNX_OK && running == 0)
        status = cnx_fail(CNX_ERROR_INTERNAL, "classify_files: could not start a decode thread");

    delivery d = {on_result, user, 0, 0, &stats, ""};
    if (status == CNX_OK) {
        status = drive(p, &d);
        if (status != CNX_OK)
            hand_over_the_rest(&d, p, status);
        if (d.stopped)
            status = cnx_fail(CNX_ERROR_INTERNAL, "classify_files: stopped by the caller");
    }
    stop_decoding(p);
    for (int t = 0; t < running; t++)
        pthread_join(threads[t], NULL);

    stats.images = d.delivered;
    stats.decode_threads = running;
    stats.batch = p->batch_size;
    stats.decode = p->decode_seconds;
    stats.pixel_bytes = p->pixel_bytes;
    for (int s = 0; s < RING; s++)
        image_batch_free(&p->ring[s].batch);
    pthread_cond_destroy(&p->batch_decoded);
    pthread_cond_destroy(&p->slot_opened);
    pthread_mutex_destroy(&p->lock);
    free(p);
    stats.wall = now_seconds() - start;
    if (stats_out)
        *stats_out = stats;
    return status;
}
