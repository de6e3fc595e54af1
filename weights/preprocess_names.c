/* The names of cnx_preprocess's choices, as the CLI, the weights metadata
 * and timm's and Hugging Face's configs spell them, the names of where a
 * value came from, and crop_pct's arithmetic. */
#include <math.h>
#include <string.h>

#include "cnx.h"

static const char *const interpolation_names[CNX_INTERPOLATION_COUNT] = {
    [CNX_INTERPOLATION_BILINEAR] = "bilinear", [CNX_INTERPOLATION_BICUBIC] = "bicubic",
    [CNX_INTERPOLATION_BOX] = "box",           [CNX_INTERPOLATION_HAMMING] = "hamming",
    [CNX_INTERPOLATION_LANCZOS] = "lanczos",   [CNX_INTERPOLATION_NEAREST] = "nearest",
};

static const char *const crop_mode_names[CNX_CROP_MODE_COUNT] = {
    [CNX_CROP_MODE_CENTER] = "center",
    [CNX_CROP_MODE_SQUASH] = "squash",
    [CNX_CROP_MODE_BORDER] = "border",
};

static const char *const crop_offset_names[CNX_CROP_OFFSET_COUNT] = {
    [CNX_CROP_OFFSET_ROUND] = "round",
    [CNX_CROP_OFFSET_FLOOR] = "floor",
};

static const char *name_of(const char *const *names, int count, int value) {
    return value >= 0 && value < count ? names[value] : "unknown";
}

static int parse_name(const char *const *names, int count, const char *name, int *out) {
    for (int i = 0; name && i < count; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = i;
            return 0;
        }
    return -1;
}

const char *cnx_interpolation_name(cnx_interpolation interpolation) {
    return name_of(interpolation_names, CNX_INTERPOLATION_COUNT, (int)interpolation);
}

int cnx_interpolation_parse(const char *name, cnx_interpolation *out) {
    int value;
    if (parse_name(interpolation_names, CNX_INTERPOLATION_COUNT, name, &value) != 0)
        return -1;
    *out = (cnx_interpolation)value;
    return 0;
}

const char *cnx_crop_mode_name(cnx_crop_mode mode) {
    return name_of(crop_mode_names, CNX_CROP_MODE_COUNT, (int)mode);
}

int cnx_crop_mode_parse(const char *name, cnx_crop_mode *out) {
    int value;
    if (parse_name(crop_mode_names, CNX_CROP_MODE_COUNT, name, &value) != 0)
        return -1;
    *out = (cnx_crop_mode)value;
    return 0;
}

const char *cnx_crop_offset_name(cnx_crop_offset offset) {
    return name_of(crop_offset_names, CNX_CROP_OFFSET_COUNT, (int)offset);
}

int cnx_crop_offset_parse(const char *name, cnx_crop_offset *out) {
    int value;
    if (parse_name(crop_offset_names, CNX_CROP_OFFSET_COUNT, name, &value) != 0)
        return -1;
    *out = (cnx_crop_offset)value;
    return 0;
}

const char *cnx_value_source_name(cnx_value_source source) {
    switch (source) {
    case CNX_SOURCE_METADATA: return "metadata";
    case CNX_SOURCE_TIMM_CONFIG: return "config.json";
    case CNX_SOURCE_TRANSFORMERS_CONFIG: return "preprocessor_config.json";
    default: return "default";
    }
}

int cnx_resize_for_crop_pct(int crop, double crop_pct) {
    if (!(crop_pct > 0.0 && crop_pct <= 1.0) || crop < 1)
        return 0;
    double side = floor((double)crop / crop_pct); /* Python's / then floor or int() */
    return side <= CNX_MAX_SIDE ? (int)side : 0;
}
