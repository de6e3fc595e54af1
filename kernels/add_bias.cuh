/* x += bias per row, on fp32 data. The fallback for a GEMM whose cuBLASLt
 * bias epilogue has no algorithm on this GPU (normally the epilogue adds it). */
#ifndef CNX_KERNELS_ADD_BIAS_CUH
#define CNX_KERNELS_ADD_BIAS_CUH

#include <stddef.h>

#include "kernel_common.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* x: fp32 [rows, cols]; bias: fp32 [cols]. Grid-stride, 256 threads. */
cudaError_t add_bias_forward(float *x, const float *bias, size_t rows, int cols,
                             cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
