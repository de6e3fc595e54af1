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
    }
    return 0;
}

void preprocess_overrides_apply(const preprocess_overrides *o, cnx_preprocess *params) {
    if (o->have_resize)
        params->resize = o->values.resize;
    if (o->have_crop)
        params->crop = o->values.crop;
    for (int c = 0; c < 3; c++) {
        if (o->have_mean)
            params->mean[c] = o->values.mean[c];
        if (o->have_std)
            params->std[c] = o->values.std[c];
    }
    if (o->no_normalize)
        params->normalize = 0;
}

int preprocess_from_weights(const char *path, cnx_preprocess *params) {
    cnx_options options = cnx_default_options();
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
