/* cnx stats: per-channel mean and std of a set of images, on the [0,1] scale,
 * as the lecture computes "statistics from the training set":
 *   x = torch.stack([ToTensor()(img) for img in images])   # [N, 3, H, W]
 *   x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))             # std unbiased
 * Images of different sizes are pooled pixel by pixel (every pixel weighs the
 * same), which is what the stacked form computes when the sizes agree. */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnx.h"
#include "commands.h"
#include "inputs.h"
#include "json_output.h"
#include "preprocess_flags.h"
#include "report.h"
#include "progress.h"

static const char stats_usage[] =
    "usage: cnx stats [-w W.safetensors|DIR [--test-size]] [--resize N | --crop-pct P] [--crop N]\n"
    "                 [--interpolation F] [--crop-mode M] [--crop-offset R] [--json] IMAGE|DIR ...\n"
    "\n"
    "Per-channel (R, G, B) mean and std of all pixels of all images, on the [0,1]\n"
    "scale (u/255): the values for --mean and --std. std is the sample standard\n"
    "deviation (torch.std's default, divisor count - 1). Every pixel counts once, so\n"
    "larger images weigh more. The sums are exact integers; rounding happens once.\n"
    "Directories are read recursively (.png, .jpg, .jpeg).\n"
    "\n"
    "By default the images are used as decoded, full size, every pixel. With a\n"
    "transform the statistics are of what the transform outputs:\n"
    "  --resize N         Resize(N, bilinear) first (short side to N), as torchvision\n"
    "  --crop-pct P       resize to floor(crop / P) instead (needs a crop)\n"
    "  --crop N           then CenterCrop(N); padding, where the image is smaller\n"
    "                     than the crop, counts as pixels, as it does in torch\n"
    "  --interpolation F  the resize's Pillow filter: bilinear (default), bicubic,\n"
    "                     box, hamming, lanczos\n"
    "  --crop-mode M      center (default), squash or border (border needs --crop)\n"
    "  --crop-offset R    round (default) or floor, for odd crop margins\n"
    "  -w, --weights W    all of the above as the weights file (or checkpoint\n"
    "                     folder) carries them; the flags override them\n"
    "  --test-size        with -w, timm's test_input_size and test_crop_pct\n"
    "  --json             print one JSON object instead of text\n"
    "  -h, --help         show this help\n"
    "\n"
    "Text output ends with two lines to paste into cnx or convert_weights.py:\n"
    "  --mean R,G,B\n"
    "  --std R,G,B\n"
    "An image that cannot be read gets a one-line error on stderr and is left out.\n"
    "Exit status: 0 all images used, 1 some failed (or none could be read), 2 usage\n"
    "or weights error.\n";

/* The exact running sums: per channel, sum of u and of u^2 over all pixels.
 * Bounds: a pixel adds at most 255 and 255^2 = 65025, so uint64 holds
 * 2^64 / 65025 = 2.8e14 pixels per channel before sum_sq could overflow: a
 * million 4K images (3840 x 2160, 8.3e12 pixels) fill 3% of it. Larger inputs
 * are refused rather than wrapped (see add_pixels). */
typedef struct stats_sums {
    uint64_t count; /* pixels per channel */
    uint64_t sum[3];
    uint64_t sum_sq[3];
} stats_sums;

#define MAX_STATS_PIXELS (UINT64_MAX / 65025u)

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

/* Interleaved RGB rows (the decoded image) or planar channels. */
static int add_pixels(stats_sums *st, const uint8_t *pixels, size_t count, int planar) {
    if (count > MAX_STATS_PIXELS - st->count)
        return -1;
    for (int c = 0; c < 3; c++) {
        if (planar)
            add_channel(pixels + (size_t)c * count, count, 1, &st->sum[c], &st->sum_sq[c]);
        else
            add_channel(pixels + c, count, 3, &st->sum[c], &st->sum_sq[c]);
    }
    st->count += count;
    return 0;
}

/* Resize only: torchvision's Resize output size (the rule of
 * kernels/pillow_resample.h: short side to n, long side int(n * long / short)). */
static void resized_size(int w, int h, int n, int *rw, int *rh) {
    int w_is_short = w <= h;
    double shorter = w_is_short ? w : h, longer = w_is_short ? h : w;
    double l = (double)n * longer / shorter;
    int new_long = l < 2147483647.0 ? (int)l : 2147483647;
    *rw = w_is_short ? n : new_long;
    *rh = w_is_short ? new_long : n;
}

/* The transformed image's pixels, planar, through the public API: Resize
 * and/or CenterCrop as cnx_preprocess_pixels does them. Resize alone is a
 * square crop large enough to hold the whole resized image, of which only the
 * unpadded part is kept; CenterCrop alone is a resize to the image's own short
 * side, which torchvision's size rule and Pillow leave unchanged.
 * Returns 0, or -1 with the cause in error. */
