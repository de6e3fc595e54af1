/* Preprocessing on the GPU: a batch of decoded RGB8 images of any sizes to
 * the model's input tensor, in one launch. Per image it is exactly
 * cnx_preprocess_image (host/image/preprocess.c): Pillow's antialiased BILINEAR
 * Resize(short side -> resize), CenterCrop(crop) with zero padding, x / 255,
 * then (x - mean) / std in fp32 (or not, params->normalize == 0). The values
 * are bit-identical to the CPU path's fp32 values; fp16 and bf16 outputs are
 * those values rounded to nearest even.
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
 * this returns. Returns CNX_ERROR_INVALID_ARGUMENT for bad arguments (checked
 * on the host, before anything is queued) and CNX_ERROR_DEVICE when the
 * launch fails; the message names the cause. */
cnx_status cnx_preprocess_forward(void *out, cnx_tensor_layout layout, cnx_act_dtype dtype,
                                  const uint8_t *pixels, uint64_t pixel_bytes,
                                  const cnx_image_desc *descs, int n,
                                  const cnx_preprocess *params, cudaStream_t stream);

/* Host only: whether cnx_preprocess_forward can do a width x height image
 * with these params. CNX_OK, or the status and message of the reason:
 * CNX_ERROR_INVALID_ARGUMENT (bad size or params), CNX_ERROR_TOO_LARGE (the
 * resized long side reaches 2^30 pixels, which the CPU path refuses too), or
 * CNX_ERROR_UNSUPPORTED: a downscale so steep (the filter of one output pixel
 * spans thousands of input pixels, e.g. a 1600x1600 image to Resize(1)) that
 * its coefficients do not fit in a block's shared memory; the CPU path does
 * those. No ordinary image is refused: with resize >= 9, every image under
 * CNX_DEFAULT_MAX_PIXELS fits. */
cnx_status cnx_preprocess_check_image(int width, int height, const cnx_preprocess *params);

#ifdef __cplusplus
}
#endif

#endif
