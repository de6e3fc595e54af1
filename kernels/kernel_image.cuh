/* Whether the current CUDA device can run this build's kernels. nvcc builds
 * them for CMAKE_CUDA_ARCHITECTURES only: a device that none of those fits
 * (nor their PTX, compiled at load) fails every launch with
 * cudaErrorNoKernelImageForDevice, which the backend asks about at creation
 * instead. */
#ifndef CNX_KERNELS_KERNEL_IMAGE_CUH
#define CNX_KERNELS_KERNEL_IMAGE_CUH

#include <stddef.h>

#include "kernel_common.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* cudaSuccess when the current device has code for our kernels,
 * cudaErrorNoKernelImageForDevice when not, or the error that stopped the
 * query. */
cudaError_t cnx_kernel_image_probe(void);

/* The compute capabilities the kernels were compiled for, e.g. "8.0, 9.0". */
void cnx_kernel_image_archs(char *text, size_t size);

#ifdef __cplusplus
}
#endif

#endif