static int transform(const cnx_image *image, const cnx_preprocess *choices, int resize, int crop,
                     uint8_t **out, int *out_w, int *out_h, char *error, size_t error_size) {
    cnx_preprocess params = *choices; /* the filter, crop mode and crop offset */
    params.normalize = 0;
    int w = image->width, h = image->height;
    params.resize = resize ? resize : (w < h ? w : h);
    if (!resize)
        params.crop_mode = CNX_CROP_MODE_CENTER; /* crop only: the image keeps its size */
    int keep_w, keep_h;
    if (crop) {
        params.crop = crop;
        keep_w = keep_h = crop;
    } else {
        if (params.crop_mode == CNX_CROP_MODE_SQUASH)
            keep_w = keep_h = params.resize;
        else
            resized_size(w, h, params.resize, &keep_w, &keep_h);
        if (keep_w > CNX_MAX_SIDE || keep_h > CNX_MAX_SIDE) {
            snprintf(error, error_size, "resized to %dx%d, over the %d limit of cnx stats "
                     "without --crop", keep_w, keep_h, CNX_MAX_SIDE);
            return -1;
        }
        params.crop = keep_w > keep_h ? keep_w : keep_h;
        params.crop_offset = CNX_CROP_OFFSET_ROUND; /* the padding compacted away below */
    }
    size_t plane = (size_t)params.crop * (size_t)params.crop;
    uint8_t *square = malloc(3 * plane);
    if (!square) {
        snprintf(error, error_size, "out of memory for %dx%d pixels", params.crop, params.crop);
        return -1;
    }
    if (cnx_preprocess_pixels(image, &params, square) != CNX_OK) {
        snprintf(error, error_size, "%s", cnx_last_error());
        free(square);
        return -1;
    }
    if (keep_w != params.crop || keep_h != params.crop) {
        /* Compact the resized image out of the padded square. The padding
         * before it is (crop - side) // 2 on each axis, as torchvision pads. */
        int left = (params.crop - keep_w) / 2, top = (params.crop - keep_h) / 2;
        uint8_t *dst = square;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < keep_h; y++) {
                memmove(dst, square + (size_t)c * plane + (size_t)(top + y) * params.crop + left,
                        (size_t)keep_w);
                dst += keep_w;
            }
    }
    *out = square;
    *out_w = keep_w;
    *out_h = keep_h;
    return 0;
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

static void print_triple(FILE *out, const char *flag, const double v[3]) {
    fprintf(out, "%s %.8f,%.8f,%.8f\n", flag, v[0], v[1], v[2]);
}

