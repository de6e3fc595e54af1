/* cnx_preprocess_pixels and cnx_preprocess_image: torchvision's
 * Resize(resize, filter) -> CenterCrop(crop) -> ToTensor -> Normalize on the
 * CPU, bit for bit, and the variants timm and Hugging Face run (crop modes,
 * crop offsets, rescaling; see kernels/pillow_resample.h for the rules
 * matched). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cnx.h"
#include "error.h"
#include "pillow_resample.h"
#include "preprocess.h"
#include "resize.h"

/* Sides above CNX_MAX_SIDE are refused (cnx.h): far beyond any real use,
 * small enough that no index or size computation here can overflow, and
 * refused before a batch's buffers are sized by them. */
#define MAX_SIDE CNX_MAX_SIDE

static cnx_status check_image(const cnx_image *image) {
    if (!image)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess: image is NULL");
    if (!image->rgb)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess: image has no pixels (rgb is NULL)");
    if (image->width <= 0 || image->height <= 0)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess: bad image size %dx%d",
                        image->width, image->height);
    return CNX_OK;
}

static cnx_status check_sizes(const cnx_preprocess *params) {
    if (!params)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess: params is NULL");
    if (params->resize <= 0 || params->resize > MAX_SIDE)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess: resize must be in 1..%d, got %d",
                        MAX_SIDE, params->resize);
    if (params->crop <= 0 || params->crop > MAX_SIDE)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess: crop must be in 1..%d, got %d",
                        MAX_SIDE, params->crop);
    return CNX_OK;
}

static cnx_status check_normalization(const cnx_preprocess *params) {
    if (!params->normalize)
        return CNX_OK;
    for (int c = 0; c < 3; c++) {
        if (!isfinite(params->mean[c]))
            return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess: mean[%d] is not finite", c);
        if (!(params->std[c] > 0) || !isfinite(params->std[c]))
            return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                            "preprocess: std[%d] must be positive and finite, got %g", c,
                            (double)params->std[c]);
    }
    return CNX_OK;
}

static cnx_status check_choices(const cnx_preprocess *params) {
    const char *problem = cnx_preprocess_choice_error(params);
    if (problem)
        return cnx_fail(params->interpolation == CNX_INTERPOLATION_NEAREST
                            ? CNX_ERROR_UNSUPPORTED : CNX_ERROR_INVALID_ARGUMENT,
                        "preprocess: %s", problem);
    return CNX_OK;
}

static cnx_status check_params(const cnx_preprocess *params) {
    cnx_status status = check_sizes(params);
    if (status == CNX_OK)
        status = check_choices(params);
    return status == CNX_OK ? check_normalization(params) : status;
}

cnx_status preprocess_check_params(const cnx_preprocess *params) {
    return check_params(params);
}

cnx_status preprocess_check_image(const cnx_image *image) {
    return check_image(image);
}

cnx_status preprocess_geometry(int width, int height, const cnx_preprocess *params,
                               cnx_crop_geometry *g) {
    switch (cnx_crop_geometry_make(width, height, params, g)) {
    case CNX_GEOMETRY_OK:
        break;
    case CNX_GEOMETRY_TOO_LARGE:
        return cnx_fail(CNX_ERROR_TOO_LARGE,
                        "preprocess: resizing %dx%d to a short side of %d gives a long side over "
                        "%.0f pixels",
                        width, height, params->resize, CNX_MAX_RESIZED_SIDE);
    case CNX_GEOMETRY_EMPTY:
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "preprocess: resizing %dx%d to a long side of %d leaves a side of 0 "
                        "pixels", width, height, params->resize);
    }
    return CNX_OK;
}

cnx_status cnx_preprocess_pixels(const cnx_image *image, const cnx_preprocess *params,
                                 uint8_t *out) {
    cnx_status status;
    if ((status = check_image(image)) != CNX_OK || (status = check_sizes(params)) != CNX_OK ||
        (status = check_choices(params)) != CNX_OK)
        return status;
    if (!out)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess: output buffer is NULL");

    const int w = image->width, h = image->height, crop = params->crop;
    cnx_crop_geometry g;
    CNX_TRY(preprocess_geometry(w, h, params, &g));
    const int rw = g.resized_width, rh = g.resized_height;

    /* CenterCrop: crop pixel i reads resized pixel off + i; outside is padding. */
    const int ox = g.offset_x, oy = g.offset_y;
    const int wx0 = ox > 0 ? ox : 0, wy0 = oy > 0 ? oy : 0;
    const int wx1 = ox + crop < rw ? ox + crop : rw, wy1 = oy + crop < rh ? oy + crop : rh;
    const int win_w = wx1 - wx0, win_h = wy1 - wy0; /* >= 1: the crop overlaps the image */

    uint8_t *window = malloc((size_t)win_w * (size_t)win_h * 3);
    if (!window)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "preprocess: out of memory for a %dx%d window",
                        win_w, win_h);
    status = cnx_resize_rgb8_window(params->interpolation, image->rgb, w, h, rw, rh, wx0, wy0,
                                    win_w, win_h, window);
    if (status != CNX_OK) {
        free(window);
        return status;
    }

    const size_t plane = (size_t)crop * (size_t)crop;
    const int px0 = wx0 - ox, py0 = wy0 - oy; /* where the window lands in the crop */
    if (win_w != crop || win_h != crop) /* padding: black, or timm's mean color */
        for (int c = 0; c < 3; c++)
            memset(out + (size_t)c * plane, g.fill[c], plane);
    for (int y = 0; y < win_h; y++) {
        const uint8_t *src = window + (size_t)y * (size_t)win_w * 3;
        size_t row = (size_t)(py0 + y) * (size_t)crop + (size_t)px0;
        uint8_t *r = out + row, *g = out + plane + row, *b = out + 2 * plane + row;
        for (int x = 0; x < win_w; x++) {
            r[x] = src[3 * x + 0];
            g[x] = src[3 * x + 1];
            b[x] = src[3 * x + 2];
        }
    }
    free(window);
    return CNX_OK;
}

cnx_status cnx_preprocess_image(const cnx_image *image, const cnx_preprocess *params,
                                float *out) {
    cnx_status status;
    if ((status = check_image(image)) != CNX_OK || (status = check_params(params)) != CNX_OK)
        return status;
    if (!out)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "preprocess: output buffer is NULL");

    const size_t plane = (size_t)params->crop * (size_t)params->crop;
    uint8_t *pixels = malloc(3 * plane);
    if (!pixels)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "preprocess: out of memory for a %dx%d crop",
                        params->crop, params->crop);
    if ((status = cnx_preprocess_pixels(image, params, pixels)) != CNX_OK) {
        free(pixels);
        return status;
    }
    /* Padding pixels are pixel values before ToTensor, so they normalize alike. */
    for (int c = 0; c < 3; c++) {
        float table[256];
        for (int u = 0; u < 256; u++)
            table[u] = cnx_normalize_pixel((uint8_t)u, params->rescale_factor, params->mean[c],
                                           params->std[c], params->normalize);
        const uint8_t *src = pixels + (size_t)c * plane;
        float *dst = out + (size_t)c * plane;
        for (size_t i = 0; i < plane; i++)
            dst[i] = table[src[i]];
    }
    free(pixels);
    return CNX_OK;
}
