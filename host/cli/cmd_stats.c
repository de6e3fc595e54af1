/* cnx stats: per-channel mean and std of a set of images, on the [0,1] scale,
 * as the lecture computes "statistics from the training set":
 *   x = torch.stack([ToTensor()(img) for img in images])   # [N, 3, H, W]
 *   x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))             # std unbiased
 * Images of different sizes are pooled pixel by pixel (every pixel weighs the
 * same), which is what the stacked form computes when the sizes agree. The
 * sums and the transform are the library's (cnx_pixel_stats_add). */
#include <getopt.h>
#include <stdio.h>
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

    cnx_preprocess transform = choices; /* the filter, crop mode and crop offset */
    transform.resize = resize;
    transform.crop = crop;
    cnx_pixel_stats st;
    memset(&st, 0, sizeof st);
    size_t used = 0, failed = 0;
    progress bar;
    progress_start(&bar, inputs.count, "images");
    for (size_t i = 0; i < inputs.count; i++) {
        const char *path = inputs.paths[i];
        cnx_image image = {0, 0, NULL};
        if (cnx_image_decode_file(path, 0, &image) == CNX_OK &&
            cnx_pixel_stats_add(&st, &image, &transform) == CNX_OK) {
            used++;
        } else {
            progress_finish(&bar);
            report_failure(path);
            failed++;
        }
        cnx_image_free(&image);
        progress_update(&bar, i + 1);
    }
    progress_finish(&bar);

    /* Without pixels this fails and leaves NaN: JSON null, no lines to paste. */
    double mean[3], std[3];
    (void)cnx_pixel_stats_result(&st, mean, std);

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
