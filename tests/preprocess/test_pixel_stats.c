/* cnx_pixel_stats_add and cnx_pixel_stats_result: exact sums of known
 * pixels, which pixels each transform contributes, the result's edge cases,
 * and refusals that leave the sums unchanged. The statistics against torch
 * are test_stats.py's job (through cnx stats). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnx.h"
#include "test_check.h"

static void check_status(cnx_status got, cnx_status want, const char *what) {
    CHECK(got == want, "%s: status %d (%s), expected %d", what, (int)got, cnx_last_error(),
          (int)want);
    if (got != CNX_OK)
        CHECK(cnx_last_error()[0] != '\0', "%s: no error message", what);
}

static int same_stats(const cnx_pixel_stats *a, const cnx_pixel_stats *b) {
    return memcmp(a, b, sizeof *a) == 0;
}

static void print_stats(const char *what, const cnx_pixel_stats *s) {
    fprintf(stderr, "  %s: count %llu sum %llu %llu %llu sum_sq %llu %llu %llu\n", what,
           (unsigned long long)s->count, (unsigned long long)s->sum[0],
           (unsigned long long)s->sum[1], (unsigned long long)s->sum[2],
           (unsigned long long)s->sum_sq[0], (unsigned long long)s->sum_sq[1],
           (unsigned long long)s->sum_sq[2]);
}

static void check_stats(const cnx_pixel_stats *got, const cnx_pixel_stats *want, const char *what) {
    CHECK(same_stats(got, want), "%s: sums differ", what);
    if (!same_stats(got, want)) {
        print_stats("got", got);
        print_stats("expected", want);
    }
}

/* The test's own sums of `count` pixels, planar [3, count] or interleaved. */
static cnx_pixel_stats sums_of(const uint8_t *pixels, size_t count, int planar) {
    cnx_pixel_stats s;
    memset(&s, 0, sizeof s);
    s.count = count;
    for (size_t i = 0; i < count; i++)
        for (int c = 0; c < 3; c++) {
            uint64_t u = planar ? pixels[(size_t)c * count + i] : pixels[3 * i + (size_t)c];
            s.sum[c] += u;
            s.sum_sq[c] += u * u;
        }
    return s;
}

/* An image of seeded random pixels; free image->rgb. */
static cnx_image random_image(int w, int h, unsigned seed) {
    cnx_image image = {w, h, malloc((size_t)w * (size_t)h * 3)};
    srand(seed);
    for (size_t i = 0; i < (size_t)w * (size_t)h * 3; i++)
        image.rgb[i] = (uint8_t)(rand() >> 7);
    return image;
}

/* What cnx_preprocess_pixels outputs for params: the reference for crops. */
static cnx_pixel_stats preprocessed_sums(const cnx_image *image, const cnx_preprocess *params) {
    size_t plane = (size_t)params->crop * (size_t)params->crop;
    uint8_t *out = malloc(3 * plane);
    check_status(cnx_preprocess_pixels(image, params, out), CNX_OK, "reference crop");
    cnx_pixel_stats s = sums_of(out, plane, 1);
    free(out);
    return s;
}

static cnx_pixel_stats stats_of(const cnx_image *image, const cnx_preprocess *params,
                                const char *what) {
    cnx_pixel_stats s;
    memset(&s, 0, sizeof s);
    check_status(cnx_pixel_stats_add(&s, image, params), CNX_OK, what);
    return s;
}

