/* Pillow-exact preprocessing arithmetic, per pixel, for the CPU (host/image/resize.c,
 * host/image/preprocess.c) and the CUDA kernels alike.
 *
 * The reference is torchvision 0.14's PIL pipeline on an RGB image, and the
 * variants of it that timm's transforms_imagenet_eval and Hugging Face's
 * ConvNextImageProcessor run (cnx_preprocess in cnx.h names each choice):
 *   Resize(S, filter)    -> Image.resize((w, h), filter), no reducing_gap
 *   CenterCrop(C)        -> padding (black, or timm's mean color in border mode) when C
 *                           exceeds a side, then Image.crop
 *   ToTensor             -> img.float().div(255)             (fp32 division)
 *   Normalize(mean, std) -> tensor.sub_(mean).div_(std)      (fp32)
 *
 * Pillow's separable resample (src/libImaging/Resample.c), as we read it:
 *   - each axis separately: scale = in / out (double); filterscale = max(scale, 1);
 *     support = filter support * filterscale (the filter widens when
 *     downscaling: antialias); the filters and their supports are BOX 0.5,
 *     BILINEAR 1 (triangle), HAMMING 1, BICUBIC 2 (a = -0.5), LANCZOS 3;
 *   - for output pixel i: center = (i + 0.5) * scale;
 *     xmin = (int)(center - support + 0.5) clipped to >= 0,
 *     xmax = (int)(center + support + 0.5) clipped to <= in; taps = xmax - xmin;
 *     w[x] = filter((xmin + x - center + 0.5) * (1 / filterscale)), summed in
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

#include <math.h>
#include <stdint.h>

#include "cnx.h"

#ifdef __CUDACC__
#define CNX_HOST_DEVICE __host__ __device__
#else
#define CNX_HOST_DEVICE
#endif

/* Fixed-point coefficients: 32 bits - 8 for the pixel - 2 for overshoot. */
#define CNX_RESAMPLE_PRECISION_BITS 22
/* The accumulator's starting value: one half, so that >> rounds to nearest. */
#define CNX_RESAMPLE_ROUND_INIT ((int32_t)1 << (CNX_RESAMPLE_PRECISION_BITS - 1))

/* M_PI's value, which Pillow uses; strict C11 does not define M_PI. */
#define CNX_PI 3.14159265358979323846

/* Pillow's filters. Each is a pure function of x, so evaluating one twice
 * gives the same bits. HAMMING and LANCZOS call sin and cos: the CPU's libm
 * is what Pillow calls; CUDA's device sin/cos may differ by an ulp, which
 * after normalization and 22-bit rounding moves a coefficient only in rare
 * cases (BILINEAR, BICUBIC and BOX are plain arithmetic: exact everywhere). */
CNX_HOST_DEVICE static inline double cnx_filter_box(double x) {
    return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
}

