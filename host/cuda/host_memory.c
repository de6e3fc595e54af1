/* Page-locked or ordinary host memory (see host_memory.h). */
#include "host_memory.h"

#include <stdlib.h>

#ifdef CNX_HAVE_CUDA
#include <cuda_runtime.h>
#endif

void *host_memory_alloc(size_t bytes, int page_locked) {
    if (bytes == 0)
        bytes = 1;
#ifdef CNX_HAVE_CUDA
    if (page_locked) {
        void *memory = NULL;
        /* Portable: page-locked for every device, whichever is current here. */
        if (cudaHostAlloc(&memory, bytes, cudaHostAllocPortable) != cudaSuccess) {
            cudaGetLastError(); /* not sticky: clear it for the next call */
            return NULL;
        }
        return memory;
    }
#else
    (void)page_locked;
#endif
    return malloc(bytes);
}

void host_memory_free(void *memory, int page_locked) {
    if (!memory)
        return;
#ifdef CNX_HAVE_CUDA
    if (page_locked) {
        cudaFreeHost(memory);
        return;
    }
#else
    (void)page_locked;
#endif
    free(memory);
}
