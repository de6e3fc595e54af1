/* The head's first half: global average pool over each image's pixels, then
 * the head LayerNorm (no affine: folded into the classifier) with the
 * model's epsilon (1e-6, or a Hugging Face config's layer_norm_eps), in fp32,
 * written as the GEMM input type. */
#ifndef CNX_KERNELS_AVGPOOL_LAYERNORM_CUH
#define CNX_KERNELS_AVGPOOL_LAYERNORM_CUH

#include "kernel_common.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* The most channels a block's 48 KiB of shared memory holds: C floats of
 * dynamic shared memory plus 33 floats of static scratch. */
#define CNX_AVGPOOL_LAYERNORM_MAX_CHANNELS 12255

/* in: fp32 [batch, pixels, C]; out: dtype [batch, C]. The pixel sum of a
 * channel runs in pixel order, in fp32, then divides by pixels (as the CPU
 * backend does). C up to CNX_AVGPOOL_LAYERNORM_MAX_CHANNELS (else
 * cudaErrorInvalidValue); eps >= 0.
 * Launch: one 256-thread block per image, C floats of shared memory. */
cudaError_t avgpool_layernorm_forward(void *out, const float *in, int batch, int pixels,
                                      int channels, float eps, cnx_act_dtype dtype,
                                      cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
