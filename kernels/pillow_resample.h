/* Pillow-exact preprocessing arithmetic, per pixel, for the CPU (host/image/resize.c,
 * host/image/preprocess.c) and the CUDA kernels alike.
 *
 * The reference is torchvision 0.14's PIL pipeline on an RGB image:
 *   Resize(S, BILINEAR)  -> Image.resize((w, h), BILINEAR), no reducing_gap
 *   CenterCrop(C)        -> zero padding when C exceeds a side, then Image.crop
 *   ToTensor             -> img.float().div(255)             (fp32 division)
 *   Normalize(mean, std) -> tensor.sub_(mean).div_(std)      (fp32)
 *
 * Pillow's BILINEAR resample (src/libImaging/Resample.c), as we read it:
 *   - each axis separately: scale = in / out (double); filterscale = max(scale, 1);
 *     support = 1.0 * filterscale (the triangle widens when downscaling: antialias);
 *   - for output pixel i: center = (i + 0.5) * scale;
 *     xmin = (int)(center - support + 0.5) clipped to >= 0,
 *     xmax = (int)(center + support + 0.5) clipped to <= in; taps = xmax - xmin;
 *     w[x] = triangle((xmin + x - center + 0.5) * (1 / filterscale)), summed in
 *     order into ww (double), then w[x] / ww when ww != 0;
 *   - each normalized coefficient becomes 22-bit fixed point:
 *     (int)(0.5 + k * 2^22) (k >= 0; (int)(-0.5 + k * 2^22) for k < 0);
 *   - a pass accumulates in int32 from 1 << 21 (rounding), adds u8 * coeff,
 *     and stores clip(acc >> 22, 0, 255) as uint8;
 *   - horizontal pass first (to a uint8 image), then vertical; a pass whose
 *     size is unchanged is skipped, and an unchanged size is a plain copy.
 *     Pillow runs the horizontal pass only over the rows the vertical pass reads;
 *     rows are independent, so that changes no value.
 *
 * Floating point: (i + 0.5) * scale is inexact, so a fused multiply-add into
 * the following subtraction could move a filter bound to the neighbouring
 * integer. The C files that include this header are compiled with
 * -ffp-contract=off and the CUDA ones with --fmad=false (see CMakeLists.txt). Never build them with -use_fast_math / -ffast-math: the
 * results would no longer be Pillow's.
 */
#ifndef CNX_PILLOW_RESAMPLE_H
#define CNX_PILLOW_RESAMPLE_H

#include <stdint.h>

#ifdef __CUDACC__
#define CNX_HOST_DEVICE __host__ __device__
#else
#define CNX_HOST_DEVICE
#endif

/* Fixed-point coefficients: 32 bits - 8 for the pixel - 2 for overshoot. */
#define CNX_RESAMPLE_PRECISION_BITS 22
/* The accumulator's starting value: one half, so that >> rounds to nearest. */
#define CNX_RESAMPLE_ROUND_INIT ((int32_t)1 << (CNX_RESAMPLE_PRECISION_BITS - 1))

/* The triangle filter of Pillow's BILINEAR (support 1). */
CNX_HOST_DEVICE static inline double cnx_bilinear_filter(double x) {
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return 1.0 - x;
    return 0.0;
}

/* One axis of a resample: the input-to-output scale and the filter's reach. */
typedef struct cnx_resample_axis {
    int in_size, out_size;
    double scale;       /* in_size / out_size */
    double filterscale; /* max(scale, 1): the filter stretches when shrinking */
    double inv_filterscale;
    double support;     /* 1.0 * filterscale, in input pixels */
} cnx_resample_axis;

/* The axis for resampling in_size pixels to out_size (both >= 1). Pillow
 * computes the scale from the float box width (exact below 2^24 pixels). */
CNX_HOST_DEVICE static inline cnx_resample_axis cnx_resample_axis_make(int in_size, int out_size) {
    cnx_resample_axis a;
    a.in_size = in_size;
    a.out_size = out_size;
    a.scale = (double)(float)in_size / out_size;
    a.filterscale = a.scale < 1.0 ? 1.0 : a.scale;
    a.inv_filterscale = 1.0 / a.filterscale;
    a.support = 1.0 * a.filterscale;
    return a;
}

/* The most taps any output pixel of this axis uses (Pillow's ksize):
 * ceil(support) * 2 + 1. Size coefficient buffers with it. */
CNX_HOST_DEVICE static inline int cnx_resample_max_taps(const cnx_resample_axis *a) {
    int whole = (int)a->support;
    if ((double)whole < a->support)
        whole++; /* ceil, support > 0 */
    return whole * 2 + 1;
}

/* The input window of output pixel out_index: the first input pixel (*xmin)
 * and the count of input pixels (the return value, >= 1 for valid sizes). */
CNX_HOST_DEVICE static inline int cnx_resample_bounds(const cnx_resample_axis *a, int out_index,
                                                      int *xmin) {
    double center = (out_index + 0.5) * a->scale;
    int lo = (int)(center - a->support + 0.5); /* truncation, as Pillow */
    if (lo < 0)
        lo = 0;
    int hi = (int)(center + a->support + 0.5);
    if (hi > a->in_size)
        hi = a->in_size;
    *xmin = lo;
    return hi - lo;
}

