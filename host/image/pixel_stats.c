/* cnx_pixel_stats_add and cnx_pixel_stats_result: the per-channel mean and
 * sample std of images' pixels (the values for Normalize), from exact
 * integer sums, of the images as decoded or after Resize and/or CenterCrop
 * exactly as cnx_preprocess_pixels does them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cnx.h"
#include "error.h"
#include "preprocess.h"
#include "resize.h"

/* Adds `count` pixels of one channel, `stride` bytes apart. Per image the
 * sums fit easily (a 2^28-pixel image sums to below 2^44). */
static void add_channel(const uint8_t *p, size_t count, size_t stride, uint64_t *sum,
                        uint64_t *sum_sq) {
    uint64_t s = 0, q = 0;
    for (size_t i = 0; i < count; i++, p += stride) {
        uint32_t u = *p;
        s += u;
        q += u * u;
    }
    *sum += s;
    *sum_sq += q;
}

/* Interleaved RGB rows (decoded or resized images) or planar channels (crops). */
static void add_pixels(cnx_pixel_stats *stats, const uint8_t *pixels, size_t count, int planar) {
    for (int c = 0; c < 3; c++) {
        if (planar)
            add_channel(pixels + (size_t)c * count, count, 1, &stats->sum[c], &stats->sum_sq[c]);
        else
            add_channel(pixels + c, count, 3, &stats->sum[c], &stats->sum_sq[c]);
    }
    stats->count += count;
}

/* Checked before any pixel is added, so that a refused image leaves the sums as they were. */
static cnx_status check_room(const cnx_pixel_stats *stats, size_t count) {
    if (stats->count > CNX_PIXEL_STATS_MAX_COUNT ||
        count > CNX_PIXEL_STATS_MAX_COUNT - stats->count)
        return cnx_fail(CNX_ERROR_TOO_LARGE, "over %llu pixels in all, the limit of exact sums",
                        (unsigned long long)CNX_PIXEL_STATS_MAX_COUNT);
    return CNX_OK;
}

/* Resize(geometric->resize) -> CenterCrop(crop): the crop, planar. CenterCrop
 * alone is a resize to the image's own short side, which torchvision's size
 * rule and Pillow leave unchanged. */
static cnx_status add_cropped(cnx_pixel_stats *stats, const cnx_image *image,
                              cnx_preprocess *geometric) {
    if (!geometric->resize) {
        geometric->resize = image->width < image->height ? image->width : image->height;
        geometric->crop_mode = CNX_CROP_MODE_CENTER; /* the image keeps its size */
    }
    CNX_TRY(preprocess_check_params(geometric));
    const int crop = geometric->crop;
    const size_t count = (size_t)crop * (size_t)crop;
    CNX_TRY(check_room(stats, count));
    uint8_t *pixels = malloc(3 * count);
    if (!pixels)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory for %dx%d pixels", crop, crop);
    cnx_status status = cnx_preprocess_pixels(image, geometric, pixels);
    if (status == CNX_OK)
        add_pixels(stats, pixels, count, 1);
    free(pixels);
    return status;
}

/* Resize(geometric->resize) alone: the whole resized image, interleaved, as
 * the crop mode sizes it. It is held whole, so its sides are limited as the
 * model's inputs are. */
static cnx_status add_resized(cnx_pixel_stats *stats, const cnx_image *image,
                              cnx_preprocess *geometric) {
    geometric->crop = geometric->resize; /* unused: any valid side passes the checks */
    CNX_TRY(preprocess_check_params(geometric));
    cnx_crop_geometry g;
    CNX_TRY(preprocess_geometry(image->width, image->height, geometric, &g));
    const int rw = g.resized_width, rh = g.resized_height;
    if (rw > CNX_MAX_SIDE || rh > CNX_MAX_SIDE)
        return cnx_fail(CNX_ERROR_TOO_LARGE,
                        "resized to %dx%d, over the %d side limit without a crop", rw, rh,
                        CNX_MAX_SIDE);
    const size_t count = (size_t)rw * (size_t)rh;
    CNX_TRY(check_room(stats, count));
    uint8_t *pixels = malloc(3 * count);
    if (!pixels)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory for %dx%d pixels", rw, rh);
    cnx_status status = cnx_resize_rgb8_window(geometric->interpolation, image->rgb,
                                               image->width, image->height, rw, rh, 0, 0, rw, rh,
                                               pixels);
    if (status == CNX_OK)
        add_pixels(stats, pixels, count, 0);
    free(pixels);
    return status;
}

cnx_status cnx_pixel_stats_add(cnx_pixel_stats *stats, const cnx_image *image,
                               const cnx_preprocess *params) {
    if (!stats)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "pixel stats: stats is NULL");
    CNX_TRY(preprocess_check_image(image));
    const int resize = params ? params->resize : 0, crop = params ? params->crop : 0;
    if (resize < 0 || crop < 0)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "pixel stats: resize and crop must be 0 (none) or positive, got %d and %d",
                        resize, crop);
    if (!resize && !crop) {
        const size_t count = (size_t)image->width * (size_t)image->height;
        CNX_TRY(check_room(stats, count));
        add_pixels(stats, image->rgb, count, 0);
        return CNX_OK;
    }
    cnx_preprocess geometric = *params; /* the filter, crop mode and crop offset */
    geometric.normalize = 0;           /* mean and std play no part */
    return crop ? add_cropped(stats, image, &geometric) : add_resized(stats, image, &geometric);
}

/* The unbiased variance from exact sums: (n * sum_sq - sum^2) / (n (n - 1)),
 * the numerator in exact integer arithmetic where the compiler has it. */
static long double variance(uint64_t n, uint64_t sum, uint64_t sum_sq) {
    if (n < 2)
        return NAN;
#ifdef __SIZEOF_INT128__
    unsigned __int128 num = (unsigned __int128)n * sum_sq - (unsigned __int128)sum * sum;
    return (long double)num / ((long double)n * (long double)(n - 1));
#else
    long double mean = (long double)sum / n;
    return ((long double)sum_sq - mean * (long double)sum) / (long double)(n - 1);
#endif
}

cnx_status cnx_pixel_stats_result(const cnx_pixel_stats *stats, double mean[3], double std[3]) {
    if (!stats || !mean || !std)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "pixel stats: stats, mean or std is NULL");
    for (int c = 0; c < 3; c++)
        mean[c] = std[c] = NAN;
    if (!stats->count)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "pixel stats: no pixels were added");
    const long double n = (long double)stats->count;
    for (int c = 0; c < 3; c++) {
        mean[c] = (double)((long double)stats->sum[c] / 255.0L / n);
        /* var of u/255 = var of u / 255^2 */
        std[c] = (double)sqrtl(variance(stats->count, stats->sum[c], stats->sum_sq[c]) /
                               (255.0L * 255.0L));
    }
    return CNX_OK;
}
