/* One batch of decoded images and its results (see image_batch.h). */
#include "image_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "cuda_upload.h"
#include "host_memory.h"
#ifdef CNX_HAVE_CUDA
#include "preprocess.cuh"
#endif

/* What a batch of the GPU starts with per image (a 300x280 image fits): small,
 * because it is page-locked memory times the batch times the ring. The buffer
 * grows (once, in practice) to what the images need. */
#define INITIAL_PIXEL_BYTES_PER_IMAGE ((uint64_t)256 << 10)

static size_t input_floats(const image_batch *b) {
    return (size_t)3 * b->params.crop * b->params.crop;
}

void image_batch_free(image_batch *b) {
    if (b->capacity == 0) /* never initialized, or freed */
        return;
#ifdef CNX_HAVE_CUDA
    cuda_upload_destroy(b->upload);
#endif
    image_batch_reset(b, 0); /* frees the images that waited */
    host_memory_free(b->pixels, b->cuda_device);
    host_memory_free(b->descs, b->cuda_device);
    host_memory_free(b->top, b->cuda_device);
    host_memory_free(b->logits, b->cuda_device);
    free(b->inputs);
    free(b->waiting);
    free(b->owned);
    free(b->row);
    free(b->name);
    free(b->error);
    free(b->status);
    pthread_mutex_destroy(&b->lock);
    memset(b, 0, sizeof *b);
}

cnx_status image_batch_init(image_batch *b, int capacity, int cuda_device,
                            const cnx_preprocess *params, int classes, int max_k) {
    memset(b, 0, sizeof *b);
    b->capacity = capacity;
    b->for_device = cuda_device >= 0;
    b->cuda_device = cuda_device;
    b->params = *params;
    b->classes = classes;
    b->max_k = max_k;
    pthread_mutex_init(&b->lock, NULL);
    const size_t n = (size_t)capacity;
    b->status = calloc(n, sizeof *b->status);
    b->error = calloc(n, sizeof *b->error);
    b->row = calloc(n, sizeof *b->row);
    b->name = calloc(n, sizeof *b->name);
    int ok = b->status && b->error && b->row && b->name;
    b->top = host_memory_alloc(n * (max_k > 0 ? max_k : 1) * sizeof *b->top, cuda_device);
    b->logits = host_memory_alloc(n * classes * sizeof *b->logits, cuda_device);
    ok = ok && b->top && b->logits;
    if (b->for_device) {
        b->pixel_capacity = n * INITIAL_PIXEL_BYTES_PER_IMAGE;
        b->pixels = host_memory_alloc(b->pixel_capacity, cuda_device);
        b->descs = host_memory_alloc(n * sizeof *b->descs, cuda_device);
        b->waiting = calloc(n, sizeof *b->waiting);
        b->owned = calloc(n, sizeof *b->owned);
        ok = ok && b->pixels && b->descs && b->waiting && b->owned;
    } else {
        b->inputs = malloc(n * input_floats(b) * sizeof *b->inputs);
        ok = ok && b->inputs;
    }
    if (!ok) {
        image_batch_free(b);
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of %smemory for a batch of %d images",
                        b->for_device ? "page-locked " : "", capacity);
    }
    return CNX_OK;
}

void image_batch_reset(image_batch *b, int count) {
    b->count = count;
    b->rows = 0;
    b->pixel_used = 0;
    b->k = b->want_logits = 0;
    b->device_pixels = NULL;
    b->device_pixel_bytes = 0;
    for (int i = 0; b->waiting && b->owned && i < b->capacity; i++) { /* left by a batch never closed */
        if (b->owned[i])
            cnx_image_free(&b->waiting[i]);
        memset(&b->waiting[i], 0, sizeof b->waiting[i]);
    }
    for (int i = 0; i < count; i++) {
        b->status[i] = CNX_OK;
        b->error[i][0] = '\0';
        b->name[i][0] = '\0';
        b->row[i] = -1;
    }
}

void image_batch_set_name(image_batch *b, int index, const char *name) {
    snprintf(b->name[index], sizeof b->name[index], "%s", name);
}

void image_batch_fail(image_batch *b, int index, cnx_status status, const char *message) {
    b->status[index] = status;
    snprintf(b->error[index], IMAGE_BATCH_ERROR_SIZE, "%s", message);
}

/* The pixels of an image placed at offset, and its descriptor. */
static void place(image_batch *b, int index, const cnx_image *image, uint64_t offset) {
    memcpy(b->pixels + offset, image->rgb, (size_t)image->width * image->height * 3);
    b->descs[index] = (cnx_image_desc){offset, image->width, image->height};
}

/* Frees the image when it is ours. */
static void done_with(cnx_image *image, int owned) {
    if (owned)
        cnx_image_free(image);
}

