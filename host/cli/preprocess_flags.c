/* Parsing and applying the shared preprocessing flags. */
#include "preprocess_flags.h"

#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int parse_positive_int(const char *text, int max, int *out) {
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno || value <= 0 || value > max)
        return -1;
    *out = (int)value;
    return 0;
}

/* A positive finite number, all of text. Returns 0 or -1. */
static int parse_positive_double(const char *text, double *out) {
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || errno || !(value > 0.0) || !isfinite(value))
        return -1;
    *out = value;
    return 0;
}

int parse_float3(const char *text, float out[3]) {
    const char *at = text;
    for (int i = 0; i < 3; i++) {
        char *end;
        errno = 0;
        out[i] = strtof(at, &end);
        if (end == at || errno || !isfinite(out[i]))
            return -1;
        if (i < 2 && *end != ',')
            return -1;
        at = end + (i < 2);
        if (i == 2 && *end != '\0')
            return -1;
    }
    return 0;
}

int preprocess_overrides_parse(preprocess_overrides *o, int option, const char *value) {
    switch (option) {
    case OPTION_RESIZE:
        if (o->crop_pct > 0) {
            fprintf(stderr, "cnx: --resize and --crop-pct both set the resize; give one\n");
            return -1;
        }
        if (parse_positive_int(value, CNX_MAX_SIDE, &o->values.resize) != 0) {
            fprintf(stderr, "cnx: --resize: expected an integer in 1..%d, got '%s'\n", CNX_MAX_SIDE, value);
            return -1;
        }
        o->have_resize = 1;
        return 1;
    case OPTION_CROP:
        if (parse_positive_int(value, CNX_MAX_SIDE, &o->values.crop) != 0) {
            fprintf(stderr, "cnx: --crop: expected an integer in 1..%d, got '%s'\n", CNX_MAX_SIDE, value);
            return -1;
        }
        o->have_crop = 1;
        return 1;
    case OPTION_MEAN:
        if (parse_float3(value, o->values.mean) != 0) {
            fprintf(stderr, "cnx: --mean: expected three numbers 'r,g,b', got '%s'\n", value);
            return -1;
        }
        o->have_mean = 1;
        return 1;
    case OPTION_STD:
        if (parse_float3(value, o->values.std) != 0 || !(o->values.std[0] > 0) ||
            !(o->values.std[1] > 0) || !(o->values.std[2] > 0)) {
            fprintf(stderr, "cnx: --std: expected three positive numbers 'r,g,b', got '%s'\n", value);
            return -1;
        }
        o->have_std = 1;
        return 1;
    case OPTION_NO_NORMALIZE:
        o->no_normalize = 1;
        return 1;
    case OPTION_INTERPOLATION:
        if (cnx_interpolation_parse(value, &o->values.interpolation) != 0 ||
            o->values.interpolation == CNX_INTERPOLATION_NEAREST) {
            fprintf(stderr, "cnx: --interpolation: expected bilinear, bicubic, box, hamming or "
                            "lanczos, got '%s'%s\n", value,
                    o->values.interpolation == CNX_INTERPOLATION_NEAREST
                        ? " (Pillow's nearest is an affine transform cnx does not implement)"
                        : "");
            return -1;
        }
        o->have_interpolation = 1;
        return 1;
    case OPTION_CROP_PCT: {
        double pct;
        if (o->have_resize) {
            fprintf(stderr, "cnx: --resize and --crop-pct both set the resize; give one\n");
            return -1;
        }
        if (parse_positive_double(value, &pct) != 0 || pct > 1.0) {
            fprintf(stderr, "cnx: --crop-pct: expected a fraction in (0, 1], got '%s'\n", value);
            return -1;
        }
        o->crop_pct = pct;
        return 1;
    }
    case OPTION_CROP_MODE:
        if (cnx_crop_mode_parse(value, &o->values.crop_mode) != 0) {
            fprintf(stderr, "cnx: --crop-mode: expected center, squash or border, got '%s'\n",
                    value);
            return -1;
        }
        o->have_crop_mode = 1;
        return 1;
    case OPTION_CROP_OFFSET:
        if (cnx_crop_offset_parse(value, &o->values.crop_offset) != 0) {
            fprintf(stderr, "cnx: --crop-offset: expected round or floor, got '%s'\n", value);
            return -1;
        }
        o->have_crop_offset = 1;
        return 1;
    case OPTION_TEST_SIZE:
        o->use_test_size = 1;
        return 1;
    case OPTION_RESCALE_FACTOR:
        if (parse_positive_double(value, &o->values.rescale_factor) != 0) {
            fprintf(stderr, "cnx: --rescale-factor: expected a positive number, got '%s'\n",
                    value);
            return -1;
        }
        o->have_rescale_factor = 1;
        return 1;
    }
    return 0;
}

int preprocess_overrides_apply(const preprocess_overrides *o, cnx_preprocess *params) {
    if (o->have_resize)
        params->resize = o->values.resize;
    if (o->have_crop)
        params->crop = o->values.crop;
    if (o->crop_pct > 0) {
        params->resize = cnx_resize_for_crop_pct(params->crop, o->crop_pct);
        if (params->resize == 0) {
            fprintf(stderr, "cnx: --crop-pct %g with crop %d resizes past %d pixels\n",
                    o->crop_pct, params->crop, CNX_MAX_SIDE);
            return -1;
        }
    }
    if (o->have_interpolation)
        params->interpolation = o->values.interpolation;
    if (o->have_crop_mode)
        params->crop_mode = o->values.crop_mode;
    if (o->have_crop_offset)
        params->crop_offset = o->values.crop_offset;
    if (o->have_rescale_factor)
        params->rescale_factor = o->values.rescale_factor;
    for (int c = 0; c < 3; c++) {
        if (o->have_mean)
            params->mean[c] = o->values.mean[c];
        if (o->have_std)
            params->std[c] = o->values.std[c];
    }
    if (o->no_normalize)
        params->normalize = 0;
    return 0;
}

void warn_untold_preprocess(const char *weights, const cnx_model_info *info,
                            const preprocess_overrides *o) {
    int any_flag = o->have_resize || o->have_crop || o->have_mean || o->have_std ||
                   o->no_normalize || o->have_interpolation || o->have_crop_mode ||
                   o->have_crop_offset || o->have_rescale_factor || o->crop_pct > 0;
    if (info->has_preprocess_metadata || any_flag)
        return;
    fprintf(stderr,
            "cnx: warning: %s does not say how its inputs were prepared (no preprocessing "
            "metadata, no config.json or preprocessor_config.json); using torchvision's "
            "Resize(%d, bilinear) -> CenterCrop(%d) -> ImageNet mean/std. Set the flags "
            "(see --help) if the model was trained otherwise.\n",
            weights, info->preprocess.resize, info->preprocess.crop);
}

int preprocess_from_weights(const char *path, int use_test_size, cnx_preprocess *params) {
    cnx_options options = cnx_default_options();
    options.use_test_size = use_test_size;
    options.device = CNX_DEVICE_CPU; /* only the metadata is needed */
    options.max_batch = 1;
    cnx_engine *engine = NULL;
    cnx_model_info info;
    if (cnx_engine_create(path, &options, &engine) != CNX_OK ||
        cnx_engine_info(engine, &info) != CNX_OK) {
        report_failure(path);
        cnx_engine_destroy(engine);
        return -1;
    }
    cnx_engine_destroy(engine);
    *params = info.preprocess; /* the file's, or torchvision's defaults when it has none */
    return 0;
}
