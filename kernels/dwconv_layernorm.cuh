/* The first half of a ConvNeXt block in one kernel: depthwise 7x7 conv
 * (stride 1, zero padding 3) + bias over an NHWC fp32 residual, then the
 * block's LayerNorm over each pixel's channels (no affine: it is folded into
 * fc1), written as the GEMM input type. */
#ifndef CNX_KERNELS_DWCONV_LAYERNORM_CUH
#define CNX_KERNELS_DWCONV_LAYERNORM_CUH

#include "kernel_common.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* in: fp32 [batch, height, width, C]; weight: fp32 [7, 7, C]; bias: fp32 [C];
 * out: dtype [batch, height, width, C], out != in. Conv sums and LayerNorm
 * statistics are fp32. Supports C up to 12288.
 * Launch: one warp per P consecutive output pixels of one row (P = 8, 4, 2, 1
 * for C <= 192, 384, 768, larger), up to 4 warps per block, P*C floats of
 * shared memory per warp for the conv outputs awaiting their statistics. */
cudaError_t dwconv7_layernorm_forward(void *out, const float *in, const float *weight,
                                      const float *bias, int batch, int height, int width,
                                      int channels, cnx_act_dtype dtype, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
