/* Page-locked or ordinary host memory (see host_memory.h). */
#include "host_memory.h"

#include <stdlib.h>

#ifdef CNX_HAVE_CUDA
#include <cuda_runtime.h>
#endif

void *host_memory_alloc(size_t bytes, int cuda_device) {
    if (bytes == 0)
        bytes = 1;
#ifdef CNX_HAVE_CUDA
    if (cuda_device >= 0) {
        void *memory = NULL;
        /* Portable: page-locked for every device, whichever is current here. */
        if (cudaSetDevice(cuda_device) != cudaSuccess ||
            cudaHostAlloc(&memory, bytes, cudaHostAllocPortable) != cudaSuccess) {
            cudaGetLastError(); /* not sticky: clear it for the next call */
            return NULL;
        }
        return memory;
    }
#else
    (void)cuda_device;
#endif
    return malloc(bytes);
}

void host_memory_free(void *memory, int cuda_device) {
    if (!memory)
        return;
#ifdef CNX_HAVE_CUDA
    if (cuda_device >= 0) {
        cudaSetDevice(cuda_device);
        cudaFreeHost(memory);
        return;
    }
#else
    (void)cuda_device;
#endif
    free(memory);
}