/* A 3x2 image whose sums and statistics are worked out by hand. */
static void test_known_image(void) {
    uint8_t rgb[] = {0, 10, 255, 1, 20, 254, 2, 30, 253,
                     3, 40, 252, 4, 50, 251, 5, 60, 250};
    cnx_image image = {3, 2, rgb};
    const cnx_pixel_stats want = {6, {15, 210, 1515}, {55, 9100, 382555}};
    cnx_pixel_stats s = stats_of(&image, NULL, "params NULL");
    check_stats(&s, &want, "params NULL: the image as decoded");

    /* resize 0 and crop 0 are the same; normalization is not looked at. */
    cnx_preprocess p = cnx_default_preprocess();
    p.resize = p.crop = 0;
    p.std[0] = 0.0f;
    s = stats_of(&image, &p, "resize 0, crop 0");
    check_stats(&s, &want, "resize 0, crop 0");

    /* The sums run on over images. */
    check_status(cnx_pixel_stats_add(&s, &image, NULL), CNX_OK, "second image");
    const cnx_pixel_stats twice = {12, {30, 420, 3030}, {110, 18200, 765110}};
    check_stats(&s, &twice, "two images");

    /* Squared deviations from the mean, per copy: 17.5, 1750 and 17.5 (0..255 scale). */
    double mean[3], std[3];
    check_status(cnx_pixel_stats_result(&s, mean, std), CNX_OK, "result");
    const double want_mean[3] = {2.5 / 255, 35.0 / 255, 252.5 / 255};
    const double want_var[3] = {35.0 / 11, 3500.0 / 11, 35.0 / 11}; /* divisor 12 - 1 */
    for (int c = 0; c < 3; c++) {
        CHECK(fabs(mean[c] - want_mean[c]) <= 1e-15, "mean[%d] %.17g, expected %.17g", c,
              mean[c], want_mean[c]);
        double want_std = sqrt(want_var[c]) / 255;
        CHECK(fabs(std[c] - want_std) <= 1e-15, "std[%d] %.17g, expected %.17g", c, std[c],
              want_std);
    }
}

/* CenterCrop alone: the image keeps its size, whatever the crop mode. */
static void test_crop_only(void) {
    cnx_image image = random_image(6, 8, 1);
    cnx_preprocess p = cnx_default_preprocess();
    p.resize = 0;
    p.crop = 3;
    /* Offsets round(3 / 2) = 2 and round(5 / 2) = 2, half to even: x and y in 2..4. */
    uint8_t window[3 * 3 * 3];
    for (int y = 0; y < 3; y++)
        memcpy(window + y * 9, image.rgb + ((size_t)(2 + y) * 6 + 2) * 3, 9);
    cnx_pixel_stats want = sums_of(window, 9, 0);
    cnx_pixel_stats s = stats_of(&image, &p, "crop 3");
    check_stats(&s, &want, "crop 3 (round offsets)");
    p.crop_mode = CNX_CROP_MODE_BORDER; /* no resize: no border to keep the ratio of */
    s = stats_of(&image, &p, "crop 3, border mode");
    check_stats(&s, &want, "crop 3, border mode");

    /* Hugging Face's floor offsets: (6 - 3) // 2 = 1 and 5 // 2 = 2. */
    p.crop_mode = CNX_CROP_MODE_CENTER;
    p.crop_offset = CNX_CROP_OFFSET_FLOOR;
    for (int y = 0; y < 3; y++)
        memcpy(window + y * 9, image.rgb + ((size_t)(2 + y) * 6 + 1) * 3, 9);
    want = sums_of(window, 9, 0);
    s = stats_of(&image, &p, "crop 3, floor");
    check_stats(&s, &want, "crop 3 (floor offsets)");

    /* A crop larger than the image: black padding counts as pixels. */
    p.crop = 10;
    want = sums_of(image.rgb, 48, 0);
    want.count = 100;
    s = stats_of(&image, &p, "crop 10");
    check_stats(&s, &want, "crop 10 (padding)");
    free(image.rgb);
}

/* Resize alone: the whole resized image, no padding. The reference is
 * cnx_preprocess_pixels with a crop that holds it all, less the padding. */
