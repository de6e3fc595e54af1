/* ConvNeXt V2's Global Response Normalization, after fc1's GELU, in place on
 * the hidden activations. Per image, with x [pixels, C]:
 *   Gx[c] = sqrt(sum over the pixels of x[p, c]^2)
 *   Nx[c] = Gx[c] / (mean over c of Gx + 1e-6)
 *   x     = x + (bias[c] + weight[c] * (x * Nx[c]))
 * as timm's GlobalResponseNorm and transformers' ConvNextV2GRN. The sums,
 * Gx, Nx and the update are fp32 whatever the storage type. */
#ifndef CNX_KERNELS_GRN_CUH
#define CNX_KERNELS_GRN_CUH

#include <stddef.h>

#include "kernel_common.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* GRN's epsilon (as CNX_GRN_EPS in host/cpu/cpu_ops.h). */
#define CNX_KERNEL_GRN_EPS 1e-6f

/* The fp32 scratch cnx_grn_forward needs for batch images of pixels x
 * channels: a partial sum of squares per channel for every 64 pixels of an
 * image, and Nx. Linear in batch. */
size_t cnx_grn_scratch_floats(int batch, int pixels, int channels);

/* x: dtype [batch, pixels, channels] in place, aligned to 4 elements;
 * channels a multiple of 4; scratch: cnx_grn_scratch_floats(batch, pixels,
 * channels) fp32, aligned to 16 bytes; weight, bias: fp32 [channels],
 * aligned to 16 bytes. batch and ceil(pixels / 64) at most 65535.
 * Deterministic: no atomics, every sum in a fixed order.
 * Launch: three kernels. (1) grid (ceil(channels / 128), ceil(pixels / 64),
 * batch) of 256 threads: 32 threads cover 128 channels with 4-element loads,
 * 8 rows of them stride the block's 64 pixels, and the 8 partial sums meet
 * in shared memory; (2) one 256-thread block per image: the partials summed
 * in pixel order, Gx, its mean over the channels, Nx; (3) grid-stride over
 * the elements, 4 per thread and step: the update. */
cudaError_t cnx_grn_forward(void *x, float *scratch, const float *weight, const float *bias,
                            int batch, int pixels, int channels, cnx_act_dtype dtype,
                            cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
