/* The preprocessing API's argument checks, the per-pixel rules of
 * kernels/pillow_resample.h, and the resize window's consistency. The
 * bit-exactness against Pillow is test_preprocess.py's job. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnx.h"
#include "pillow_resample.h"
#include "resize.h"

static int passed, failed;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) {                                                        \
            passed++;                                                      \
        } else {                                                           \
            failed++;                                                      \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                    \
            printf(__VA_ARGS__);                                           \
            printf("\n");                                                  \
        }                                                                  \
    } while (0)

static void check_status(cnx_status got, cnx_status want, const char *what) {
    CHECK(got == want, "%s: status %d (%s), expected %d", what, (int)got, cnx_last_error(), (int)want);
    if (got != CNX_OK)
        CHECK(cnx_last_error()[0] != '\0', "%s: no error message", what);
}

static void test_arguments(void) {
    uint8_t rgb[4 * 5 * 3] = {0};
    cnx_image image = {4, 5, rgb};
    cnx_preprocess p = cnx_default_preprocess();
    p.resize = 4;
    p.crop = 3;
    uint8_t pixels[3 * 3 * 3];
    float values[3 * 3 * 3];

    check_status(cnx_preprocess_pixels(&image, &p, pixels), CNX_OK, "valid pixels");
    check_status(cnx_preprocess_image(&image, &p, values), CNX_OK, "valid image");
    check_status(cnx_preprocess_pixels(NULL, &p, pixels), CNX_ERROR_INVALID_ARGUMENT, "NULL image");
    check_status(cnx_preprocess_pixels(&image, NULL, pixels), CNX_ERROR_INVALID_ARGUMENT, "NULL params");
    check_status(cnx_preprocess_pixels(&image, &p, NULL), CNX_ERROR_INVALID_ARGUMENT, "NULL out");
    check_status(cnx_preprocess_image(&image, &p, NULL), CNX_ERROR_INVALID_ARGUMENT, "NULL float out");

    cnx_image no_pixels = {4, 5, NULL};
    check_status(cnx_preprocess_pixels(&no_pixels, &p, pixels), CNX_ERROR_INVALID_ARGUMENT, "NULL rgb");
    cnx_image zero = {0, 5, rgb};
    check_status(cnx_preprocess_pixels(&zero, &p, pixels), CNX_ERROR_INVALID_ARGUMENT, "zero width");
    cnx_image negative = {4, -1, rgb};
    check_status(cnx_preprocess_image(&negative, &p, values), CNX_ERROR_INVALID_ARGUMENT, "negative height");

    cnx_preprocess q = p;
    q.crop = 0;
    check_status(cnx_preprocess_pixels(&image, &q, pixels), CNX_ERROR_INVALID_ARGUMENT, "crop 0");
    q = p;
    q.resize = -2;
    check_status(cnx_preprocess_image(&image, &q, values), CNX_ERROR_INVALID_ARGUMENT, "resize -2");
    q = p;
    q.std[1] = 0.0f;
    check_status(cnx_preprocess_image(&image, &q, values), CNX_ERROR_INVALID_ARGUMENT, "std 0");
    q.std[1] = -0.5f;
    check_status(cnx_preprocess_image(&image, &q, values), CNX_ERROR_INVALID_ARGUMENT, "std < 0");
    q.std[1] = NAN;
    check_status(cnx_preprocess_image(&image, &q, values), CNX_ERROR_INVALID_ARGUMENT, "std NaN");
    q.normalize = 0; /* mean and std are unused then */
    check_status(cnx_preprocess_image(&image, &q, values), CNX_OK, "std ignored without normalize");
    q = p;
    q.mean[2] = INFINITY;
    check_status(cnx_preprocess_image(&image, &q, values), CNX_ERROR_INVALID_ARGUMENT, "mean inf");

    /* A 1-pixel-wide strip whose resized long side would not fit. */
    uint8_t *strip = calloc(100000 * 3, 1);
    cnx_image tall = {1, 100000, strip};
    q = p;
    q.resize = 16384;
    check_status(cnx_preprocess_pixels(&tall, &q, pixels), CNX_ERROR_TOO_LARGE, "resized side too large");
    free(strip);
}

