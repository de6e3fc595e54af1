// Resize + crop + scale + Normalize for a batch of images of any sizes, one
// launch, bit-identical to cnx_preprocess_image (see preprocess.cuh) for
// every filter, crop mode, crop offset rule and rescale factor it accepts.
//
// Exactness. The per-pixel arithmetic is kernels/pillow_resample.h, the same
// code the CPU path runs: the geometry from cnx_crop_geometry_make (resized
// size, crop offsets, padding color), coefficients from cnx_resample_coeffs
// (double, then 22-bit fixed point), int32 sums, cnx_resample_clip8 after
// each pass, cnx_normalize_pixel in fp32. The integer sums are exact, so the
// order in which a block adds taps does not matter.
// FMA: the header's double math has products feeding adds (`(i + 0.5) *
// scale - support`, the filters' polynomials), which nvcc may fuse into DFMA
// where the CPU rounds twice; a fused bound can truncate to the neighbouring
// integer. This file is built with --fmad=false, so nothing is fused. (For
// BILINEAR, CUDA 13.0 without it fused only the exact `k * 2^22 + 0.5`, in
// the SASS for sm_80 and sm_90.) Never -use_fast_math: the divisions must be
// IEEE.
// HAMMING and LANCZOS call the device's double sin and cos, which may differ
// from glibc's by an ulp or two; a coefficient moves only if that crosses a
// 22-bit rounding boundary. Their exactness on a real GPU is unverified (the
// CPU emulation of this kernel calls glibc). BILINEAR, BICUBIC and BOX are
// plain IEEE arithmetic.
//
// Work split. One block of 256 threads per (image, 32x32 tile of the crop).
// For its tile's pixels that lie inside the resized image (the rest is
// padding: the crop mode's fill color), a block
//   1. computes the horizontal coefficients of its 32 output columns and the
//      vertical ones of its 32 output rows into shared memory (one thread
//      per column / row, cnx_resample_coeffs);
//   2. runs the horizontal pass over exactly the input rows those output
//      rows read and exactly its columns, into a uint8 slice in shared
//      memory (Pillow rounds and clips there, so the slice must be uint8);
//   3. runs the vertical pass from that slice into int32 accumulators held
//      in registers (4 pixels x 3 channels per thread), then clips,
//      normalizes and stores.
// Input rows are streamed through the slice in chunks when they do not all
// fit (steep downscales), the accumulators carrying over between chunks; a
// tile whose coefficient tables do not fit is done in smaller sub-tiles.
// The tables' stride per axis is Pillow's ksize, 2 * ceil(support) + 1
// (support: the filter's, 0.5 BOX to 3 LANCZOS, times the downscale), so
// BICUBIC and LANCZOS sub-tile and refuse at milder downscales than BILINEAR.
// A pass whose size is unchanged is Pillow's copy; here it is one tap of
// weight 1 << 22, which gives back the pixel exactly (see axis_coeffs).
//
// Speed (BILINEAR; the other filters scale the tap counts with their
// support). For 500x375 sources to Resize(236)/CenterCrop(224) (49 blocks
// per image), a block reads ~54 source rows x ~55 source columns (L1-cached
// byte loads; a warp covers one row segment), makes ~1700 horizontal outputs
// of 3 channels x ~4 taps and 1024 vertical outputs of 3 x ~4 taps. Shared
// memory is bank-conflict free: tap tables have an odd stride, and a warp is
// one output row, so vertical coefficients are broadcasts. Per image that is
// ~1.7M integer multiply-adds and ~0.4 MB of source reads: at 50k images/s,
// ~0.1 T int-ops/s and ~20 GB/s, a few percent of an H100. The double math
// of the coefficients is 64 sets per block, on two warps. Stores: a warp
// writes 32 consecutive pixels of a row (NCHW fp32: 128 contiguous bytes per
// channel). Uploading the decoded pixels (0.56 MB per image) over PCIe costs
// far more time than this kernel: ~90k images/s at 50 GB/s.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "pillow_resample.h"
#include "preprocess.cuh"

extern "C" {
#include "error.h"
}

