/* The CPU backend: an exact fp32 ConvNeXt forward. It is the reference the
 * GPU backend is tested against, and a usable engine on machines without one. */
#ifndef CNX_HOST_CPU_BACKEND_H
#define CNX_HOST_CPU_BACKEND_H

#include "cnx.h"
#include "convnext_weights.h"

typedef struct cpu_backend cpu_backend;

/* The CPU threads the backend will use for a requested count (0: all cores). */
int cpu_backend_thread_count(int requested);

/* Folds and repacks the weights once and allocates the activations for
 * batches of up to max_batch images of input_size x input_size. */
cnx_status cpu_backend_create(const cnx_convnext_weights *weights, int max_batch,
                              int input_size, int num_threads, cpu_backend **backend);

/* input: [n, 3, height, width] NCHW; logits: [n, num_classes]. n <= max_batch. */
cnx_status cpu_backend_forward(cpu_backend *backend, const float *input, int n,
                               int height, int width, float *logits);

void cpu_backend_destroy(cpu_backend *backend);

#endif