/* A normalized double coefficient as 22-bit fixed point, rounded as Pillow. */
CNX_HOST_DEVICE static inline int32_t cnx_resample_fixed(double k) {
    double scaled = k * (double)((int32_t)1 << CNX_RESAMPLE_PRECISION_BITS);
    return (int32_t)(k < 0 ? -0.5 + scaled : 0.5 + scaled);
}

/* The weights of output pixel out_index: writes *xmin and up to
 * cnx_resample_max_taps() fixed-point coefficients (coeffs[t] weighs input
 * pixel *xmin + t) and returns their count. The double weights are evaluated
 * twice (once for the sum, once to normalize) instead of being stored: the
 * filter is a pure function, so both evaluations agree bit for bit. */
CNX_HOST_DEVICE static inline int cnx_resample_coeffs(const cnx_resample_axis *a, int out_index,
                                                      int *xmin, int32_t *coeffs) {
    double center = (out_index + 0.5) * a->scale;
    int n = cnx_resample_bounds(a, out_index, xmin);
    double ww = 0.0;
    for (int t = 0; t < n; t++)
        ww += cnx_bilinear_filter((t + *xmin - center + 0.5) * a->inv_filterscale);
    for (int t = 0; t < n; t++) {
        double w = cnx_bilinear_filter((t + *xmin - center + 0.5) * a->inv_filterscale);
        if (ww != 0.0)
            w /= ww;
        coeffs[t] = cnx_resample_fixed(w);
    }
    return n;
}

/* The end of a pass: acc (started at CNX_RESAMPLE_ROUND_INIT, plus the sum of
 * pixel * coefficient) back to a pixel, clipped to 0..255. */
CNX_HOST_DEVICE static inline uint8_t cnx_resample_clip8(int32_t acc) {
    int32_t v = acc >> CNX_RESAMPLE_PRECISION_BITS; /* arithmetic shift, as Pillow */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One output value of a pass over n input values spaced `stride` bytes apart
 * (3 for a horizontal pass over interleaved RGB, the row pitch for a vertical
 * pass). The int32 sum cannot overflow for BILINEAR: the coefficients are
 * non-negative and sum to at most 2^22 + n/2, and 255 * that + 2^21 stays
 * below 2^31 for any n below 7.6 million. */
CNX_HOST_DEVICE static inline uint8_t cnx_resample_apply(const uint8_t *in, int stride, int n,
                                                         const int32_t *coeffs) {
    int32_t acc = CNX_RESAMPLE_ROUND_INIT;
    for (int t = 0; t < n; t++)
        acc += (int32_t)in[(intptr_t)t * stride] * coeffs[t];
    return cnx_resample_clip8(acc);
}

/* torchvision 0.14's Resize(int S) output size (_compute_resized_output_size):
 * the short side (the width on a tie) becomes S, the long side
 * int(S * long / short) with Python's true division, i.e. a correctly rounded
 * double quotient (exact inputs below 2^53), then truncated. */
CNX_HOST_DEVICE static inline void cnx_resize_output_size(int width, int height, int size,
                                                          int *out_width, int *out_height) {
    int w_is_short = width <= height;
    int64_t shorter = w_is_short ? width : height;
    int64_t longer = w_is_short ? height : width;
    int new_long = (int)((double)((int64_t)size * longer) / (double)shorter);
    *out_width = w_is_short ? size : new_long;
    *out_height = w_is_short ? new_long : size;
}

/* Python's round-half-to-even of n / 2 for an integer n >= 0. */
CNX_HOST_DEVICE static inline int cnx_round_half_even_div2(int n) {
    int q = n / 2;
    if (n % 2 != 0 && q % 2 != 0)
        q++; /* n/2 = q + 0.5 with q odd: round up to the even q + 1 */
    return q;
}

/* torchvision CenterCrop along one axis of `size` pixels: the input index of
 * crop pixel 0. Crop pixel i reads input (offset + i); an index outside
 * 0..size-1 is padding, i.e. 0.
 *   crop <= size: offset = int(round((size - crop) / 2.0)), half to even;
 *   crop >  size: torchvision pads (crop - size) // 2 before and the rest after,
 *                 then the padded side equals crop, so offset = -((crop - size) // 2). */
CNX_HOST_DEVICE static inline int cnx_center_crop_offset(int size, int crop) {
    if (crop > size)
        return -((crop - size) / 2);
    return cnx_round_half_even_div2(size - crop);
}

/* ToTensor then Normalize for one pixel value, in torchvision's fp32 order:
 * x = u / 255 (fp32 division), then (x - mean) / std (fp32). With normalize 0,
 * only the division. */
CNX_HOST_DEVICE static inline float cnx_normalize_pixel(uint8_t u, float mean, float std,
                                                        int normalize) {
    float x = (float)u / 255.0f;
    if (normalize) {
        x = x - mean;
        x = x / std;
    }
    return x;
}

#endif
