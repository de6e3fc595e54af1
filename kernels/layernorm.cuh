/* LayerNorm over the channels of NHWC rows (ConvNeXt's channels_last
 * LayerNorm, eps 1e-6). Statistics in fp32, two passes (mean, then the mean
 * of squared deviations): the one-pass formula loses the variance of rows
 * with a large mean, and fp16 statistics overflow on ConvNeXt. */
#ifndef CNX_KERNELS_LAYERNORM_CUH
#define CNX_KERNELS_LAYERNORM_CUH

#include <stddef.h>

#include "kernel_common.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* out[r, c] = (in[r, c] - mean_r) / sqrt(var_r + eps) * gain[c] + bias[c].
 * in: fp32 [rows, channels]; out: dtype [rows, channels]. gain and bias are
 * fp32 and both NULL (no affine: it was folded into the next GEMM) or both
 * set. out may be in (same rows) when dtype is CNX_ACT_F32.
 * One warp per row, 8 rows per 256-thread block. */
cudaError_t layernorm_forward(void *out, const float *in, const float *gain, const float *bias,
                              size_t rows, int channels, cnx_act_dtype dtype, cudaStream_t stream);

/* Downsampling's LayerNorm (no affine: folded into the conv) fused with the
 * gather of non-overlapping 2x2 patches. in: fp32 [batch, height, width, C];
 * out: dtype [batch, height/2, width/2, 2, 2, C] (floored, as PyTorch's
 * stride-2 conv drops an odd last row or column), i.e. one row of 4C per
 * output pixel in the [ky, kx, c] order of the folded conv weights. */
cudaError_t layernorm_patches_forward(void *out, const float *in, int batch, int height,
                                      int width, int channels, cnx_act_dtype dtype,
                                      cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
