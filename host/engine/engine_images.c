/* The engine on batches of decoded images: image batches run on the CPU or
 * the GPU (engine_batch_start/finish), and the two public entry points that
 * classify host images and pixels already on the GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_upload.h"
#include "engine_internal.h"
#include "error.h"
#include "preprocess.h"
#ifdef CNX_HAVE_CUDA
#include "preprocess.cuh"
#endif

/* The kernel's limit on images per launch (kernels/preprocess.cuh). */
enum { MAX_IMAGES_PER_LAUNCH = 65535 };

int engine_image_batch_limit(const cnx_engine *engine, int crop) {
    int limit = engine->options.max_batch;
#ifdef CNX_HAVE_CUDA
    if (engine->cuda)
        limit = cuda_backend_capacity(engine->cuda, crop, crop);
#else
    (void)crop;
#endif
    return limit < MAX_IMAGES_PER_LAUNCH ? limit : MAX_IMAGES_PER_LAUNCH;
}

/* ------------------------------------------------------- running a batch */

/* Every good image of the batch fails with the same message. */
static void fail_rows(image_batch *batch, cnx_status status, const char *cause) {
    for (int i = 0; i < batch->count; i++) {
        if (batch->row[i] < 0)
            continue;
        char message[IMAGE_BATCH_ERROR_SIZE];
        snprintf(message, sizeof message, "%.200s: %.300s", batch->name[i], cause);
        image_batch_fail(batch, i, status, message);
        batch->row[i] = -1;
    }
}

/* The CPU: one forward for the batch, then top-k on the host. */
static cnx_status run_on_cpu(cnx_engine *engine, image_batch *batch) {
    const int crop = batch->params.crop, classes = batch->classes;
    const cnx_status status =
        cnx_engine_forward(engine, batch->inputs, batch->rows, crop, crop, batch->logits);
    if (status != CNX_OK) {
        fail_rows(batch, status, cnx_last_error());
        return status;
    }
    for (int row = 0; batch->k > 0 && row < batch->rows; row++) {
        cnx_prediction *top = batch->top + (size_t)row * batch->k;
        if (cnx_top_k(batch->logits + (size_t)row * classes, classes, batch->k, top) != CNX_OK)
            top[0].class_index = -1; /* non-finite: engine_batch_finish says so */
    }
    return CNX_OK;
}

#ifdef CNX_HAVE_CUDA
/* The GPU: upload (unless the pixels are there), preprocess, forward and
 * top-k, all queued; engine_batch_finish waits. */
static cnx_status queue_on_gpu(cnx_engine *engine, image_batch *batch) {
    void *stream = cuda_backend_stream(engine->cuda);
    if (!batch->upload)
        CNX_TRY(cuda_upload_create(engine->options.cuda_device, &batch->upload));
    const int own_pixels = batch->device_pixels == NULL;
    CNX_TRY(cuda_upload_batch(batch->upload, own_pixels ? batch->pixels : NULL,
                              own_pixels ? batch->pixel_used : 0, batch->descs, batch->padded_rows,
                              stream));
    const cnx_status status = cuda_backend_enqueue_pixels(
        engine->cuda, own_pixels ? cuda_upload_pixels(batch->upload) : batch->device_pixels,
        own_pixels ? batch->pixel_used : batch->device_pixel_bytes, cuda_upload_descs(batch->upload),
        batch->padded_rows, &batch->params, batch->k, batch->k > 0 ? batch->top : NULL,
        batch->want_logits ? batch->logits : NULL);
    /* Even when queuing failed half-way: what was queued may read the
     * upload's buffers, and the next upload must wait for it. */
    const cnx_status marked = cuda_upload_mark_done(batch->upload, stream);
    return status != CNX_OK ? status : marked;
}
#endif

cnx_status engine_batch_start(cnx_engine *engine, image_batch *batch, int k, int want_logits) {
    batch->k = k;
    batch->want_logits = want_logits || engine->cpu; /* the CPU ranks from the logits */
    if (batch->rows == 0)
        return CNX_OK;
#ifdef CNX_HAVE_CUDA
    if (engine->cuda) {
        const cnx_status status = queue_on_gpu(engine, batch);
        if (status != CNX_OK)
            fail_rows(batch, status, cnx_last_error());
        return status;
    }
#endif
    return run_on_cpu(engine, batch);
}

static int all_finite(const float *values, int count) {
    int finite = 1;
    for (int i = 0; i < count; i++)
        finite &= isfinite(values[i]) != 0;
    return finite;
}

