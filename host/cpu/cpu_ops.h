/* The CPU backend's elementwise and convolution loops, on NHWC fp32 data.
 * The pointwise layers are OpenBLAS sgemm calls in cpu_backend.c; these are
 * the pieces no BLAS routine covers. "pixels" = batch * height * width. */
#ifndef CNX_HOST_CPU_OPS_H
#define CNX_HOST_CPU_OPS_H

#include <stddef.h>

/* ConvNeXt's LayerNorm epsilon (torchvision and timm), every LayerNorm's
 * but the head's where a Hugging Face config says otherwise. */
#define CNX_LAYERNORM_EPS 1e-6f

/* GRN's epsilon (timm's GlobalResponseNorm, transformers' ConvNextV2GRN). */
#define CNX_GRN_EPS 1e-6f

/* Per pixel: x = (x - mean) / sqrt(var + eps) * gain + bias over `channels`.
 * gain and bias may be NULL when the affine part was folded elsewhere. */
void cpu_layernorm(float *x, size_t pixels, int channels, const float *gain,
                   const float *bias, float eps);

/* Depthwise 7x7 conv, stride 1, zero padding 3, plus bias.
 * in, out: [batch, height, width, channels]; weight: [7, 7, channels]. */
void cpu_depthwise_conv7(float *out, const float *in, const float *weight,
                         const float *bias, int batch, int height, int width,
                         int channels);

/* x = gelu(x + bias) per row of `channels`, with the exact erf GELU. */
void cpu_bias_gelu(float *x, size_t rows, int channels, const float *bias);

/* ConvNeXt V2's Global Response Normalization, in place on x [batch,
 * pixels, channels], per image: Gx[c] = sqrt(sum over the pixels of x^2)
 * (summed in double), Nx[c] = Gx[c] / (mean over c of Gx + CNX_GRN_EPS),
 * x = x + (bias[c] + gain[c] * (x * Nx[c])), the order of timm's addcmul.
 * nx: scratch of batch * channels floats (Nx on return). The result does not
 * depend on the thread count. */
void cpu_grn(float *x, float *nx, int batch, size_t pixels, int channels,
             const float *gain, const float *bias);

/* x += bias, per row of `channels`. */
void cpu_add_bias(float *x, size_t rows, int channels, const float *bias);

/* Lays out the non-overlapping k x k patches of an NHWC image as rows of
 * [k, k, channels] so that a k x k stride-k conv is one GEMM. Output rows are
 * [batch, height/k, width/k] (floored, as PyTorch's conv does). */
void cpu_gather_patches(float *patches, const float *in, int batch, int height,
                        int width, int channels, int k);

/* NCHW -> NHWC for the model's input. */
void cpu_nchw_to_nhwc(float *out, const float *in, int batch, int channels,
                      int height, int width);

/* Mean over the pixels of each image: in [batch, pixels, channels] ->
 * out [batch, channels]. */
void cpu_global_average_pool(float *out, const float *in, int batch,
                             int pixels, int channels);

/* erf(x) for float, vectorizable, within a few ulp of libm's erff. */
float cpu_erf(float x);

#endif
