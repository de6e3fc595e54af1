/* fc1's epilogue: x = gelu(x + bias) in place, with the exact erf GELU of
 * torch.nn.GELU() (not cuBLASLt's GELU epilogue, which is the tanh
 * approximation). The math is fp32 whatever the storage type. */
#ifndef CNX_KERNELS_BIAS_GELU_CUH
#define CNX_KERNELS_BIAS_GELU_CUH

#include <stddef.h>

#include "kernel_common.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* x: dtype [rows, cols], cols a multiple of 4, x aligned to 4 elements;
 * bias: fp32 [cols] aligned to 16 bytes, or NULL for none.
 * Launch: grid-stride, 256 threads, 4 elements (one 8- or 16-byte access)
 * per thread and step. */
cudaError_t bias_gelu_forward(void *x, const float *bias, size_t rows, int cols,
                              cnx_act_dtype dtype, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