cnx_status engine_batch_finish(cnx_engine *engine, image_batch *batch) {
#ifdef CNX_HAVE_CUDA
    if (engine->cuda && batch->upload && batch->rows > 0) {
        const cnx_status status = cuda_upload_wait_done(batch->upload);
        if (status != CNX_OK) {
            fail_rows(batch, status, cnx_last_error());
            return status;
        }
    }
#else
    (void)engine;
#endif
    for (int i = 0; i < batch->count; i++) {
        const int row = batch->row[i];
        if (row < 0)
            continue;
        const int finite = batch->k > 0 ? batch->top[(size_t)row * batch->k].class_index >= 0
                                        : all_finite(batch->logits + (size_t)row * batch->classes,
                                                     batch->classes);
        if (!finite) {
            char message[IMAGE_BATCH_ERROR_SIZE];
            snprintf(message, sizeof message,
                     "%.300s: the model's output is not finite (NaN or infinity)", batch->name[i]);
            image_batch_fail(batch, i, CNX_ERROR_INVALID_ARGUMENT, message);
            batch->row[i] = -1;
        }
    }
    return CNX_OK;
}

/* ------------------------------------------------------ the entry points */

/* Puts images first..first+count-1 of the caller's into the batch. */
typedef void (*fill_fn)(image_batch *batch, int first, const void *source);

typedef struct {
    cnx_engine *engine;
    const cnx_preprocess *params;
    int n, k;
    cnx_prediction *top;
    float *logits;
    cnx_status *image_status;
} batch_call;

/* The batch of the entry points, large enough for `capacity` images of these params. */
static cnx_status reserve_batch(cnx_engine *engine, int capacity, const cnx_preprocess *params,
                                int k, image_batch **out) {
    image_batch *batch = &engine->images;
    const int cuda_device = engine->cuda ? engine->options.cuda_device : -1;
    if (batch->capacity < capacity || batch->params.crop != params->crop ||
        batch->max_k < k) {
        image_batch_free(batch);
        CNX_TRY(image_batch_init(batch, capacity, cuda_device, params, engine->weights.num_classes,
                                 k > 5 ? k : 5));
    }
    batch->params = *params;
    *out = batch;
    return CNX_OK;
}

/* The first failed image of a call, for the call's status and message. */
typedef struct {
    cnx_status status;
    char message[IMAGE_BATCH_ERROR_SIZE];
} first_failure;

/* Copies the batch's results to the caller's outputs, image by image. */
static void hand_out(const batch_call *call, const image_batch *batch, int first,
                     first_failure *failure) {
    const int classes = batch->classes;
    for (int i = 0; i < batch->count; i++) {
        const size_t image = (size_t)first + i;
        const cnx_prediction *top = image_batch_top(batch, i);
        const float *logits = image_batch_logits(batch, i);
        if (call->top) {
            for (int j = 0; j < call->k; j++)
                call->top[image * call->k + j] =
                    top ? top[j] : (cnx_prediction){-1, 0.0f, NAN};
        }
        if (call->logits) {
            for (int c = 0; c < classes; c++)
                call->logits[image * classes + c] = logits ? logits[c] : NAN;
        }
        if (call->image_status)
            call->image_status[image] = batch->status[i];
        if (batch->status[i] != CNX_OK && failure->status == CNX_OK) {
            failure->status = batch->status[i];
            snprintf(failure->message, sizeof failure->message, "%s", batch->error[i]);
        }
    }
}

/* Images from `first` on never ran: class -1, NaN logits, and the status. */
static void mark_not_run(const batch_call *call, int first, cnx_status status) {
    const int classes = call->engine->weights.num_classes;
    for (size_t image = (size_t)first; image < (size_t)call->n; image++) {
        for (int j = 0; call->top && j < call->k; j++)
            call->top[image * call->k + j] = (cnx_prediction){-1, 0.0f, NAN};
        for (int c = 0; call->logits && c < classes; c++)
            call->logits[image * classes + c] = NAN;
        if (call->image_status)
            call->image_status[image] = status;
    }
}

