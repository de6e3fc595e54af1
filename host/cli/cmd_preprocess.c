/* cnx preprocess: the model's input (or the pixels before scaling) as .npy. */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnx.h"
#include "commands.h"
#include "inputs.h"
#include "npy.h"
#include "preprocess_flags.h"
#include "report.h"

static const char preprocess_usage[] =
    "usage: cnx preprocess [-w W.safetensors|DIR] [--resize N] [--crop N] [--mean R,G,B]\n"
    "                      [--std R,G,B] [--no-normalize] [--pixels] IMAGE|DIR ... -o OUT.npy\n"
    "\n"
    "Writes what the model sees for each image, in input order, as one .npy file:\n"
    "float32 [N, 3, crop, crop], torchvision's Resize(resize, BILINEAR) ->\n"
    "CenterCrop(crop) -> ToTensor -> Normalize(mean, std) computed bit-exactly (or\n"
    "timm's and Hugging Face's variants of it, with the flags below).\n"
    "Directories are read recursively (.png, .jpg, .jpeg, sorted by name).\n"
    "\n"
    "options:\n"
    "  -o, --output OUT   where to write the .npy file (required)\n"
    "  -w, --weights W    take the preprocessing from this weights file's metadata\n"
    "                     or checkpoint folder's config; without -w: torchvision's\n"
    "                     ImageNet values,\n"
    "                     resize 236, crop 224, mean 0.485,0.456,0.406,\n"
    "                     std 0.229,0.224,0.225. The flags below override either.\n"
    PREPROCESS_FLAGS_HELP
    "  --pixels           write uint8 [N, 3, crop, crop]: the pixels after resize\n"
    "                     and crop, before scaling (mean and std are then unused)\n"
    "  -h, --help         show this help\n"
    "\n"
    "An image that cannot be read gets a one-line error on stderr and a slot of NaN\n"
    "(or 0 with --pixels); the others are still written.\n"
    "Exit status: 0 all images written, 1 some failed, 2 usage or weights error.\n";

int cmd_preprocess(int argc, char **argv) {
    enum { OPTION_PIXELS = 2000 };
    static const struct option long_options[] = {
        {"output", required_argument, NULL, 'o'},
        {"weights", required_argument, NULL, 'w'},
        {"pixels", no_argument, NULL, OPTION_PIXELS},
        {"help", no_argument, NULL, 'h'},
        PREPROCESS_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL, *weights = NULL;
    int pixels = 0;
    preprocess_overrides overrides;
    memset(&overrides, 0, sizeof overrides);

    optind = 1;
    opterr = 0;
    int option;
    while ((option = getopt_long(argc, argv, ":o:w:h", long_options, NULL)) != -1) {
        switch (option) {
        case 'o': output = optarg; break;
        case 'w': weights = optarg; break;
        case OPTION_PIXELS: pixels = 1; break;
        case 'h': fputs(preprocess_usage, stdout); return EXIT_ALL_OK;
        case ':':
            fprintf(stderr, "cnx preprocess: %s needs a value\n", argv[optind - 1]);
            fprintf(stderr, "try 'cnx preprocess --help'\n");
            return EXIT_USAGE;
        case '?':
            fprintf(stderr, "cnx preprocess: unknown option '%s'\n", argv[optind - 1]);
            fprintf(stderr, "try 'cnx preprocess --help'\n");
            return EXIT_USAGE;
        default: {
            int handled = preprocess_overrides_parse(&overrides, option, optarg);
            if (handled < 0)
                return EXIT_USAGE;
            if (handled == 0) {
                fprintf(stderr, "cnx preprocess: unexpected option\n");
                return EXIT_USAGE;
            }
        }
        }
    }
    if (!output) {
        fprintf(stderr, "cnx preprocess: -o OUT.npy is required\n");
        fprintf(stderr, "try 'cnx preprocess --help'\n");
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "cnx preprocess: no images given\n");
        fprintf(stderr, "try 'cnx preprocess --help'\n");
        return EXIT_USAGE;
    }

    cnx_preprocess params = cnx_default_preprocess();
    if (weights && preprocess_from_weights(weights, overrides.use_test_size, &params) != 0)
        return EXIT_USAGE;
    if (preprocess_overrides_apply(&overrides, &params) != 0)
        return EXIT_USAGE;

    input_list inputs;
    if (inputs_expand(argv + optind, argc - optind, image_extensions, &inputs) != 0) {
        fprintf(stderr, "cnx: out of memory listing the inputs\n");
        return EXIT_SOME_FAILED;
    }
    if (inputs.count == 0)
        fprintf(stderr, "cnx: warning: no .png/.jpg/.jpeg images found; writing an empty array\n");

    /* One image at a time straight into the file, so memory stays bounded
     * however many images there are. */
    const size_t per_image = (size_t)3 * (size_t)params.crop * (size_t)params.crop;
    const size_t item = pixels ? 1 : sizeof(float);
    void *slot = malloc(per_image * item);
    const int64_t shape[4] = {(int64_t)inputs.count, 3, params.crop, params.crop};
    FILE *out = slot ? npy_begin(output, pixels ? NPY_UINT8 : NPY_FLOAT32, 4, shape) : NULL;
    if (!out) {
        if (!slot)
            fprintf(stderr, "cnx: out of memory for an image of 3x%dx%d\n", params.crop, params.crop);
        free(slot);
        inputs_free(&inputs);
        return EXIT_USAGE;
    }

    size_t failed = 0;
    for (size_t i = 0; i < inputs.count; i++) {
        const char *path = inputs.paths[i];
        cnx_image image = {0, 0, NULL};
        cnx_status status = cnx_image_decode_file(path, 0, &image);
        if (status == CNX_OK) {
            if (pixels)
                status = cnx_preprocess_pixels(&image, &params, slot);
            else
                status = cnx_preprocess_image(&image, &params, slot);
            cnx_image_free(&image);
        }
        if (status != CNX_OK) {
            report_failure(path);
            failed++;
            if (pixels) {
                memset(slot, 0, per_image);
            } else {
                for (size_t j = 0; j < per_image; j++)
                    ((float *)slot)[j] = NAN;
            }
        }
        fwrite(slot, item, per_image, out);
    }
    free(slot);
    inputs_free(&inputs);
    if (npy_end(out, output) != 0)
        return EXIT_USAGE;
    return failed ? EXIT_SOME_FAILED : EXIT_ALL_OK;
}