namespace {

constexpr int kTile = 32;     // a block's output tile: kTile x kTile crop pixels
constexpr int kThreads = 256; // 8 warps
constexpr int kRowsPerThread = kTile / (kThreads / kTile); // output rows a thread owns
static_assert(kThreads % kTile == 0, "a tile row must map onto whole threads");
static_assert(kRowsPerThread * (kThreads / kTile) == kTile, "every tile row has an owner");

// Shared memory for the coefficient tables and the horizontal-pass slice:
// 24 KiB. Registers (64 per thread) allow 4 blocks per SM, 100 KiB of pool
// (H100: 228 KiB per SM, A100: 164). The typical image uses ~7 KiB of it;
// the rest lets steep downscales keep whole tiles and long row chunks.
constexpr int kPoolWords = 6144;
// The slice needs at least one row of a full tile width.
constexpr int kSliceMinWords = (kTile * 3 + 3) / 4;
// What the two tables (sub-tile columns x taps + sub-tile rows x taps) may use.
constexpr int kTableWords = kPoolWords - kSliceMinWords;

// host/image/preprocess.c's limit on resize and crop (1..2^20); the resized
// long side's is the header's CNX_MAX_RESIZED_SIDE.
constexpr int kMaxSide = 1 << 20;

// The block's work on one image, the same for every block of the image.
struct Plan {
    int rw, rh; // resized size
    int ox, oy; // crop pixel (i, j) reads resized pixel (oy + i, ox + j)
    int tx, ty; // taps per output pixel for each axis (1: the pass is a copy)
    uint8_t fill[3]; // the padding's pixel value per channel (before scaling)
};

enum PlanStatus { kPlanOk = 0, kPlanBadSize, kPlanTooLarge, kPlanEmpty, kPlanTooManyTaps };

// The table stride of one axis: Pillow's ksize for the filter, or 1 when the
// size is unchanged. Steep downscales report kTableWords + 1 before the int
// math of cnx_resample_max_taps could overflow.
__host__ __device__ int axis_taps(cnx_interpolation filter, int in_size, int out_size) {
    if (in_size == out_size)
        return 1;
    const cnx_resample_axis axis = cnx_resample_axis_make(filter, in_size, out_size);
    if (axis.support > (double)kTableWords)
        return kTableWords + 1;
    return cnx_resample_max_taps(&axis);
}

// Sizes, crop offsets, padding and taps of a width x height image, with the
// geometry of host/image/preprocess.c (cnx_crop_geometry_make). params is
// already checked (check_params).
__host__ __device__ PlanStatus make_plan(int width, int height, const cnx_preprocess &params,
                                         Plan *p) {
    if (width <= 0 || height <= 0)
        return kPlanBadSize;
    cnx_crop_geometry g;
    switch (cnx_crop_geometry_make(width, height, &params, &g)) {
    case CNX_GEOMETRY_OK:
        break;
    case CNX_GEOMETRY_TOO_LARGE:
        return kPlanTooLarge;
    case CNX_GEOMETRY_EMPTY:
    default:
        return kPlanEmpty;
    }
    p->rw = g.resized_width;
    p->rh = g.resized_height;
    p->ox = g.offset_x;
    p->oy = g.offset_y;
    for (int c = 0; c < 3; c++)
        p->fill[c] = g.fill[c];
    p->tx = axis_taps(params.interpolation, width, p->rw);
    p->ty = axis_taps(params.interpolation, height, p->rh);
    // A 1x1 sub-tile needs tx + ty table words; each is at most kTableWords + 1.
    if (p->tx + p->ty > kTableWords)
        return kPlanTooManyTaps;
    return kPlanOk;
}

// The kernel's arguments; params is a copy of the caller's (checked).
struct Args {
    void *out;
    const uint8_t *pixels;
    uint64_t pixel_bytes;
    const cnx_image_desc *descs;
    cnx_preprocess params; // resize, crop, filter, crop mode and offset, scaling, mean, std
    int nhwc;
    int tiles_x; // tiles per crop row
};

// The launch's arguments (the host side of cnx_preprocess_forward, shared
// with tests/gpu/emulate_preprocess.cpp).
inline Args make_args(void *out, bool nhwc, const uint8_t *pixels, uint64_t pixel_bytes,
                      const cnx_image_desc *descs, const cnx_preprocess &params) {
    Args a;
    a.out = out;
    a.pixels = pixels;
    a.pixel_bytes = pixel_bytes;
    a.descs = descs;
    a.params = params;
    a.nhwc = nhwc;
    a.tiles_x = (params.crop + kTile - 1) / kTile;
    return a;
}

// The three channels of a resized (or padding) pixel value u, scaled and
// normalized as cnx_preprocess_image does.
__device__ void normalize_rgb(const Args &a, const uint8_t u[3], float v[3]) {
    for (int ch = 0; ch < 3; ch++)
        v[ch] = cnx_normalize_pixel(u[ch], a.params.rescale_factor, a.params.mean[ch],
                                    a.params.std[ch], a.params.normalize);
}

// Stores the three channels of crop pixel (i, j) of image b.
template <typename T>
__device__ void store_pixel(const Args &a, int b, int i, int j, const float v[3]) {
    T *out = static_cast<T *>(a.out);
    const size_t crop = (size_t)a.params.crop;
    if (a.nhwc) {
        const size_t at = (((size_t)b * crop + (size_t)i) * crop + (size_t)j) * 3;
        out[at + 0] = cnx::from_float<T>(v[0]);
        out[at + 1] = cnx::from_float<T>(v[1]);
        out[at + 2] = cnx::from_float<T>(v[2]);
    } else {
        const size_t plane = crop * crop;
        const size_t at = (size_t)b * 3 * plane + (size_t)i * crop + (size_t)j;
        out[at] = cnx::from_float<T>(v[0]);
        out[at + plane] = cnx::from_float<T>(v[1]);
        out[at + 2 * plane] = cnx::from_float<T>(v[2]);
    }
}

// One axis's coefficients of output pixel `index` (cnx_resample_coeffs).
// Pillow skips a pass whose size is unchanged (a copy); one tap of weight
// 1 << 22 is that copy: (2^21 + u * 2^22) >> 22 == u for u in 0..255, and
// 255 * 2^22 + 2^21 < 2^31. Not inlined: the double math runs on two warps
// once per sub-tile, and out of line its registers do not add to those live
// around it (80 -> 64 registers per thread, 4 blocks per SM instead of 3).
// (With HAMMING and LANCZOS compiled in, ptxas reports 64 registers, no
// spills and a 40-byte stack frame: the local array of the double sin/cos
// argument reduction's slow path, never taken here since |x| < 3 pi.)
__device__ __noinline__ void axis_coeffs(cnx_interpolation filter, int in_size, int out_size,
                                         int index, int *xmin, int *n, int32_t *coeffs) {
    if (in_size == out_size) {
        *xmin = index;
        *n = 1;
        coeffs[0] = (int32_t)1 << CNX_RESAMPLE_PRECISION_BITS;
        return;
    }
    const cnx_resample_axis axis = cnx_resample_axis_make(filter, in_size, out_size);
    *n = cnx_resample_coeffs(&axis, index, xmin, coeffs);
}

// Resamples the window pixels of crop rows [r0, r0 + rows) x crop columns
// [c0, c0 + cols) of image b (rows, cols <= kTile, all inside the resized
// image) and stores them. Every thread of the block calls it (it syncs).
template <typename T>
__device__ void resample_subtile(const Args &a, int b, const Plan &p, const uint8_t *src,
                                 int width, int height, int r0, int rows, int c0, int cols,
                                 int32_t *pool, int *xmin_x, int *n_x, int *xmin_y, int *n_y) {
    const int tid = threadIdx.x;
    int32_t *coef_x = pool;                    // [cols][tx]
    int32_t *coef_y = pool + cols * p.tx;      // [rows][ty]
    uint8_t *slice = reinterpret_cast<uint8_t *>(coef_y + rows * p.ty); // [slice_rows][cols][3]
    const int slice_rows = (kPoolWords - cols * p.tx - rows * p.ty) * 4 / (cols * 3);

    __syncthreads(); // the previous sub-tile has finished reading the pool

    // 1. Coefficients: warp 0 the columns, warp 1 the rows.
    if (tid < cols) {
        const int x = p.ox + c0 + tid; // resized column
        axis_coeffs(a.params.interpolation, width, p.rw, x, &xmin_x[tid], &n_x[tid],
                    coef_x + tid * p.tx);
    } else if (tid >= kTile && tid < kTile + rows) {
        const int k = tid - kTile;
        const int y = p.oy + r0 + k; // resized row
        axis_coeffs(a.params.interpolation, height, p.rh, y, &xmin_y[k], &n_y[k],
                    coef_y + k * p.ty);
    }
    __syncthreads();

    // The input rows the vertical pass reads: the filter bounds grow with
    // the output index, so they are those of the first and the last row.
    const int in_first = xmin_y[0];
    const int in_end = xmin_y[rows - 1] + n_y[rows - 1];

    // Thread layout for both passes: column c, rows g, g + groups, ...
    // With cols == 32 a warp is one row: coalesced loads, uniform tap loops.
    const int c = tid % cols;
    const int g = tid / cols;
    const int groups = kThreads / cols; // >= kThreads / kTile
    const bool active = g < groups;

    int32_t acc[kRowsPerThread][3];
#pragma unroll
    for (int k = 0; k < kRowsPerThread; k++)
        acc[k][0] = acc[k][1] = acc[k][2] = CNX_RESAMPLE_ROUND_INIT;

    const int xm = xmin_x[c], nx = n_x[c];
    const int32_t *kx = coef_x + c * p.tx;
    const size_t src_pitch = (size_t)width * 3;

    for (int y0 = in_first; y0 < in_end; y0 += slice_rows) {
        const int y1 = min(y0 + slice_rows, in_end);

        // 2. Horizontal pass of input rows y0..y1-1, this sub-tile's columns.
        if (active) {
            for (int y = y0 + g; y < y1; y += groups) {
                const uint8_t *in = src + (size_t)y * src_pitch + (size_t)xm * 3;
                uint8_t *o = slice + ((size_t)(y - y0) * cols + c) * 3;
                o[0] = cnx_resample_apply(in + 0, 3, nx, kx);
                o[1] = cnx_resample_apply(in + 1, 3, nx, kx);
                o[2] = cnx_resample_apply(in + 2, 3, nx, kx);
            }
        }
        __syncthreads();

        // 3. Vertical pass: each owned output row adds its taps inside y0..y1-1.
        if (active) {
#pragma unroll
            for (int k = 0; k < kRowsPerThread; k++) {
                const int i = g + k * groups;
                if (i >= rows)
                    continue;
                const int ym = xmin_y[i];
                const int t0 = max(0, y0 - ym), t1 = min(n_y[i], y1 - ym);
                if (t0 >= t1)
                    continue;
                const uint8_t *s = slice + ((size_t)(ym + t0 - y0) * cols + c) * 3;
                const int32_t *ky = coef_y + i * p.ty;
                for (int t = t0; t < t1; t++, s += cols * 3) {
                    const int32_t w = ky[t];
                    acc[k][0] += (int32_t)s[0] * w;
                    acc[k][1] += (int32_t)s[1] * w;
                    acc[k][2] += (int32_t)s[2] * w;
                }
            }
        }
        __syncthreads(); // the next chunk overwrites the slice
    }

    if (!active)
        return;
#pragma unroll
    for (int k = 0; k < kRowsPerThread; k++) {
        const int i = g + k * groups;
        if (i >= rows)
            continue;
        const uint8_t u[3] = {cnx_resample_clip8(acc[k][0]), cnx_resample_clip8(acc[k][1]),
                              cnx_resample_clip8(acc[k][2])};
        float v[3];
        normalize_rgb(a, u, v);
        store_pixel<T>(a, b, r0 + i, c0 + c, v);
    }
}

// grid: (tiles of the crop, images); block: kThreads.
template <typename T>
__global__ void __launch_bounds__(kThreads) preprocess_kernel(const Args a) {
    __shared__ int32_t pool[kPoolWords];
    __shared__ int xmin_x[kTile], n_x[kTile], xmin_y[kTile], n_y[kTile];

    const int b = blockIdx.y;
    const int tid = threadIdx.x;
    const int crop = a.params.crop;
    const int i0 = (int)(blockIdx.x / (unsigned)a.tiles_x) * kTile;
    const int j0 = (int)(blockIdx.x % (unsigned)a.tiles_x) * kTile;
    const int tile_h = min(kTile, crop - i0), tile_w = min(kTile, crop - j0);

    // One thread plans (double math, several divisions) and shares the plan.
    __shared__ cnx_image_desc desc_s;
    __shared__ Plan plan_s;
    __shared__ int status_s;
    if (tid == 0) {
        const cnx_image_desc d = a.descs[b];
        PlanStatus status = make_plan(d.width, d.height, a.params, &plan_s);
        // The pixels must lie inside the buffer (sizes are > 0 once planned).
        if (status == kPlanOk &&
            (d.offset > a.pixel_bytes ||
             (uint64_t)d.width * (uint64_t)d.height > (a.pixel_bytes - d.offset) / 3))
            status = kPlanBadSize;
        desc_s = d;
        status_s = status;
    }
    __syncthreads();
    const cnx_image_desc d = desc_s;
    const Plan p = plan_s;
    if (status_s != kPlanOk) { // the whole image becomes NaN, block by block
        const float nan[3] = {__int_as_float(0x7fc00000), __int_as_float(0x7fc00000),
                              __int_as_float(0x7fc00000)};
        for (int q = tid; q < tile_h * tile_w; q += kThreads)
            store_pixel<T>(a, b, i0 + q / tile_w, j0 + q % tile_w, nan);
        return;
    }

    // The part of this tile inside the resized image, in crop coordinates.
    const int ia = max(i0, -p.oy), ib = min(i0 + tile_h, p.rh - p.oy);
    const int ja = max(j0, -p.ox), jb = min(j0 + tile_w, p.rw - p.ox);
    const bool has_window = ia < ib && ja < jb;

    // Padding (a crop larger than the resized image): the crop mode's fill
    // color (black, or BORDER's mean color), scaled and normalized. Read from
    // plan_s, not p: keeping p.fill live costs spills (ptxas, CUDA 13.0).
    if (!has_window || ia > i0 || ib < i0 + tile_h || ja > j0 || jb < j0 + tile_w) {
        float pad[3];
        normalize_rgb(a, plan_s.fill, pad);
        for (int q = tid; q < tile_h * tile_w; q += kThreads) {
            const int i = i0 + q / tile_w, j = j0 + q % tile_w;
            if (!has_window || i < ia || i >= ib || j < ja || j >= jb)
                store_pixel<T>(a, b, i, j, pad);
        }
    }
    if (!has_window)
        return;

    // Sub-tile so that both coefficient tables fit (the whole window part of
    // the tile, except for steep downscales). make_plan guarantees 1 x 1 fits.
    int sub_h = ib - ia, sub_w = jb - ja;
    while (sub_w * p.tx + sub_h * p.ty > kTableWords && (sub_w > 1 || sub_h > 1)) {
        if (sub_w > 1 && (sub_w * p.tx >= sub_h * p.ty || sub_h == 1))
            sub_w = (sub_w + 1) / 2;
        else
            sub_h = (sub_h + 1) / 2;
    }

    const uint8_t *src = a.pixels + d.offset;
    for (int r0 = ia; r0 < ib; r0 += sub_h)
        for (int c0 = ja; c0 < jb; c0 += sub_w)
            resample_subtile<T>(a, b, p, src, d.width, d.height, r0, min(sub_h, ib - r0), c0,
                                min(sub_w, jb - c0), pool, xmin_x, n_x, xmin_y, n_y);
}

} // namespace

