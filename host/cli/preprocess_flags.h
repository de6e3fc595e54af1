/* The preprocessing flags shared by classify, eval, preprocess and stats:
 * --resize N --crop N --mean r,g,b --std r,g,b --no-normalize, and the
 * choices timm and Hugging Face make: --interpolation, --crop-pct,
 * --crop-mode, --crop-offset, --rescale-factor. */
#ifndef CNX_CLI_PREPROCESS_FLAGS_H
#define CNX_CLI_PREPROCESS_FLAGS_H

#include <getopt.h>

#include "cnx.h"

enum {
    OPTION_RESIZE = 1000,
    OPTION_CROP,
    OPTION_MEAN,
    OPTION_STD,
    OPTION_NO_NORMALIZE,
    OPTION_INTERPOLATION,
    OPTION_CROP_PCT,
    OPTION_CROP_MODE,
    OPTION_CROP_OFFSET,
    OPTION_RESCALE_FACTOR,
    OPTION_TEST_SIZE,
};

/* Entries for a getopt_long option table. */
#define PREPROCESS_LONG_OPTIONS                                                 \
    {"resize", required_argument, NULL, OPTION_RESIZE},                        \
    {"crop", required_argument, NULL, OPTION_CROP},                            \
    {"mean", required_argument, NULL, OPTION_MEAN},                            \
    {"std", required_argument, NULL, OPTION_STD},                              \
    {"no-normalize", no_argument, NULL, OPTION_NO_NORMALIZE},                  \
    {"interpolation", required_argument, NULL, OPTION_INTERPOLATION},          \
    {"crop-pct", required_argument, NULL, OPTION_CROP_PCT},                    \
    {"crop-mode", required_argument, NULL, OPTION_CROP_MODE},                  \
    {"crop-offset", required_argument, NULL, OPTION_CROP_OFFSET},              \
    {"rescale-factor", required_argument, NULL, OPTION_RESCALE_FACTOR},        \
    {"test-size", no_argument, NULL, OPTION_TEST_SIZE}

#define PREPROCESS_FLAGS_HELP                                                       \
    "  Preprocessing (default: what the weights file carries, then its folder's\n"      \
    "  config.json / preprocessor_config.json, else torchvision's Resize(236,\n"       \
    "  bilinear) -> CenterCrop(224) -> /255 -> ImageNet mean/std):\n"                  \
    "  --resize N         side to resize to: the short side (crop mode center), both\n" \
    "                     sides (squash) or the long side (border)\n"                   \
    "  --crop-pct P       resize to floor(crop / P) instead, as timm and Hugging Face\n" \
    "  --crop N           center crop side\n"                                           \
    "  --interpolation F  Pillow filter: bilinear, bicubic, box, hamming, lanczos\n"    \
    "  --crop-mode M      timm's crop_mode: center, squash or border (pad with mean)\n" \
    "  --crop-offset R    odd crop margins: round (torchvision, timm) or floor\n"       \
    "                     (Hugging Face)\n"                                             \
    "  --rescale-factor F scale by F in float64 as Hugging Face does (default: /255\n" \
    "                     in float32, as torchvision)\n"                                \
    "  --mean R,G,B       normalization mean\n"                                         \
    "  --std R,G,B        normalization std\n"                                          \
    "  --no-normalize     only scale, no mean/std\n"                                   \
    "  --test-size        timm checkpoints: the config's test_input_size and\n"        \
    "                     test_crop_pct (timm's use_test_size=True)\n"

typedef struct preprocess_overrides {
    int have_resize, have_crop, have_mean, have_std, no_normalize;
    int have_interpolation, have_crop_mode, have_crop_offset, have_rescale_factor;
    double crop_pct; /* 0: not given */
    int use_test_size;
    cnx_preprocess values;
} preprocess_overrides;

/* Handles one getopt_long result. Returns 1 if it was a preprocessing flag,
 * 0 if not, -1 for a bad value (after printing the error). */
int preprocess_overrides_parse(preprocess_overrides *overrides, int option, const char *value);

/* Replaces the fields of *params that the flags set. Returns 0, or -1 after
 * printing the error (a crop fraction that resizes past CNX_MAX_SIDE). */
int preprocess_overrides_apply(const preprocess_overrides *overrides, cnx_preprocess *params);

/* Says on stderr when neither the flags, nor the weights file, nor its
 * folder's config files say how the model's inputs were prepared: then
 * torchvision's defaults apply, which may not be how it was trained. */
void warn_untold_preprocess(const char *weights, const cnx_model_info *info,
                            const preprocess_overrides *overrides);

/* The preprocessing a weights file or checkpoint folder carries (with
 * timm's test size where use_test_size). Returns 0, or -1 after printing
 * the error. */
int preprocess_from_weights(const char *path, int use_test_size, cnx_preprocess *params);

/* Parses "a,b,c" into three floats. Returns 0 or -1. */
int parse_float3(const char *text, float out[3]);

/* Parses a positive int no larger than max. Returns 0 or -1. */
int parse_positive_int(const char *text, int max, int *out);

#endif