static void test_rules(void) {
    /* Python: int(round((size - crop) / 2.0)), half to even. */
    static const int cases[][3] = {
        {224, 224, 0}, {225, 224, 0}, {226, 224, 1}, {227, 224, 2}, {229, 224, 2},
        {231, 224, 4}, {233, 224, 4}, {236, 224, 6}, {237, 224, 6}, {239, 224, 8},
        /* padding: torchvision pads (crop - size) // 2 before */
        {223, 224, 0}, {222, 224, -1}, {221, 224, -1}, {1, 224, -111}, {5, 7, -1}, {6, 9, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(cnx_center_crop_offset(cases[i][0], cases[i][1]) == cases[i][2],
              "center crop offset(%d, %d) = %d, expected %d", cases[i][0], cases[i][1],
              cnx_center_crop_offset(cases[i][0], cases[i][1]), cases[i][2]);

    /* Hugging Face: (size - crop) // 2, floor division, padding included. */
    static const int floor_cases[][3] = {
        {224, 224, 0}, {225, 224, 0}, {227, 224, 1}, {229, 224, 2}, {231, 224, 3},
        {223, 224, -1}, {222, 224, -1}, {221, 224, -2}, {1, 224, -112}, {6, 9, -2},
    };
    for (size_t i = 0; i < sizeof floor_cases / sizeof floor_cases[0]; i++) {
        int got = cnx_center_crop_offset_floor(floor_cases[i][0], floor_cases[i][1]);
        CHECK(got == floor_cases[i][2], "floor crop offset(%d, %d) = %d, expected %d",
              floor_cases[i][0], floor_cases[i][1], got, floor_cases[i][2]);
    }

    /* timm's ResizeKeepRatio(S, longest=1): round(side / max ratio), half to even. */
    static const int longest[][5] = {
        {640, 427, 256, 256, 171}, {427, 640, 256, 171, 256}, {512, 512, 224, 224, 224},
        {3, 1000, 256, 1, 256}, /* 0.768 rounds to 1 */ {5, 2, 4, 4, 2}, /* 1.6 */
        {10, 3, 4, 4, 1}, /* 1.2 */ {8, 3, 4, 4, 2}, /* 1.5: half to even */
        {8, 5, 4, 4, 2}, /* 2.5: half to even */ {1000, 1, 256, 256, 0}, /* 0.256 */
    };
    for (size_t i = 0; i < sizeof longest / sizeof longest[0]; i++) {
        int w, h;
        cnx_resize_longest_size(longest[i][0], longest[i][1], longest[i][2], &w, &h);
        CHECK(w == longest[i][3] && h == longest[i][4],
              "longest side of %dx%d to %d: %dx%d, expected %dx%d", longest[i][0],
              longest[i][1], longest[i][2], w, h, longest[i][3], longest[i][4]);
    }
    cnx_preprocess border = cnx_default_preprocess();
    border.crop_mode = CNX_CROP_MODE_BORDER;
    cnx_crop_geometry g;
    CHECK(cnx_crop_geometry_make(1000, 1, &border, &g) == CNX_GEOMETRY_EMPTY,
          "border mode refuses a side that rounds to 0");
    CHECK(cnx_crop_geometry_make(640, 427, &border, &g) == CNX_GEOMETRY_OK &&
              g.fill[0] == 124 && g.fill[1] == 116 && g.fill[2] == 104,
          "border fill is round(255 * ImageNet mean): %d %d %d", g.fill[0], g.fill[1], g.fill[2]);

    /* torchvision: short side -> S, long -> int(S * long / short). */
    static const int sizes[][5] = {
        {640, 427, 236, 353, 236}, {427, 640, 236, 236, 353}, {512, 512, 236, 236, 236},
        {2400, 160, 236, 3540, 236}, {451, 300, 236, 354, 236}, {1, 1, 236, 236, 236},
        {50, 70, 236, 236, 330}, {600, 3, 236, 47200, 236}, {300, 236, 236, 300, 236},
        {333, 999, 10, 10, 30}, /* 10 * 999 / 333 = 30 exactly */
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int w, h;
        cnx_resize_output_size(sizes[i][0], sizes[i][1], sizes[i][2], &w, &h);
        CHECK(w == sizes[i][3] && h == sizes[i][4], "resize %dx%d to %d: %dx%d, expected %dx%d",
              sizes[i][0], sizes[i][1], sizes[i][2], w, h, sizes[i][3], sizes[i][4]);
    }

    /* Coefficients: non-negative, within max taps; an unchanged axis is the identity. */
    cnx_resample_axis same = cnx_resample_axis_make(CNX_INTERPOLATION_BILINEAR, 17, 17);
    for (int i = 0; i < 17; i++) {
        int32_t k[8] = {0};
        int xmin, n = cnx_resample_coeffs(&same, i, &xmin, k);
        CHECK(xmin == i && k[0] == (1 << 22) && (n == 1 || k[1] == 0),
              "identity axis pixel %d: xmin %d n %d k0 %d", i, xmin, n, k[0]);
    }
    cnx_resample_axis down = cnx_resample_axis_make(CNX_INTERPOLATION_BILINEAR, 4000, 236);
    int32_t *k = malloc(sizeof *k * (size_t)cnx_resample_max_taps(&down));
    for (int i = 0; i < 236; i++) {
        int xmin, n = cnx_resample_coeffs(&down, i, &xmin, k);
        long sum = 0;
        for (int t = 0; t < n; t++)
            sum += k[t];
        CHECK(n <= cnx_resample_max_taps(&down) && xmin >= 0 && xmin + n <= 4000 &&
                  labs(sum - (1L << 22)) <= n,
              "downscale pixel %d: xmin %d n %d sum %ld", i, xmin, n, sum);
    }
    free(k);

    CHECK(cnx_resample_clip8(CNX_RESAMPLE_ROUND_INIT + 255 * (1 << 22) + 100) == 255, "clip high");
    CHECK(cnx_resample_clip8(-(1 << 22)) == 0, "clip low");
    CHECK(cnx_normalize_pixel(255, 0.0, 0.5f, 0.25f, 1) == 2.0f, "normalize 255");
    CHECK(cnx_normalize_pixel(51, 0.0, 0.0f, 1.0f, 0) == 51.0f / 255.0f, "scale only");
    CHECK(cnx_normalize_pixel(51, 1.0, 0.0f, 1.0f, 0) == 51.0f, "rescale by 1");
    CHECK(cnx_normalize_pixel(51, 1.0 / 255.0, 0.0f, 1.0f, 0) == (float)(51.0 / 255.0),
          "rescale in double");
}

/* A window of the resize equals the same pixels of the whole resize, for
 * downscales, upscales and single-axis changes (skipped passes), with each
 * filter. */
static void test_windows(cnx_interpolation filter) {
    static const int cases[][4] = {
        {97, 61, 40, 25}, {13, 9, 50, 31}, {40, 30, 40, 70}, {40, 30, 90, 30}, {64, 64, 64, 64},
        {200, 7, 23, 300},
    };
    srand(5);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int sw = cases[c][0], sh = cases[c][1], dw = cases[c][2], dh = cases[c][3];
        uint8_t *src = malloc((size_t)sw * sh * 3), *full = malloc((size_t)dw * dh * 3);
        uint8_t *win = malloc((size_t)dw * dh * 3);
        for (int i = 0; i < sw * sh * 3; i++)
            src[i] = (uint8_t)(rand() >> 7);
        CHECK(cnx_resize_rgb8_window(filter, src, sw, sh, dw, dh, 0, 0, dw, dh, full) == CNX_OK, "full resize");
        int x0 = dw / 3, y0 = dh / 4, ww = dw - x0 - dw / 5, wh = dh - y0 - 1;
        if (ww < 1) ww = 1;
        if (wh < 1) wh = 1;
        CHECK(cnx_resize_rgb8_window(filter, src, sw, sh, dw, dh, x0, y0, ww, wh, win) == CNX_OK, "window resize");
        int diff = 0;
        for (int y = 0; y < wh; y++)
            diff += memcmp(win + (size_t)y * ww * 3, full + ((size_t)(y0 + y) * dw + x0) * 3,
                           (size_t)ww * 3) != 0;
        CHECK(diff == 0, "%s %dx%d -> %dx%d: %d window rows differ",
              cnx_interpolation_name(filter), sw, sh, dw, dh, diff);
        CHECK(cnx_resize_rgb8_window(filter, src, sw, sh, dw, dh, dw - ww + 1, 0, ww, wh, win) ==
                  CNX_ERROR_INVALID_ARGUMENT, "window outside the output");
        free(src);
        free(full);
        free(win);
    }
}

int main(void) {
    test_arguments();
    test_rules();
    for (int f = CNX_INTERPOLATION_BILINEAR; f < CNX_INTERPOLATION_NEAREST; f++)
        test_windows((cnx_interpolation)f);
    uint8_t pixel[3] = {0}, out[3];
    CHECK(cnx_resize_rgb8_window(CNX_INTERPOLATION_NEAREST, pixel, 1, 1, 2, 2, 0, 0, 1, 1, out) ==
              CNX_ERROR_UNSUPPORTED, "nearest is refused");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
