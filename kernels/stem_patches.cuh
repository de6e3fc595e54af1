/* The stem's input side: the model input, fp32 NCHW as the API takes it, as
 * rows of non-overlapping 4x4 patches for the stem GEMM (a 4x4 stride-4 conv
 * is one GEMM over these rows). */
#ifndef CNX_KERNELS_STEM_PATCHES_CUH
#define CNX_KERNELS_STEM_PATCHES_CUH

#include "kernel_common.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* in: fp32 [batch, 3, height, width]; out: dtype [batch, height/4, width/4,
 * 4, 4, 3] (floored, as PyTorch's conv drops the remainder), i.e. one row of
 * 48 per output pixel in the [ky, kx, c] order of the stem weights.
 * Launch: grid-stride over output elements (coalesced writes), 256 threads. */
cudaError_t stem_patches_forward(void *out, const float *in, int batch, int height, int width,
                                 cnx_act_dtype dtype, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
