/* Internal: host buffers that the GPU copies from or to. Page-locked
 * ("pinned") memory lets those copies run asynchronously, overlapping with
 * compute; ordinary memory would make each copy wait. */
#ifndef CNX_HOST_HOST_MEMORY_H
#define CNX_HOST_HOST_MEMORY_H

#include <stddef.h>

/* bytes of page-locked memory for CUDA device cuda_device (made current on
 * the calling thread first: page-locking makes a context on the current
 * device, and a decode thread's is device 0), or ordinary memory when
 * cuda_device < 0 or this build has no CUDA. NULL when none could be had. */
void *host_memory_alloc(size_t bytes, int cuda_device);

/* Frees what host_memory_alloc returned, with the same cuda_device. */
void host_memory_free(void *memory, int cuda_device);

#endif