static void put_for_device(image_batch *b, int index, cnx_image *image, int owned) {
    if (!image->rgb || image->width <= 0 || image->height <= 0) {
        char message[IMAGE_BATCH_ERROR_SIZE];
        snprintf(message, sizeof message, "%.200s: no pixels, or a bad size %dx%d", b->name[index],
                 image->width, image->height);
        image_batch_fail(b, index, CNX_ERROR_INVALID_ARGUMENT, message);
        done_with(image, owned);
        return;
    }
#ifdef CNX_HAVE_CUDA
    /* What the kernel cannot do fails here, with the reason. */
    const cnx_status status = cnx_preprocess_check_image(image->width, image->height, &b->params);
    if (status != CNX_OK) {
        char message[IMAGE_BATCH_ERROR_SIZE];
        snprintf(message, sizeof message, "%.200s: %.300s", b->name[index], cnx_last_error());
        image_batch_fail(b, index, status, message);
        done_with(image, owned);
        return;
    }
#endif
    const uint64_t bytes = (uint64_t)image->width * image->height * 3;
    pthread_mutex_lock(&b->lock);
    const uint64_t offset = b->pixel_used;
    const int fits = bytes <= b->pixel_capacity - offset;
    if (fits)
        b->pixel_used += bytes;
    pthread_mutex_unlock(&b->lock);
    if (!fits) { /* placed at close, once the buffer has grown */
        b->waiting[index] = *image;
        b->owned[index] = (unsigned char)owned;
        if (owned)
            memset(image, 0, sizeof *image);
        return;
    }
    place(b, index, image, offset); /* outside the lock: the copy is the slow part */
    done_with(image, owned);
}

void image_batch_put(image_batch *b, int index, cnx_image *image, int take_ownership,
                     const char *name) {
    image_batch_set_name(b, index, name);
    if (b->for_device) {
        put_for_device(b, index, image, take_ownership);
        return;
    }
    float *input = b->inputs + (size_t)index * input_floats(b);
    const cnx_status status = cnx_preprocess_image(image, &b->params, input);
    if (status != CNX_OK) {
        char message[IMAGE_BATCH_ERROR_SIZE];
        snprintf(message, sizeof message, "%.200s: %.300s", name, cnx_last_error());
        image_batch_fail(b, index, status, message);
    }
    done_with(image, take_ownership);
}

/* Grows the pixel buffer to hold `more` bytes beyond what it holds. */
static int grow_pixels(image_batch *b, uint64_t more) {
    uint64_t capacity = b->pixel_capacity * 2;
    if (capacity < b->pixel_used + more)
        capacity = b->pixel_used + more;
    uint8_t *grown = host_memory_alloc(capacity, b->cuda_device);
    if (!grown)
        return -1;
    memcpy(grown, b->pixels, b->pixel_used);
    host_memory_free(b->pixels, b->cuda_device);
    b->pixels = grown;
    b->pixel_capacity = capacity;
    return 0;
}

static void place_waiting(image_batch *b) {
    uint64_t more = 0;
    for (int i = 0; i < b->count; i++)
        more += (uint64_t)b->waiting[i].width * b->waiting[i].height * 3;
    if (more == 0)
        return;
    const int grown = more <= b->pixel_capacity - b->pixel_used || grow_pixels(b, more) == 0;
    for (int i = 0; i < b->count; i++) {
        cnx_image *image = &b->waiting[i];
        if (!image->rgb)
            continue;
        if (grown) {
            place(b, i, image, b->pixel_used);
            b->pixel_used += (uint64_t)image->width * image->height * 3;
        } else {
            char message[IMAGE_BATCH_ERROR_SIZE];
            snprintf(message, sizeof message, "%.300s: out of page-locked memory for %.1f MB of pixels",
                     b->name[i], more / 1e6);
            image_batch_fail(b, i, CNX_ERROR_OUT_OF_MEMORY, message);
        }
        done_with(image, b->owned[i]);
        memset(image, 0, sizeof *image);
    }
}

void image_batch_close(image_batch *b) {
    if (b->for_device)
        place_waiting(b);
    const size_t floats = input_floats(b);
    b->rows = 0;
    for (int i = 0; i < b->count; i++) {
        if (b->status[i] != CNX_OK)
            continue;
        /* Rows never pass their images (rows <= i), so packing in place is safe. */
        const int row = b->rows++;
        b->row[i] = row;
        if (row == i)
            continue;
        if (b->for_device)
            b->descs[row] = b->descs[i];
        else
            memcpy(b->inputs + (size_t)row * floats, b->inputs + (size_t)i * floats,
                   floats * sizeof *b->inputs);
    }
    /* The GPU runs every batch of `count` images with one plan (and one CUDA
     * graph), however many of them failed: a plan per row count would be
     * built and captured anew whenever bad files change it. The failed
     * images' rows repeat row 0, and nobody reads their results. */
    b->padded_rows = 0;
    if (b->for_device && b->rows > 0) {
        for (int row = b->rows; row < b->count; row++)
            b->descs[row] = b->descs[0];
        b->padded_rows = b->count;
    }
}

const cnx_prediction *image_batch_top(const image_batch *b, int index) {
    const int row = b->row[index];
    return row >= 0 && b->k > 0 ? b->top + (size_t)row * b->k : NULL;
}

const float *image_batch_logits(const image_batch *b, int index) {
    const int row = b->row[index];
    return row >= 0 && b->want_logits ? b->logits + (size_t)row * b->classes : NULL;
}