/* Checks the call, then runs it in batches the engine takes. */
static cnx_status run_batches(batch_call *call, const char *what, fill_fn fill, const void *source) {
    cnx_engine *engine = call->engine;
    if (call->n < 0 || (!call->top && !call->logits))
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "%s: negative count, or no output", what);
    if (call->top)
        CNX_TRY(engine_check_k(engine, call->k));
    else
        call->k = 0;
    const cnx_preprocess *params = call->params ? call->params : &engine->weights.preprocess;
    CNX_TRY(preprocess_check_params(params));
    const int limit = engine_image_batch_limit(engine, params->crop);
    if (limit < 1)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "%s: crop %d is larger than the engine was planned for; create it with a "
                        "larger input_size", what, params->crop);
    image_batch *batch = NULL;
    CNX_TRY(reserve_batch(engine, call->n < limit ? (call->n > 0 ? call->n : 1) : limit, params,
                          call->k, &batch));
    first_failure failure = {CNX_OK, ""};
    for (int first = 0; first < call->n; first += batch->count) {
        image_batch_reset(batch, call->n - first < batch->capacity ? call->n - first : batch->capacity);
        fill(batch, first, source);
        image_batch_close(batch);
        cnx_status status = engine_batch_start(engine, batch, call->k, call->logits != NULL);
        if (status == CNX_OK)
            status = engine_batch_finish(engine, batch);
        if (status != CNX_OK) { /* the device failed: nothing more runs, every image says so */
            char cause[IMAGE_BATCH_ERROR_SIZE];
            snprintf(cause, sizeof cause, "%s", cnx_last_error());
            hand_out(call, batch, first, &failure);
            mark_not_run(call, first + batch->count, status);
            return cnx_fail(status, "%s", cause);
        }
        hand_out(call, batch, first, &failure);
    }
    /* Set last: later batches' checks may have overwritten the message. */
    return failure.status == CNX_OK ? CNX_OK : cnx_fail(failure.status, "%s", failure.message);
}

static void fill_from_images(image_batch *batch, int first, const void *source) {
    const cnx_image *images = source;
    for (int i = 0; i < batch->count; i++) {
        char name[32];
        snprintf(name, sizeof name, "image %d", first + i);
        cnx_image image = images[first + i];
        image_batch_put(batch, i, &image, 0, name);
    }
}

cnx_status cnx_engine_classify_images(cnx_engine *engine, const cnx_image *images, int n,
                                      const cnx_preprocess *params, int k, cnx_prediction *top,
                                      float *logits, cnx_status *image_status) {
    if (!engine || (!images && n > 0))
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "classify_images: NULL engine or images");
    batch_call call = {engine, params, n, k, top, logits, image_status};
    return run_batches(&call, "classify_images", fill_from_images, images);
}

#ifdef CNX_HAVE_CUDA
typedef struct {
    const uint8_t *pixels;
    uint64_t pixel_bytes;
    const cnx_image_desc *descs;
} device_pixels;

/* Descriptors only: the pixels stay where the caller put them. What the
 * kernel would refuse (or read out of bounds) fails here, by name. */
static void fill_from_descs(image_batch *batch, int first, const void *source) {
    const device_pixels *d = source;
    batch->device_pixels = d->pixels;
    batch->device_pixel_bytes = d->pixel_bytes;
    for (int i = 0; i < batch->count; i++) {
        const cnx_image_desc desc = d->descs[first + i];
        char name[32], message[IMAGE_BATCH_ERROR_SIZE];
        snprintf(name, sizeof name, "image %d", first + i);
        image_batch_set_name(batch, i, name);
        cnx_status status = cnx_preprocess_check_image(desc.width, desc.height, &batch->params);
        if (status == CNX_OK &&
            (desc.offset > d->pixel_bytes ||
             (uint64_t)desc.width * desc.height * 3 > d->pixel_bytes - desc.offset))
            status = cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                              "its %dx%d pixels at byte %llu end past the %llu bytes given",
                              desc.width, desc.height, (unsigned long long)desc.offset,
                              (unsigned long long)d->pixel_bytes);
        if (status != CNX_OK) {
            snprintf(message, sizeof message, "%s: %.400s", name, cnx_last_error());
            image_batch_fail(batch, i, status, message);
        }
        batch->descs[i] = desc;
    }
}
#endif

cnx_status cnx_engine_classify_pixels_device(cnx_engine *engine, const uint8_t *pixels,
                                             uint64_t pixel_bytes, const cnx_image_desc *descs,
                                             int n, const cnx_preprocess *params, int k,
                                             cnx_prediction *top, float *logits,
                                             cnx_status *image_status) {
    if (!engine || (n > 0 && (!pixels || !descs)))
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "classify_pixels_device: NULL engine, pixels or descs");
#ifdef CNX_HAVE_CUDA
    if (engine->cuda) {
        batch_call call = {engine, params, n, k, top, logits, image_status};
        const device_pixels source = {pixels, pixel_bytes, descs};
        return run_batches(&call, "classify_pixels_device", fill_from_descs, &source);
    }
#else
    (void)pixels;
    (void)descs;
    (void)n;
    (void)pixel_bytes;
    (void)params;
    (void)k;
    (void)top;
    (void)logits;
    (void)image_status;
#endif
    return cnx_fail(CNX_ERROR_UNSUPPORTED,
                    "classify_pixels_device: the engine runs on the CPU; device pixels need CUDA");
}