// tests/gpu/emulate_preprocess.cpp compiles everything above on the host
// (CUDA threads as fibers) to check the kernel's indexing without a GPU; it
// defines CNX_PREPROCESS_EMULATION and needs none of what follows.
#ifndef CNX_PREPROCESS_EMULATION

namespace {

// host/image/preprocess.c's checks, in its order: sizes, choices, normalization.
cnx_status check_params(const cnx_preprocess *params) {
    if (!params)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess (CUDA): params is NULL");
    if (params->resize <= 0 || params->resize > kMaxSide)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "preprocess (CUDA): resize must be in 1..%d, got %d", kMaxSide,
                        params->resize);
    if (params->crop <= 0 || params->crop > kMaxSide)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "preprocess (CUDA): crop must be in 1..%d, got %d", kMaxSide,
                        params->crop);
    if (const char *problem = cnx_preprocess_choice_error(params))
        return cnx_fail(params->interpolation == CNX_INTERPOLATION_NEAREST
                            ? CNX_ERROR_UNSUPPORTED
                            : CNX_ERROR_INVALID_ARGUMENT,
                        "preprocess (CUDA): %s", problem);
    if (!params->normalize)
        return CNX_OK;
    for (int c = 0; c < 3; c++) {
        if (!std::isfinite(params->mean[c]))
            return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                            "preprocess (CUDA): mean[%d] is not finite", c);
        if (!(params->std[c] > 0) || !std::isfinite(params->std[c]))
            return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                            "preprocess (CUDA): std[%d] must be positive and finite, got %g", c,
                            (double)params->std[c]);
    }
    return CNX_OK;
}