int cmd_stats(int argc, char **argv) {
    static const struct option long_options[] = {
        {"weights", required_argument, NULL, 'w'},
        {"resize", required_argument, NULL, OPTION_RESIZE},
        {"crop", required_argument, NULL, OPTION_CROP},
        {"crop-pct", required_argument, NULL, OPTION_CROP_PCT},
        {"interpolation", required_argument, NULL, OPTION_INTERPOLATION},
        {"crop-mode", required_argument, NULL, OPTION_CROP_MODE},
        {"crop-offset", required_argument, NULL, OPTION_CROP_OFFSET},
        {"test-size", no_argument, NULL, OPTION_TEST_SIZE},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *weights = NULL;
    int json = 0;
    preprocess_overrides overrides;
    memset(&overrides, 0, sizeof overrides);

    optind = 1;
    opterr = 0;
    int option;
    while ((option = getopt_long(argc, argv, ":w:h", long_options, NULL)) != -1) {
        switch (option) {
        case 'w': weights = optarg; break;
        case 'j': json = 1; break;
        case 'h': fputs(stats_usage, stdout); return EXIT_ALL_OK;
        case OPTION_RESIZE:
        case OPTION_CROP:
        case OPTION_CROP_PCT:
        case OPTION_INTERPOLATION:
        case OPTION_CROP_MODE:
        case OPTION_CROP_OFFSET:
        case OPTION_TEST_SIZE:
            if (preprocess_overrides_parse(&overrides, option, optarg) < 0)
                return EXIT_USAGE;
            break;
        case ':':
            fprintf(stderr, "cnx stats: %s needs a value\n", argv[optind - 1]);
            fprintf(stderr, "try 'cnx stats --help'\n");
            return EXIT_USAGE;
        default:
            fprintf(stderr, "cnx stats: unknown option '%s'\n", argv[optind - 1]);
            fprintf(stderr, "try 'cnx stats --help'\n");
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "cnx stats: no images given\n");
        fprintf(stderr, "try 'cnx stats --help'\n");
        return EXIT_USAGE;
    }

    /* Without weights or flags, nothing is applied: resize and crop 0. */
    cnx_preprocess choices = cnx_default_preprocess();
    if (weights && preprocess_from_weights(weights, overrides.use_test_size, &choices) != 0)
        return EXIT_USAGE;
    if (overrides.crop_pct > 0 && !weights && !overrides.have_crop) {
        fprintf(stderr, "cnx stats: --crop-pct needs a crop (--crop or -w)\n");
        return EXIT_USAGE;
    }
    if (preprocess_overrides_apply(&overrides, &choices) != 0)
        return EXIT_USAGE;
    int resize = weights || overrides.have_resize || overrides.crop_pct > 0 ? choices.resize : 0;
    int crop = weights || overrides.have_crop ? choices.crop : 0;
    if (choices.crop_mode == CNX_CROP_MODE_BORDER && !crop) {
        fprintf(stderr, "cnx stats: --crop-mode border needs a crop (--crop or -w)\n");
        return EXIT_USAGE;
    }

    input_list inputs;
    if (inputs_expand(argv + optind, argc - optind, image_extensions, &inputs) != 0) {
        fprintf(stderr, "cnx: out of memory listing the inputs\n");
        return EXIT_SOME_FAILED;
    }

    stats_sums st;
    memset(&st, 0, sizeof st);
    size_t used = 0, failed = 0;
    progress bar;
    progress_start(&bar, inputs.count, "images");
    for (size_t i = 0; i < inputs.count; i++) {
        const char *path = inputs.paths[i];
        cnx_image image = {0, 0, NULL};
        int ok = 0;
        if (cnx_image_decode_file(path, 0, &image) != CNX_OK) {
            progress_finish(&bar);
            report_failure(path);
        } else {
            uint8_t *pixels = NULL;
            int w = image.width, h = image.height;
            if (resize || crop) {
                char error[512];
                ok = transform(&image, &choices, resize, crop, &pixels, &w, &h, error,
                               sizeof error) == 0;
                if (!ok) {
                    progress_finish(&bar);
                    fprintf(stderr, "cnx: %s: %s\n", path, error);
                }
            } else {
                ok = 1;
            }
            if (ok && add_pixels(&st, pixels ? pixels : image.rgb, (size_t)w * (size_t)h,
                                 pixels != NULL) != 0) {
                progress_finish(&bar);
                fprintf(stderr, "cnx: %s: over %llu pixels in all, the limit of exact sums\n",
                        path, (unsigned long long)MAX_STATS_PIXELS);
                ok = 0;
            }
            free(pixels);
            cnx_image_free(&image);
        }
        if (ok)
            used++;
        else
            failed++;
        progress_update(&bar, i + 1);
    }
    progress_finish(&bar);

    double mean[3], std[3];
    for (int c = 0; c < 3; c++) {
        mean[c] = st.count ? (double)((long double)st.sum[c] / 255.0L / (long double)st.count) : NAN;
        /* var of u/255 = var of u / 255^2 */
        std[c] = (double)sqrtl(variance(st.count, st.sum[c], st.sum_sq[c]) / (255.0L * 255.0L));
    }

    if (json) {
        printf("{\"images\": %zu, \"failed\": %zu, \"pixels_per_channel\": %llu, ", used, failed,
               (unsigned long long)st.count);
        printf("\"resize\": ");
        resize ? printf("%d", resize) : printf("null");
        printf(", \"crop\": ");
        crop ? printf("%d", crop) : printf("null");
        printf(", \"mean\": [");
        for (int c = 0; c < 3; c++) {
            json_write_float(stdout, mean[c]);
            printf(c < 2 ? ", " : "], \"std\": [");
        }
        for (int c = 0; c < 3; c++) {
            json_write_float(stdout, std[c]);
            printf(c < 2 ? ", " : "]}\n");
        }
    } else {
        printf("images: %zu", used);
        if (failed)
            printf(" (%zu failed)", failed);
        printf("\npixels: %llu per channel", (unsigned long long)st.count);
        if (resize || crop) {
            printf(", after");
            if (resize)
                printf(" Resize(%d)", resize);
            if (crop)
                printf(" CenterCrop(%d)", crop);
        }
        printf("\n");
        if (st.count) { /* lines to paste: only when there is something to paste */
            print_triple(stdout, "--mean", mean);
            print_triple(stdout, "--std", std);
        }
    }
    inputs_free(&inputs);
    if (used == 0) {
        fprintf(stderr, "cnx: no image could be read\n");
        return EXIT_SOME_FAILED;
    }
    return failed ? EXIT_SOME_FAILED : EXIT_ALL_OK;
}
