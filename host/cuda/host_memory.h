/* Internal: host buffers that the GPU copies from or to. Page-locked
 * ("pinned") memory lets those copies run asynchronously, overlapping with
 * compute; ordinary memory would make each copy wait. */
#ifndef CNX_HOST_HOST_MEMORY_H
#define CNX_HOST_HOST_MEMORY_H

#include <stddef.h>

/* bytes of page-locked memory when page_locked (and this build has CUDA),
 * else ordinary memory. NULL when none could be had. */
void *host_memory_alloc(size_t bytes, int page_locked);

/* Frees what host_memory_alloc returned with the same page_locked. */
void host_memory_free(void *memory, int page_locked);

#endif