// For messages (the names cnx.h's parsers take).
const char *filter_name(cnx_interpolation filter) {
    static const char *const names[] = {"bilinear", "bicubic", "box", "hamming", "lanczos"};
    return (int)filter >= 0 && (int)filter < (int)(sizeof names / sizeof names[0])
               ? names[filter]
               : "?";
}

// Through CNX_KERNEL_LAUNCH (kernel_common.cuh), so that the emulated
// runtime (tests/gpu/emulate_cuda.h) can run the launch on the CPU.
template <typename T>
void launch(const Args &a, dim3 grid, cudaStream_t stream) {
    CNX_KERNEL_LAUNCH(preprocess_kernel<T>, grid, kThreads, 0, stream, a);
}

} // namespace

extern "C" cnx_status cnx_preprocess_forward(void *out, cnx_tensor_layout layout,
                                             cnx_act_dtype dtype, const uint8_t *pixels,
                                             uint64_t pixel_bytes, const cnx_image_desc *descs,
                                             int n, const cnx_preprocess *params,
                                             cudaStream_t stream) {
    cnx_status status = check_params(params);
    if (status != CNX_OK)
        return status;
    if (n < 0 || n > 65535)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "preprocess (CUDA): %d images in one launch; 0..65535 are allowed", n);
    if (layout != CNX_LAYOUT_NCHW && layout != CNX_LAYOUT_NHWC)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess (CUDA): unknown layout %d",
                        (int)layout);
    if (dtype != CNX_ACT_F32 && dtype != CNX_ACT_F16 && dtype != CNX_ACT_BF16)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess (CUDA): unknown dtype %d",
                        (int)dtype);
    if (n == 0)
        return CNX_OK;
    if (!out || !pixels || !descs)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess (CUDA): NULL %s",
                        !out ? "output" : !pixels ? "pixels" : "descs");

    const Args a =
        make_args(out, layout == CNX_LAYOUT_NHWC, pixels, pixel_bytes, descs, *params);
    // At most (2^20 / 32)^2 = 2^30 tiles: within gridDim.x's 2^31 - 1.
    const dim3 grid((unsigned)a.tiles_x * (unsigned)a.tiles_x, (unsigned)n);

    if (dtype == CNX_ACT_F32)
        launch<float>(a, grid, stream);
    else if (dtype == CNX_ACT_F16)
        launch<__half>(a, grid, stream);
    else
        launch<__nv_bfloat16>(a, grid, stream);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess)
        return cnx_fail(CNX_ERROR_DEVICE,
                        "%s:%d: preprocess kernel launch (%d images, crop %d): %s", __FILE__,
                        __LINE__, n, params->crop, cudaGetErrorString(err));
    return CNX_OK;
}

