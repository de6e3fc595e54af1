/* Preprocessing on the GPU: a batch of decoded RGB8 images of any sizes to
 * the model's input tensor, in one launch. Per image it is exactly
 * cnx_preprocess_image (host/image/preprocess.c) with the same params:
 * Pillow's antialiased resize with params->interpolation (any filter but
 * NEAREST) to the crop mode's size, the center crop (crop offsets rounded as
 * params->crop_offset says; padding black, or BORDER's mean color), scaling
 * (u / 255 in fp32, or u * rescale_factor in double), then (x - mean) / std
 * in fp32 (or not, params->normalize == 0). The values are bit-identical to
 * the CPU path's fp32 values (for HAMMING and LANCZOS, which use the device's
 * sin and cos, this is unverified on a GPU: see preprocess.cu); fp16 and
 * bf16 outputs are those values rounded to nearest even.
 *
 * The packed batch (device memory, uploaded by the caller):
 *   pixels: the images' RGB8 pixels (interleaved, rows top to bottom, no
 *           padding: cnx_image.rgb) one after another, at any byte offsets
 *           (no alignment needed); pixel_bytes is the buffer's size.
 *   descs:  n cnx_image_desc (cnx.h; 16 bytes), one per image: the byte offset of its first
 *           pixel in `pixels`, its width and height.
 * The output: n images of [3, crop, crop] (CNX_LAYOUT_NCHW) or
 * [crop, crop, 3] (CNX_LAYOUT_NHWC), back to back, in dtype; this is the
 * model's input buffer, written once, every value of it.
 *
 * No scratch memory: each block keeps its coefficients and its slice of the
 * horizontal pass in shared memory, so nothing depends on the image sizes,
 * nothing is allocated, and the launch can be captured in a CUDA graph.
 *
 * An image the kernel cannot do comes out as NaN (its whole [3, crop, crop]
 * slice); the rest of the batch is unaffected. That is a descriptor with a
 * size <= 0 or pixels outside pixel_bytes, or one that
 * cnx_preprocess_check_image refuses. Call that on the host while packing
 * to keep such images out (or to send them to cnx_preprocess_image). */
#ifndef CNX_KERNELS_PREPROCESS_CUH
#define CNX_KERNELS_PREPROCESS_CUH

#include <stdint.h>

#include "cnx.h"
#include "kernel_common.cuh"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cnx_tensor_layout {
    CNX_LAYOUT_NCHW = 0, /* [n, 3, crop, crop]: torchvision's tensor */
    CNX_LAYOUT_NHWC = 1  /* [n, crop, crop, 3]: channels last */
} cnx_tensor_layout;

/* Writes the model's input for images descs[0..n-1] to out (device memory,
 * n * 3 * crop * crop values of dtype in `layout`). pixels, descs and out
 * are device pointers; out must not overlap the inputs. n may be 0 (nothing
 * is done); at most 65535 per launch. Asynchronous on `stream`: the inputs
 * must stay valid until the work is done. params is read on the host, before
 * this returns. Returns CNX_ERROR_INVALID_ARGUMENT for bad arguments,
 * CNX_ERROR_UNSUPPORTED for the NEAREST filter (both checked on the host,
 * before anything is queued, as cnx_preprocess_image checks them) and
 * CNX_ERROR_DEVICE when the launch fails; the message names the cause. */
cnx_status cnx_preprocess_forward(void *out, cnx_tensor_layout layout, cnx_act_dtype dtype,
                                  const uint8_t *pixels, uint64_t pixel_bytes,
                                  const cnx_image_desc *descs, int n,
                                  const cnx_preprocess *params, cudaStream_t stream);

/* Host only: whether cnx_preprocess_forward can do a width x height image
 * with these params. CNX_OK, or the status and message of the reason:
 * CNX_ERROR_INVALID_ARGUMENT (bad size or params), CNX_ERROR_TOO_LARGE (the
 * resized long side reaches 2^30 pixels, which the CPU path refuses too), or
 * CNX_ERROR_UNSUPPORTED: the NEAREST filter or a BORDER resize that leaves a
 * side of 0 pixels (both refused by the CPU path too), or a downscale so
 * steep that its coefficients do not fit in a block's shared memory, which
 * only the CPU path does: per axis an output pixel reads up to
 * 2 * ceil(support * in / out) + 1 input pixels (support 0.5 BOX, 1 BILINEAR
 * and HAMMING, 2 BICUBIC, 3 LANCZOS), and the two axes together must stay
 * within 6120 (a 1600x1600 image to Resize(1) is refused). No ordinary image
 * is: in CENTER mode every image under CNX_DEFAULT_MAX_PIXELS fits with
 * resize >= 5 (BOX), 9 (BILINEAR, HAMMING), 18 (BICUBIC), 27 (LANCZOS);
 * SQUASH and BORDER, which shrink by the long side, refuse only extreme
 * panoramas (at resize 224: a long side over ~160000 pixels for BORDER with
 * BICUBIC, ~340000 for SQUASH). */
cnx_status cnx_preprocess_check_image(int width, int height, const cnx_preprocess *params);

#ifdef __cplusplus
}
#endif

#endif
