/* Finding a usable CUDA device. A machine without a GPU or driver is an
 * ordinary state: the query reports it and the engine runs on the CPU. */
#include "device.h"

#include <stdio.h>

#ifdef CNX_HAVE_CUDA
#include <cuda_runtime.h>

int cnx_cuda_usable(int ordinal, char *name, size_t name_size, char *why, size_t why_size) {
    if (name_size)
        name[0] = '\0';
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        snprintf(why, why_size, "no usable CUDA device (%s)", cudaGetErrorString(err));
        cudaGetLastError(); /* clear the error so later queries start clean */
        return 0;
    }
    if (ordinal < 0 || ordinal >= count) {
        snprintf(why, why_size, "CUDA device %d requested, %d present", ordinal, count);
        return 0;
    }
    struct cudaDeviceProp prop;
    err = cudaGetDeviceProperties(&prop, ordinal);
    if (err != cudaSuccess) {
        snprintf(why, why_size, "CUDA device %d: %s", ordinal, cudaGetErrorString(err));
        return 0;
    }
    snprintf(name, name_size, "%s (sm_%d%d, %.0f GiB)", prop.name, prop.major, prop.minor,
             prop.totalGlobalMem / 1073741824.0);
    return 1;
}

#else

int cnx_cuda_usable(int ordinal, char *name, size_t name_size, char *why, size_t why_size) {
    (void)ordinal;
    if (name_size)
        name[0] = '\0';
    snprintf(why, why_size, "this cnx was built without CUDA (no nvcc at build time)");
    return 0;
}

#endif
