/* Internal: the engine's state, shared by the files that implement the
 * engine API (engine.c: create, forward, classify; engine_images.c: batches
 * of decoded images; file_pipeline.c: many files). */
#ifndef CNX_HOST_ENGINE_INTERNAL_H
#define CNX_HOST_ENGINE_INTERNAL_H

#include "cnx.h"
#include "convnext_weights.h"
#include "cpu_backend.h"
#include "cuda_backend.h"
#include "image_batch.h"

/* The CPU backend's batch: large enough to keep the GEMMs efficient (tens of
 * thousands of rows at 224), small enough to keep activations in the
 * hundreds of megabytes. Larger calls are split. */
enum { CPU_MAX_BATCH = 8 };

struct cnx_engine {
    cnx_convnext_weights weights;
    cnx_options options;
    cnx_device device;
    char device_name[128];
    char fallback_reason[1024]; /* why AUTO runs on the CPU beside a GPU; "" if it does not */
    cpu_backend *cpu;
    cuda_backend *cuda; /* set instead of cpu when the engine runs on CUDA */
    int backend_batch; /* images per backend call */
    float *logits;     /* [backend_batch, classes], for classify */
    image_batch images; /* the image entry points' batch (engine_images.c),
                         * made on first use, grown as needed */
};

/* CNX_OK when 1 <= k <= the number of classes. */
cnx_status engine_check_k(const cnx_engine *engine, int k);

/* The most images one image batch of crop x crop inputs should hold. */
int engine_image_batch_limit(const cnx_engine *engine, int crop);

/* Starts running a closed image batch (image_batch_close): the model's
 * input from each good image, the forward, top-k when k > 0, logits when
 * want_logits. On CUDA it is queued and returns at once; on the CPU it runs
 * to the end. engine_batch_finish waits for it and marks the images whose
 * results came out non-finite as failed. Only one batch runs at a time on
 * the device, but the next may be started before the last is finished:
 * they run in order. */
cnx_status engine_batch_start(cnx_engine *engine, image_batch *batch, int k, int want_logits);
cnx_status engine_batch_finish(cnx_engine *engine, image_batch *batch);

#endif