static void test_resize_only(void) {
    static const struct {
        cnx_crop_mode mode;
        cnx_interpolation filter;
        int w, h, resize, resized_w, resized_h;
    } cases[] = {
        {CNX_CROP_MODE_CENTER, CNX_INTERPOLATION_BILINEAR, 9, 13, 5, 5, 7}, /* int(5 * 13 / 9) */
        {CNX_CROP_MODE_CENTER, CNX_INTERPOLATION_BICUBIC, 13, 9, 20, 28, 20},
        {CNX_CROP_MODE_SQUASH, CNX_INTERPOLATION_LANCZOS, 13, 9, 6, 6, 6},
        {CNX_CROP_MODE_BORDER, CNX_INTERPOLATION_BILINEAR, 8, 5, 4, 4, 2}, /* 2.5: half to even */
        {CNX_CROP_MODE_CENTER, CNX_INTERPOLATION_BOX, 9, 13, 9, 9, 13},    /* unchanged */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cnx_image image = random_image(cases[i].w, cases[i].h, 2 + (unsigned)i);
        cnx_preprocess p = cnx_default_preprocess();
        p.crop_mode = cases[i].mode;
        p.interpolation = cases[i].filter;
        p.resize = cases[i].resize;
        p.crop = 0;
        cnx_pixel_stats s = stats_of(&image, &p, "resize only");

        const int rw = cases[i].resized_w, rh = cases[i].resized_h;
        cnx_pixel_stats want;
        if (rw == image.width && rh == image.height) {
            want = sums_of(image.rgb, (size_t)rw * (size_t)rh, 0);
        } else {
            cnx_preprocess square = p;
            square.crop = rw > rh ? rw : rh;
            want = preprocessed_sums(&image, &square);
            const uint64_t padding = want.count - (uint64_t)rw * (uint64_t)rh;
            for (int c = 0; c < 3; c++) { /* black, or the mean color in border mode */
                uint64_t fill = p.crop_mode == CNX_CROP_MODE_BORDER
                                    ? (uint64_t)lround(255.0 * (double)p.mean[c]) : 0;
                want.sum[c] -= padding * fill;
                want.sum_sq[c] -= padding * fill * fill;
            }
            want.count -= padding;
        }
        char what[80];
        snprintf(what, sizeof what, "resize %d (%s, %s) of %dx%d", p.resize,
                 cnx_crop_mode_name(p.crop_mode), cnx_interpolation_name(p.interpolation),
                 image.width, image.height);
        check_stats(&s, &want, what);
        free(image.rgb);
    }
}

/* Resize then CenterCrop: exactly cnx_preprocess_pixels' output, padding included. */
static void test_resize_and_crop(void) {
    cnx_image image = random_image(17, 11, 9);
    cnx_preprocess p = cnx_default_preprocess();
    p.resize = 8;
    p.crop = 6;
    cnx_pixel_stats s = stats_of(&image, &p, "resize 8 crop 6");
    cnx_pixel_stats want = preprocessed_sums(&image, &p);
    check_stats(&s, &want, "resize 8 crop 6");
    p.crop = 10; /* padding below and above */
    p.crop_mode = CNX_CROP_MODE_BORDER;
    s = stats_of(&image, &p, "resize 8 crop 10 border");
    want = preprocessed_sums(&image, &p);
    check_stats(&s, &want, "resize 8 crop 10, border (mean-color padding)");
    free(image.rgb);
}

static void test_results(void) {
    uint8_t rgb[3] = {51, 0, 255};
    cnx_image pixel = {1, 1, rgb};
    cnx_pixel_stats s;
    memset(&s, 0, sizeof s);
    double mean[3] = {0, 0, 0}, std[3] = {0, 0, 0};
    check_status(cnx_pixel_stats_result(&s, mean, std), CNX_ERROR_INVALID_ARGUMENT, "count 0");
    for (int c = 0; c < 3; c++)
        CHECK(isnan(mean[c]) && isnan(std[c]), "count 0: mean and std NaN, got %g %g", mean[c],
              std[c]);

    check_status(cnx_pixel_stats_add(&s, &pixel, NULL), CNX_OK, "one pixel");
    check_status(cnx_pixel_stats_result(&s, mean, std), CNX_OK, "one pixel's result");
    CHECK(fabs(mean[0] - 0.2) <= 1e-16 && mean[1] == 0.0 && mean[2] == 1.0,
          "one pixel: mean %.17g %g %g",
          mean[0], mean[1], mean[2]);
    for (int c = 0; c < 3; c++)
        CHECK(isnan(std[c]), "one pixel: std[%d] %g, expected NaN (divisor 0)", c, std[c]);

    check_status(cnx_pixel_stats_result(NULL, mean, std), CNX_ERROR_INVALID_ARGUMENT, "NULL stats");
    check_status(cnx_pixel_stats_result(&s, NULL, std), CNX_ERROR_INVALID_ARGUMENT, "NULL mean");
}

/* Refusals: a status and a message, and the sums as they were. */
static void check_refused(cnx_pixel_stats *s, const cnx_image *image, const cnx_preprocess *p,
                          cnx_status want, const char *what) {
    const cnx_pixel_stats before = *s;
    check_status(cnx_pixel_stats_add(s, image, p), want, what);
    CHECK(same_stats(s, &before), "%s: the sums changed", what);
}

