/* The CUDA backend: the same ConvNeXt forward as cpu_backend, on one GPU.
 *
 * At creation the weights are folded as the CPU backend folds them (LayerNorm
 * affines into the following Linear or conv, layer scale, where the model has
 * one, into fc2), converted to the GEMM type (in fp16 times a power of two
 * per matrix, undone by the GEMM's alpha: cuda_weights.h) and uploaded into
 * one device arena (GRN's gains and biases, ConvNeXt V2, stay fp32); one
 * activation arena is allocated for max_batch images of input_size^2 (with
 * GRN's scratch for V2); cuBLASLt descriptors and algorithms are chosen for
 * that shape. Other batch sizes and input
 * sizes get their own plan (layouts, algorithms, CUDA graph) the first time
 * they run, cached (8 plans, least recently used replaced).
 *
 * Precisions: fp32 (CUBLAS_COMPUTE_32F, no TF32), tf32 (COMPUTE_32F_FAST_TF32),
 * fp16 and bf16 (GEMM operands in that type, fp32 accumulation). In every
 * precision the residual stream, LayerNorm and GRN statistics, GELU, GRN,
 * softmax and all sums are fp32.
 *
 * Graphs: a plan runs eagerly the first time (which also loads every
 * kernel), is captured into a CUDA graph the second time, on the backend's
 * own stream, and that graph is launched on whichever stream the work goes
 * to after that. While the caller captures its stream, the work is queued
 * eagerly into the caller's capture (a graph cannot be launched into one).
 * CNX_CUDA_GRAPHS=0 in the environment at creation turns graphs off.
 *
 * Ordering: on the backend's own stream, each call's work follows what the
 * caller queued on the legacy default stream before the call; on a caller's
 * stream it follows that stream's earlier work. Destroying the backend or
 * changing its stream waits for the backend's own work (an event), never
 * for the caller's stream, which may be gone by then.
 *
 * Only the engine (host/engine/) calls this, one call at a time per backend. */
#ifndef CNX_HOST_CUDA_BACKEND_H
#define CNX_HOST_CUDA_BACKEND_H

#include <stddef.h>

#include "cnx.h"
#include "convnext_weights.h"

typedef struct cuda_backend cuda_backend;

/* 1 when device `ordinal` is one cnx supports (compute capability 8.0 or
 * newer); else 0, with the reason in why. Whether this build holds kernels
 * for it, and whether cuBLASLt loads, cuda_backend_create finds out
 * (CNX_ERROR_NO_DEVICE when not). */
int cuda_backend_supported(int ordinal, char *why, size_t why_size);

/* stream: a cudaStream_t of the caller's, or NULL for a stream of the
 * backend's own. The weights are not referenced after this returns. */
cnx_status cuda_backend_create(const cnx_convnext_weights *weights, cnx_precision precision,
                               int max_batch, int input_size, int device, void *stream,
                               cuda_backend **backend);

/* How many images of height x width one forward takes: max_batch, fewer for
 * inputs larger than planned, 0 when not even one fits the arena. */
int cuda_backend_capacity(const cuda_backend *backend, int height, int width);

/* Moves later work to `stream` (NULL: the backend's own), after the work
 * already queued on the current one has finished. */
cnx_status cuda_backend_set_stream(cuda_backend *backend, void *stream);

/* 1 when the work goes to the caller's stream, 0 on the backend's own. */
int cuda_backend_on_caller_stream(const cuda_backend *backend);

/* input: n images, fp32 [n, 3, height, width], in host memory or (when
 * input_on_device) device memory; logits: fp32 [n, classes], host or device.
 * n <= cuda_backend_capacity(height, width). Returns once the logits are
 * there, except for device logits on a caller's stream: then it returns
 * once the work is queued. */
cnx_status cuda_backend_forward(cuda_backend *backend, const float *input, int input_on_device,
                                int n, int height, int width, float *logits,
                                int logits_on_device);

/* forward, then softmax and top-k on the device: top (host memory) receives
 * n*k predictions. Returns once they are there. */
cnx_status cuda_backend_classify(cuda_backend *backend, const float *input, int input_on_device,
                                 int n, int height, int width, int k, cnx_prediction *top);

/* The stream the backend's work goes to (a cudaStream_t). */
void *cuda_backend_stream(const cuda_backend *backend);

/* Queues on the backend's stream, without waiting: the model's input from
 * n packed RGB8 images (pixels and descs in device memory, see
 * kernels/preprocess.cuh) preprocessed with params straight into the input
 * buffer, the forward, and copies of the results to host memory: k
 * predictions per image into top when k > 0, the logits when logits is not
 * NULL. Host memory should be page-locked, or the copies wait for the GPU.
 * n <= cuda_backend_capacity(crop, crop). Synchronize the stream before
 * reading the results; a failed top-k ranks class_index -1 (non-finite
 * logits). */
cnx_status cuda_backend_enqueue_pixels(cuda_backend *backend, const uint8_t *pixels,
                                       uint64_t pixel_bytes, const cnx_image_desc *descs, int n,
                                       const cnx_preprocess *params, int k, cnx_prediction *top,
                                       float *logits);

void cuda_backend_destroy(cuda_backend *backend);

#endif
