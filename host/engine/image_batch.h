/* Internal: one batch of decoded images on its way into the model, and its
 * results on the way out.
 *
 * Images are put in by index, from any number of threads (each index by
 * one). For the GPU each image's RGB8 pixels are copied into one page-locked
 * buffer (packed back to back, cnx_image_desc per image) that is uploaded
 * as it is; for the CPU each image is preprocessed at once into its model
 * input. Closing the batch gives every good image a row (its place in the
 * model's batch, in index order) and packs the inputs by row; the outputs
 * come back by row. A failed image has no row, and its status and message. */
#ifndef CNX_HOST_IMAGE_BATCH_H
#define CNX_HOST_IMAGE_BATCH_H

#include <pthread.h>
#include <stdint.h>

#include "cnx.h"

struct cuda_upload;

enum { IMAGE_BATCH_ERROR_SIZE = 512 };

typedef struct image_batch {
    int capacity;   /* images at most */
    int for_device;  /* RGB8 packed for the GPU, else model inputs for the CPU */
    int cuda_device; /* the GPU's ordinal, or -1 */
    cnx_preprocess params;
    int classes, max_k;

    int count;                                /* images in this batch */
    cnx_status *status;                       /* [capacity] */
    char (*error)[IMAGE_BATCH_ERROR_SIZE];    /* [capacity], "" when fine */
    char (*name)[256];                        /* [capacity], for messages */
    int *row;                                 /* [capacity], -1 once failed */
    int rows;                                 /* good images, after close */
    int padded_rows; /* for the GPU: count, or 0 without a good image (see close) */

    /* For the GPU (page-locked). */
    uint8_t *pixels;
    uint64_t pixel_capacity, pixel_used;
    cnx_image_desc *descs;     /* [capacity] by row after close, by image before */
    cnx_image *waiting;        /* [capacity] images that did not fit in pixels */
    unsigned char *owned;      /* [capacity] waiting[i] is ours to free */
    const uint8_t *device_pixels; /* the caller's pixels, already on the GPU, */
    uint64_t device_pixel_bytes;  /* used instead of `pixels` when not NULL */
    struct cuda_upload *upload;   /* the device copy (engine_images.c) */
    pthread_mutex_t lock;      /* guards pixel_used */

    /* For the CPU: [capacity, 3, crop, crop], by row after close. */
    float *inputs;

    /* Outputs by row (page-locked for the GPU), filled by the engine. */
    cnx_prediction *top; /* [capacity, max_k] */
    float *logits;       /* [capacity, classes] */
    int k, want_logits;  /* what the engine was asked for */
} image_batch;

/* params must already be valid (cnx_preprocess_image would accept them).
 * max_k: the most predictions per image that will be asked for.
 * cuda_device: the ordinal of the GPU the batch is for, or -1 (the CPU). */
cnx_status image_batch_init(image_batch *batch, int capacity, int cuda_device,
                            const cnx_preprocess *params, int classes, int max_k);
void image_batch_free(image_batch *batch);

/* Empties the batch for count images (count <= capacity), all pending. */
void image_batch_reset(image_batch *batch, int count);

/* Puts image `index` in; name is how messages refer to it. With
 * take_ownership the batch frees *image (at once, or at close); without,
 * the caller's image must stay valid until close. Thread-safe for distinct
 * indexes. */
void image_batch_put(image_batch *batch, int index, cnx_image *image, int take_ownership,
                     const char *name);

/* Only the name, for an image the caller places itself (device pixels). */
void image_batch_set_name(image_batch *batch, int index, const char *name);

/* Marks image `index` as failed with a one-line message. */
void image_batch_fail(image_batch *batch, int index, cnx_status status, const char *message);

/* After every index was put or failed: places the images that waited,
 * numbers the rows and packs the inputs by row. An image that cannot be
 * placed (no memory) fails alone. */
void image_batch_close(image_batch *batch);

/* Image `index`'s results: k predictions, classes logits; NULL when it
 * failed or they were not asked for. */
const cnx_prediction *image_batch_top(const image_batch *batch, int index);
const float *image_batch_logits(const image_batch *batch, int index);

#endif