static void test_refusals(void) {
    cnx_image image = random_image(3, 2, 4); /* 6 pixels */
    cnx_preprocess p = cnx_default_preprocess();
    cnx_pixel_stats s;
    memset(&s, 0, sizeof s);
    check_status(cnx_pixel_stats_add(&s, &image, NULL), CNX_OK, "some pixels first");

    /* At the limit of exact sums: 6 more pixels fit exactly, 7 do not. */
    s.count = CNX_PIXEL_STATS_MAX_COUNT - 6;
    cnx_image bigger = random_image(7, 1, 5);
    check_refused(&s, &bigger, NULL, CNX_ERROR_TOO_LARGE, "7 pixels over the limit");
    p.resize = 0;
    p.crop = 3; /* 9 pixels */
    check_refused(&s, &image, &p, CNX_ERROR_TOO_LARGE, "a crop over the limit");
    p.resize = 4; /* 6x4 = 24 pixels */
    p.crop = 0;
    check_refused(&s, &image, &p, CNX_ERROR_TOO_LARGE, "a resize over the limit");
    CHECK(strstr(cnx_last_error(), "limit of exact sums") != NULL, "message: %s", cnx_last_error());
    cnx_pixel_stats before = s;
    check_status(cnx_pixel_stats_add(&s, &image, NULL), CNX_OK, "6 pixels up to the limit");
    CHECK(s.count == CNX_PIXEL_STATS_MAX_COUNT && s.sum[0] > before.sum[0],
          "at the limit: count %llu", (unsigned long long)s.count);
    cnx_image one = {1, 1, image.rgb};
    check_refused(&s, &one, NULL, CNX_ERROR_TOO_LARGE, "1 pixel past the limit");
    free(bigger.rgb);

    /* Bad arguments. */
    memset(&s, 0, sizeof s);
    check_status(cnx_pixel_stats_add(NULL, &image, NULL), CNX_ERROR_INVALID_ARGUMENT, "NULL stats");
    check_refused(&s, NULL, NULL, CNX_ERROR_INVALID_ARGUMENT, "NULL image");
    cnx_image no_pixels = {3, 2, NULL};
    check_refused(&s, &no_pixels, NULL, CNX_ERROR_INVALID_ARGUMENT, "no pixels");
    cnx_image empty = {0, 2, image.rgb};
    check_refused(&s, &empty, NULL, CNX_ERROR_INVALID_ARGUMENT, "width 0");
    p = cnx_default_preprocess();
    p.resize = -1;
    p.crop = 0;
    check_refused(&s, &image, &p, CNX_ERROR_INVALID_ARGUMENT, "resize -1");
    p.resize = 0;
    p.crop = -3;
    check_refused(&s, &image, &p, CNX_ERROR_INVALID_ARGUMENT, "crop -3");
    p.resize = 4;
    p.crop = 0;
    p.interpolation = CNX_INTERPOLATION_NEAREST;
    check_refused(&s, &image, &p, CNX_ERROR_UNSUPPORTED, "nearest, resize only");
    p.crop = 2;
    check_refused(&s, &image, &p, CNX_ERROR_UNSUPPORTED, "nearest, with a crop");

    /* Resize alone keeps the whole resized image: its sides are limited. */
    cnx_image strip = random_image(1, 4, 6);
    p = cnx_default_preprocess();
    p.resize = CNX_MAX_SIDE; /* 16384 x 65536 */
    p.crop = 0;
    check_refused(&s, &strip, &p, CNX_ERROR_TOO_LARGE, "resized past CNX_MAX_SIDE");
    CHECK(strstr(cnx_last_error(), "16384x65536") != NULL, "message: %s", cnx_last_error());
    p.crop_mode = CNX_CROP_MODE_BORDER; /* the long side to 1: the short one 0.25, so 0 */
    p.resize = 1;
    check_refused(&s, &strip, &p, CNX_ERROR_UNSUPPORTED, "border resize to a side of 0");
    free(strip.rgb);
    free(image.rgb);
}

int main(void) {
    test_known_image();
    test_crop_only();
    test_resize_only();
    test_resize_and_crop();
    test_results();
    test_refusals();
    return test_summary();
}