extern "C" cnx_status cnx_preprocess_check_image(int width, int height,
                                                 const cnx_preprocess *params) {
    cnx_status status = check_params(params);
    if (status != CNX_OK)
        return status;
    Plan p;
    switch (make_plan(width, height, *params, &p)) {
    case kPlanOk:
        return CNX_OK;
    case kPlanBadSize:
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess (CUDA): bad image size %dx%d",
                        width, height);
    case kPlanTooLarge:
        return cnx_fail(CNX_ERROR_TOO_LARGE,
                        "preprocess (CUDA): resizing %dx%d to a short side of %d gives a long "
                        "side over %.0f pixels",
                        width, height, params->resize, CNX_MAX_RESIZED_SIDE);
    case kPlanEmpty:
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "preprocess (CUDA): resizing %dx%d to a long side of %d leaves a side of "
                        "0 pixels",
                        width, height, params->resize);
    case kPlanTooManyTaps:
        break;
    }
    return cnx_fail(CNX_ERROR_UNSUPPORTED,
                    "preprocess (CUDA): resizing %dx%d to %dx%d (%s) needs %d + %d filter taps "
                    "per pixel, over the %d that fit in a block's shared memory; use the CPU path",
                    width, height, p.rw, p.rh, filter_name(params->interpolation), p.tx, p.ty,
                    kTableWords);
}

#endif // CNX_PREPROCESS_EMULATION