CNX_HOST_DEVICE static inline double cnx_filter_bilinear(double x) {
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

CNX_HOST_DEVICE static inline double cnx_filter_hamming(double x) {
    if (x < 0.0)
        x = -x;
    if (x == 0.0)
        return 1.0;
    if (x >= 1.0)
        return 0.0;
    x = x * CNX_PI;
    return sin(x) / x * (0.54 + 0.46 * cos(x));
}

/* Keys' cubic with a = -0.5, as Pillow's BICUBIC. */
CNX_HOST_DEVICE static inline double cnx_filter_bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

CNX_HOST_DEVICE static inline double cnx_filter_sinc(double x) {
    if (x == 0.0)
        return 1.0;
    x = x * CNX_PI;
    return sin(x) / x;
}

CNX_HOST_DEVICE static inline double cnx_filter_lanczos(double x) {
    if (-3.0 <= x && x < 3.0)
        return cnx_filter_sinc(x) * cnx_filter_sinc(x / 3.0);
    return 0.0;
}

/* A filter's reach in input pixels at scale 1; 0 for one cnx cannot run. */
CNX_HOST_DEVICE static inline double cnx_filter_support(cnx_interpolation filter) {
    switch (filter) {
    case CNX_INTERPOLATION_BOX: return 0.5;
    case CNX_INTERPOLATION_BILINEAR: return 1.0;
    case CNX_INTERPOLATION_HAMMING: return 1.0;
    case CNX_INTERPOLATION_BICUBIC: return 2.0;
    case CNX_INTERPOLATION_LANCZOS: return 3.0;
    default: return 0.0;
    }
}

CNX_HOST_DEVICE static inline double cnx_filter_eval(cnx_interpolation filter, double x) {
    switch (filter) {
    case CNX_INTERPOLATION_BOX: return cnx_filter_box(x);
    case CNX_INTERPOLATION_HAMMING: return cnx_filter_hamming(x);
    case CNX_INTERPOLATION_BICUBIC: return cnx_filter_bicubic(x);
    case CNX_INTERPOLATION_LANCZOS: return cnx_filter_lanczos(x);
    default: return cnx_filter_bilinear(x);
    }
}

/* One axis of a resample: the input-to-output scale and the filter's reach. */
typedef struct cnx_resample_axis {
    cnx_interpolation filter;
    int in_size, out_size;
    double scale;       /* in_size / out_size */
    double filterscale; /* max(scale, 1): the filter stretches when shrinking */
    double inv_filterscale;
    double support;     /* the filter's support * filterscale, in input pixels */
} cnx_resample_axis;

/* The axis for resampling in_size pixels to out_size (both >= 1) with a
 * filter whose support is > 0. Pillow computes the scale from the float box
 * width (exact below 2^24 pixels). */
CNX_HOST_DEVICE static inline cnx_resample_axis cnx_resample_axis_make(cnx_interpolation filter,
                                                                       int in_size, int out_size) {
    cnx_resample_axis a;
    a.filter = filter;
    a.in_size = in_size;
    a.out_size = out_size;
    a.scale = (double)(float)in_size / out_size;
    a.filterscale = a.scale < 1.0 ? 1.0 : a.scale;
    a.inv_filterscale = 1.0 / a.filterscale;
    a.support = cnx_filter_support(filter) * a.filterscale;
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
        ww += cnx_filter_eval(a->filter, (t + *xmin - center + 0.5) * a->inv_filterscale);
    for (int t = 0; t < n; t++) {
        double w = cnx_filter_eval(a->filter, (t + *xmin - center + 0.5) * a->inv_filterscale);
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
 * pass). The int32 sum cannot overflow: the coefficients' absolute values
 * sum to at most about 1.3 * 2^22 for the filters with negative lobes
 * (BICUBIC, LANCZOS) plus n/2 for rounding, and 255 * that + 2^21 stays
 * below 2^31 for any n below a million. Pillow sums in int32 as well. */
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

/* Python's round() of a double to an integer: half to even, as rint() in
 * the default rounding mode. */
CNX_HOST_DEVICE static inline double cnx_round_half_even(double x) {
    return rint(x);
}

/* timm's ResizeKeepRatio(S, longest=1): ratio = max(h / S, w / S) and each
 * side round(side / ratio), half to even. A side can round to 0 for an
 * image far wider than tall; the caller refuses that. */
CNX_HOST_DEVICE static inline void cnx_resize_longest_size(int width, int height, int size,
                                                           int *out_width, int *out_height) {
    double ratio_h = (double)height / size, ratio_w = (double)width / size;
    double ratio = ratio_h > ratio_w ? ratio_h : ratio_w;
    *out_width = (int)cnx_round_half_even((double)width / ratio);
    *out_height = (int)cnx_round_half_even((double)height / ratio);
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
 * 0..size-1 is padding.
 *   crop <= size: offset = int(round((size - crop) / 2.0)), half to even;
 *   crop >  size: torchvision pads (crop - size) // 2 before and the rest after,
 *                 then the padded side equals crop, so offset = -((crop - size) // 2).
 * timm's CenterCropOrPad does the same. */
CNX_HOST_DEVICE static inline int cnx_center_crop_offset(int size, int crop) {
    if (crop > size)
        return -((crop - size) / 2);
    return cnx_round_half_even_div2(size - crop);
}

/* Hugging Face's center_crop: (size - crop) // 2 with Python's floor
 * division in both cases; padding puts ceil((crop - size) / 2) before. */
CNX_HOST_DEVICE static inline int cnx_center_crop_offset_floor(int size, int crop) {
    int d = size - crop;
    return d >= 0 ? d / 2 : -((-d + 1) / 2);
}

/* The resized image's longest side cnx computes anything for: the CPU and
 * GPU paths both refuse an image whose resized long side reaches it. */
#define CNX_MAX_RESIZED_SIDE 1073741824.0 /* 2^30 */

/* Where the crop of one image lies: the resized size and the input index of
 * crop pixel (0, 0) in it (crop pixel (i, j) reads resized pixel
 * (offset_y + i, offset_x + j); outside the resized image is padding), and
 * the padding's pixel value per channel. */
typedef struct cnx_crop_geometry {
    int resized_width, resized_height;
    int offset_x, offset_y;
    uint8_t fill[3];
} cnx_crop_geometry;

typedef enum cnx_geometry_status {
    CNX_GEOMETRY_OK = 0,
    CNX_GEOMETRY_TOO_LARGE, /* the resized long side reaches CNX_MAX_RESIZED_SIDE */
    CNX_GEOMETRY_EMPTY      /* a resized side rounds to 0 (border mode) */
} cnx_geometry_status;

/* The padding color of a crop mode: black, or in border mode timm's
 * round(255 * mean), computed from the float mean in double. */
CNX_HOST_DEVICE static inline void cnx_crop_fill(const cnx_preprocess *p, uint8_t fill[3]) {
    for (int c = 0; c < 3; c++) {
        double v = p->crop_mode == CNX_CROP_MODE_BORDER
                       ? cnx_round_half_even(255.0 * (double)p->mean[c]) : 0.0;
        fill[c] = (uint8_t)(v < 0.0 ? 0.0 : v > 255.0 ? 255.0 : v);
    }
}

/* The geometry of a width x height image (both >= 1) under p (resize and
 * crop already checked to be in 1..2^20). */
CNX_HOST_DEVICE static inline cnx_geometry_status cnx_crop_geometry_make(int width, int height,
                                                                         const cnx_preprocess *p,
                                                                         cnx_crop_geometry *g) {
    const int size = p->resize;
    if (p->crop_mode == CNX_CROP_MODE_SQUASH) {
        g->resized_width = g->resized_height = size;
    } else if (p->crop_mode == CNX_CROP_MODE_BORDER) {
        cnx_resize_longest_size(width, height, size, &g->resized_width, &g->resized_height);
        if (g->resized_width < 1 || g->resized_height < 1)
            return CNX_GEOMETRY_EMPTY;
    } else {
        /* The long side in double before the int conversion can overflow. */
        const double shorter = width <= height ? width : height;
        const double longer = width <= height ? height : width;
        if ((double)size * longer / shorter >= CNX_MAX_RESIZED_SIDE)
            return CNX_GEOMETRY_TOO_LARGE;
        cnx_resize_output_size(width, height, size, &g->resized_width, &g->resized_height);
    }
    if (p->crop_offset == CNX_CROP_OFFSET_FLOOR) {
        g->offset_x = cnx_center_crop_offset_floor(g->resized_width, p->crop);
        g->offset_y = cnx_center_crop_offset_floor(g->resized_height, p->crop);
    } else {
        g->offset_x = cnx_center_crop_offset(g->resized_width, p->crop);
        g->offset_y = cnx_center_crop_offset(g->resized_height, p->crop);
    }
    cnx_crop_fill(p, g->fill);
    return CNX_GEOMETRY_OK;
}

/* What in p's choices cnx cannot run (an unknown enum value, NEAREST, a
 * rescale factor that is negative or not finite), as a message; NULL when
 * they are all fine. Sizes, mean and std are checked by the callers. */
CNX_HOST_DEVICE static inline const char *cnx_preprocess_choice_error(const cnx_preprocess *p) {
    if (p->interpolation == CNX_INTERPOLATION_NEAREST)
        return "interpolation \"nearest\" is not supported (Pillow resizes NEAREST as an "
               "affine transform, not with the separable filters cnx implements)";
    if ((int)p->interpolation < 0 || p->interpolation >= CNX_INTERPOLATION_COUNT)
        return "unknown interpolation";
    if ((int)p->crop_mode < 0 || p->crop_mode >= CNX_CROP_MODE_COUNT)
        return "unknown crop mode";
    if ((int)p->crop_offset < 0 || p->crop_offset >= CNX_CROP_OFFSET_COUNT)
        return "unknown crop offset rule";
    if (!(p->rescale_factor >= 0.0) || p->rescale_factor > 1e30)
        return "rescale_factor must be 0 (divide by 255) or a positive finite number";
    return 0;
}

/* ToTensor then Normalize for one pixel value, in torchvision's fp32 order:
 * x = u / 255 (fp32 division), then (x - mean) / std (fp32). With
 * rescale_factor > 0, x = (float)(u * rescale_factor) in double instead, as
 * Hugging Face's rescale (a float64 multiply, then astype(float32)). With
 * normalize 0, only the scaling. */
CNX_HOST_DEVICE static inline float cnx_normalize_pixel(uint8_t u, double rescale_factor,
                                                        float mean, float std, int normalize) {
    float x = rescale_factor > 0.0 ? (float)((double)u * rescale_factor) : (float)u / 255.0f;
    if (normalize) {
        x = x - mean;
        x = x / std;
    }
    return x;
}

#endif
