/* Reading timm's and Hugging Face's config files (see checkpoint_config.h).
 * The defaults below are each library's own: timm 1.0's resolve_data_config
 * and transformers 4.44's ConvNextImageProcessor.__init__. */
#define _POSIX_C_SOURCE 200809L

#include "checkpoint_config.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convnext_architectures.h"
#include "error.h"
#include "input_file.h"

/* Far above any real config (ImageNet-21k's id2label is about 1 MB). */
#define MAX_CONFIG_BYTES (64u << 20)

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

/* ------------------------------------------------------------ JSON files */

static int file_exists(const char *path) {
    return access(path, F_OK) == 0;
}

/* Parses the JSON file at path into *root (an object). */
static cnx_status read_json_object(const char *path, json_object **root) {
    *root = NULL;
    int fd;
    struct stat info;
    cnx_status status = cnx_open_input_file(path, "a config file", &fd, &info);
    if (status != CNX_OK) return status;
    if ((uint64_t)info.st_size > MAX_CONFIG_BYTES) {
        close(fd);
        return cnx_fail(CNX_ERROR_TOO_LARGE, "%s: over the %u MiB a config file may have", path,
                        MAX_CONFIG_BYTES >> 20);
    }
    size_t size = (size_t)info.st_size;
    char *text = malloc(size + 1);
    if (!text) {
        close(fd);
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, text + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (got != size) {
        free(text);
        return cnx_fail(CNX_ERROR_IO, "%s: read %zu of %zu bytes", path, got, size);
    }
    text[size] = '\0';

    json_tokener *tokener = json_tokener_new();
    if (!tokener) {
        free(text);
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    json_object *parsed = json_tokener_parse_ex(tokener, text, (int)size);
    enum json_tokener_error error = json_tokener_get_error(tokener);
    size_t end = json_tokener_get_parse_end(tokener);
    json_tokener_free(tokener);
    free(text);
    if (!parsed || error != json_tokener_success) {
        json_object_put(parsed);
        /* json-c reports text that stops mid-value as "continue". */
        const char *cause = error == json_tokener_continue || error == json_tokener_success
                                ? "the text ends before the JSON does"
                                : json_tokener_error_desc(error);
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: not valid JSON (%s, near byte %zu)", path, cause,
                        end);
    }
    if (!json_object_is_type(parsed, json_type_object)) {
        json_object_put(parsed);
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: not a JSON object", path);
    }
    *root = parsed;
    return CNX_OK;
}

/* ------------------------------------------------------ typed members */

static json_object *member(json_object *object, const char *key) {
    json_object *value = NULL;
    if (!object || !json_object_object_get_ex(object, key, &value)) return NULL;
    return json_object_is_type(value, json_type_null) ? NULL : value;
}

static cnx_status kind_error(const char *path, const char *key, const char *expected) {
    return cnx_fail(CNX_ERROR_WEIGHTS, "%s: \"%s\" is not %s", path, key, expected);
}

static int is_number(json_object *value) {
    return json_object_is_type(value, json_type_int) ||
           json_object_is_type(value, json_type_double);
}

/* A number, or *out unchanged when the key is absent. */
static cnx_status get_number(json_object *object, const char *key, const char *path,
                             double *out) {
    json_object *value = member(object, key);
    if (!value) return CNX_OK;
    if (!is_number(value) || !isfinite(json_object_get_double(value)))
        return kind_error(path, key, "a finite number");
    *out = json_object_get_double(value);
    return CNX_OK;
}

/* A whole number in lo..hi, or *out unchanged when the key is absent. */
static cnx_status get_whole(json_object *object, const char *key, const char *path, int lo,
                            int hi, int *out) {
    double value = *out;
    cnx_status status = get_number(object, key, path, &value);
    if (status == CNX_OK && (value != floor(value) || value < lo || value > hi))
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: \"%s\" is %g, expected a whole number in %d..%d",
                        path, key, value, lo, hi);
    *out = (int)value;
    return status;
}

static cnx_status get_bool(json_object *object, const char *key, const char *path, int *out) {
    json_object *value = member(object, key);
    if (!value) return CNX_OK;
    if (!json_object_is_type(value, json_type_boolean))
        return kind_error(path, key, "true or false");
    *out = json_object_get_boolean(value);
    return CNX_OK;
}

static cnx_status get_string(json_object *object, const char *key, const char *path,
                             const char **out) {
    json_object *value = member(object, key);
    if (!value) return CNX_OK;
    if (!json_object_is_type(value, json_type_string)) return kind_error(path, key, "a string");
    *out = json_object_get_string(value);
    return CNX_OK;
}

/* An array of at most max whole numbers, each 1 .. 2^20. */
static cnx_status get_int_array(json_object *object, const char *key, const char *path, int max,
                                int *out, int *count) {
    json_object *value = member(object, key);
    if (!value) return CNX_OK;
    size_t n = json_object_is_type(value, json_type_array) ? json_object_array_length(value) : 0;
    if (n == 0 || n > (size_t)max) return kind_error(path, key, "a list of whole numbers");
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(value, i);
        int64_t v = json_object_get_int64(item);
        if (!json_object_is_type(item, json_type_int) || v < 1 || v > (1 << 20))
            return kind_error(path, key, "a list of positive whole numbers");
        out[i] = (int)v;
    }
    *count = (int)n;
    return CNX_OK;
}

/* Three numbers (or one, for all three channels, as transformers allows). */
static cnx_status get_triple(json_object *object, const char *key, const char *path, int positive,
                             float out[3]) {
    json_object *value = member(object, key);
    if (!value) return CNX_OK;
    double v[3];
    if (is_number(value)) {
        v[0] = v[1] = v[2] = json_object_get_double(value);
    } else if (json_object_is_type(value, json_type_array) &&
               json_object_array_length(value) == 3) {
        for (int c = 0; c < 3; c++) {
            json_object *item = json_object_array_get_idx(value, (size_t)c);
            if (!is_number(item)) return kind_error(path, key, "three numbers");
            v[c] = json_object_get_double(item);
        }
    } else {
        return kind_error(path, key, "three numbers");
    }
    for (int c = 0; c < 3; c++) {
        float f = (float)v[c];
        if (!isfinite(v[c]) || !isfinite(f) || (positive && !(f > 0)))
            return kind_error(path, key, positive ? "three positive numbers" : "three finite numbers");
        out[c] = f;
    }
    return CNX_OK;
}

/* ---------------------------------------------------------------- labels */

static cnx_status set_label(cnx_checkpoint_config *c, int index, const char *name) {
    if (!(c->labels[index] = strdup(name)))
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory", c->config_path);
    return CNX_OK;
}

static cnx_status allocate_labels(cnx_checkpoint_config *c, size_t count) {
    if (count == 0 || count > (1u << 24))
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: %zu class names", c->config_path, count);
    if (!(c->labels = calloc(count, sizeof *c->labels)))
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory", c->config_path);
    c->num_labels = (int)count;
    return CNX_OK;
}

/* timm's label_names: a list of strings. */
static cnx_status read_label_list(cnx_checkpoint_config *c, json_object *list) {
    if (!json_object_is_type(list, json_type_array))
        return kind_error(c->config_path, "label_names", "a list of names");
    size_t n = json_object_array_length(list);
    cnx_status status = allocate_labels(c, n);
    for (size_t i = 0; i < n && status == CNX_OK; i++) {
        json_object *item = json_object_array_get_idx(list, i);
        if (!json_object_is_type(item, json_type_string))
            return kind_error(c->config_path, "label_names", "a list of names");
        status = set_label(c, (int)i, json_object_get_string(item));
    }
    return status;
}

/* transformers' id2label: {"0": "name", ...}, every index 0..n-1 once. */
static cnx_status read_id2label(cnx_checkpoint_config *c, json_object *map) {
    if (!json_object_is_type(map, json_type_object))
        return kind_error(c->config_path, "id2label", "an object of class names");
    cnx_status status = allocate_labels(c, (size_t)json_object_object_length(map));
    json_object_object_foreach(map, key, value) {
        if (status != CNX_OK) break;
        char *end;
        errno = 0;
        long index = strtol(key, &end, 10);
        if (end == key || *end || errno || index < 0 || index >= c->num_labels ||
            c->labels[index] || !json_object_is_type(value, json_type_string))
            return cnx_fail(CNX_ERROR_WEIGHTS,
                            "%s: id2label must map each class 0..%d to a name once; \"%s\" "
                            "does not", c->config_path, c->num_labels - 1, key);
        status = set_label(c, (int)index, json_object_get_string(value));
    }
    return status;
}

/* ------------------------------------------------------------------ timm */

/* The architecture without a ".tag", if cnx runs it. */
static cnx_status read_timm_architecture(cnx_checkpoint_config *c, const char *name) {
    size_t length = strcspn(name, ".");
    if (length >= sizeof c->architecture) length = sizeof c->architecture - 1;
    memcpy(c->architecture, name, length);
    c->architecture[length] = '\0';
    const char *known;
    int depths[CNX_MAX_STAGES], widths[CNX_MAX_STAGES], has_grn;
    for (size_t i = 0; cnx_convnext_architecture(i, &known, depths, widths, &has_grn); i++)
        if (strcmp(known, c->architecture) == 0) {
            c->declares_grn = has_grn;
            return CNX_OK;
        }
    return cnx_fail(CNX_ERROR_UNSUPPORTED,
                    "%s: architecture \"%s\" is not one cnx runs (timm's convnext_atto .. "
                    "convnext_xxlarge and convnextv2_atto .. convnextv2_huge)",
                    c->config_path, name);
}

/* timm's resolve_data_config on pretrained_cfg, then transforms_imagenet_eval. */
static cnx_status read_timm_preprocess(cnx_checkpoint_config *c, json_object *cfg,
                                       int use_test_size) {
    const char *path = c->config_path;
    int input_size[3] = {3, 224, 224}, n = 3;
    double crop_pct = 0.875;
    const char *interpolation = "bicubic", *crop_mode = "center";
    cnx_preprocess *p = &c->preprocess;
    memcpy(p->mean, imagenet_mean, sizeof p->mean);
    memcpy(p->std, imagenet_std, sizeof p->std);
    p->normalize = 1;

    const char *size_key = use_test_size && member(cfg, "test_input_size") ? "test_input_size"
                                                                           : "input_size";
    const char *pct_key = use_test_size && member(cfg, "test_crop_pct") ? "test_crop_pct"
                                                                        : "crop_pct";
    cnx_status status = get_int_array(cfg, size_key, path, 3, input_size, &n);
    if (status == CNX_OK && (n != 3 || input_size[0] != 3))
        status = kind_error(path, size_key, "[3, height, width]");
    if (status == CNX_OK && input_size[1] != input_size[2])
        status = cnx_fail(CNX_ERROR_UNSUPPORTED, "%s: \"%s\" is %dx%d; cnx crops squares",
                          path, size_key, input_size[2], input_size[1]);
    if (status == CNX_OK) status = get_number(cfg, pct_key, path, &crop_pct);
    if (status == CNX_OK) status = get_string(cfg, "interpolation", path, &interpolation);
    if (status == CNX_OK) status = get_string(cfg, "crop_mode", path, &crop_mode);
    if (status == CNX_OK) status = get_triple(cfg, "mean", path, 0, p->mean);
    if (status == CNX_OK) status = get_triple(cfg, "std", path, 1, p->std);
    if (status != CNX_OK) return status;

    p->crop = input_size[1];
    if (!(p->resize = cnx_resize_for_crop_pct(p->crop, crop_pct)))
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: \"%s\" %g is not in (0, 1] for crop %d", path,
                        pct_key, crop_pct, p->crop);
    if (cnx_interpolation_parse(interpolation, &p->interpolation) != 0 ||
        p->interpolation == CNX_INTERPOLATION_NEAREST)
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "%s: interpolation \"%s\"; cnx runs bilinear, bicubic, box, hamming "
                        "and lanczos", path, interpolation);
    if (cnx_crop_mode_parse(crop_mode, &p->crop_mode) != 0)
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "%s: crop_mode \"%s\"; timm's are center, squash and border", path,
                        crop_mode);
    c->has_preprocess = 1;
    c->source = CNX_SOURCE_TIMM_CONFIG;
    return CNX_OK;
}

static cnx_status read_timm(cnx_checkpoint_config *c, json_object *root, const char *name,
                            int use_test_size) {
    c->library = CNX_CONFIG_TIMM;
    cnx_status status = read_timm_architecture(c, name);
    if (status == CNX_OK)
        status = get_whole(root, "num_classes", c->config_path, 1, 1 << 24, &c->num_classes);
    json_object *cfg = member(root, "pretrained_cfg");
    if (status == CNX_OK && cfg && !json_object_is_type(cfg, json_type_object))
        status = kind_error(c->config_path, "pretrained_cfg", "an object");
    /* Without a pretrained_cfg, timm's own defaults. */
    if (status == CNX_OK) status = read_timm_preprocess(c, cfg, use_test_size);
    json_object *names = member(root, "label_names");
    if (!names) names = member(cfg, "label_names");
    if (status == CNX_OK && names) status = read_label_list(c, names);
    return status;
}

/* ---------------------------------------------------------- transformers */

/* Pillow's resample numbers, as preprocessor_config.json stores them. */
static int interpolation_of_pil(int resample, cnx_interpolation *out) {
    static const int known[][2] = {
        {1, CNX_INTERPOLATION_LANCZOS}, {2, CNX_INTERPOLATION_BILINEAR},
        {3, CNX_INTERPOLATION_BICUBIC}, {4, CNX_INTERPOLATION_BOX},
        {5, CNX_INTERPOLATION_HAMMING},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i][0] == resample) {
            *out = (cnx_interpolation)known[i][1];
            return 0;
        }
    return -1;
}

/* ConvNextImageProcessor's eval preprocessing from preprocessor_config.json. */
static cnx_status read_image_processor(cnx_checkpoint_config *c, const char *path) {
    json_object *root;
    cnx_status status = read_json_object(path, &root);
    if (status != CNX_OK) return status;

    int do_resize = 1, do_rescale = 1, do_normalize = 1;
    double crop_pct = 224.0 / 256.0, rescale_factor = 1.0 / 255.0;
    int resample = 2; /* PIL's BILINEAR */
    double shortest_edge = 384;
    cnx_preprocess *p = &c->preprocess;
    const float half[3] = {0.5f, 0.5f, 0.5f}; /* IMAGENET_STANDARD_MEAN and _STD */
    memcpy(p->mean, half, sizeof p->mean);
    memcpy(p->std, half, sizeof p->std);

    json_object *size = member(root, "size");
    if (size && json_object_is_type(size, json_type_object)) {
        if (!member(size, "shortest_edge"))
            status = kind_error(path, "size", "{\"shortest_edge\": N}, which ConvNeXt uses");
        else
            status = get_number(size, "shortest_edge", path, &shortest_edge);
    } else if (size) {
        status = get_number(root, "size", path, &shortest_edge); /* older files: a number */
    }
    if (status == CNX_OK) status = get_bool(root, "do_resize", path, &do_resize);
    if (status == CNX_OK) status = get_bool(root, "do_rescale", path, &do_rescale);
    if (status == CNX_OK) status = get_bool(root, "do_normalize", path, &do_normalize);
    if (status == CNX_OK) status = get_number(root, "crop_pct", path, &crop_pct);
    if (status == CNX_OK) status = get_whole(root, "resample", path, 0, 5, &resample);
    if (status == CNX_OK) status = get_number(root, "rescale_factor", path, &rescale_factor);
    if (status == CNX_OK) status = get_triple(root, "image_mean", path, 0, p->mean);
    if (status == CNX_OK) status = get_triple(root, "image_std", path, 1, p->std);
    json_object_put(root);
    if (status != CNX_OK) return status;

    if (!do_resize)
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "%s: do_resize is false: images would reach the model at their own "
                        "sizes, which cnx does not do", path);
    if (shortest_edge != floor(shortest_edge) || shortest_edge < 1 || shortest_edge > CNX_MAX_SIDE)
        return kind_error(path, "shortest_edge", "a whole number of pixels");
    if (interpolation_of_pil(resample, &p->interpolation) != 0)
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "%s: resample %d (nearest); cnx runs Pillow's 1 (lanczos), 2 (bilinear), "
                        "3 (bicubic), 4 (box) and 5 (hamming)", path, resample);
    if (!(rescale_factor > 0)) return kind_error(path, "rescale_factor", "a positive number");

    p->crop = (int)shortest_edge;
    if (p->crop >= 384) { /* a warp to a square, no crop */
        p->resize = p->crop;
        p->crop_mode = CNX_CROP_MODE_SQUASH;
    } else if (!(p->resize = cnx_resize_for_crop_pct(p->crop, crop_pct))) {
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: crop_pct %g is not in (0, 1]", path, crop_pct);
    }
    p->crop_offset = CNX_CROP_OFFSET_FLOOR;
    p->rescale_factor = do_rescale ? rescale_factor : 1.0; /* 1: the values stay 0..255 */
    p->normalize = do_normalize;
    c->has_preprocess = 1;
    c->source = CNX_SOURCE_TRANSFORMERS_CONFIG;
    return CNX_OK;
}

static cnx_status read_transformers(cnx_checkpoint_config *c, json_object *root,
                                    const char *model_type, const char *folder) {
    const char *path = c->config_path;
    c->library = CNX_CONFIG_TRANSFORMERS;
    snprintf(c->architecture, sizeof c->architecture, "%s", model_type);
    if (strcmp(model_type, "convnext") != 0 && strcmp(model_type, "convnextv2") != 0)
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "%s: model_type \"%s\" is not one cnx runs (convnext, convnextv2)", path,
                        model_type);
    c->declares_grn = strcmp(model_type, "convnextv2") == 0;

    const char *activation = "gelu";
    double eps = 1e-12; /* ConvNextConfig's default */
    int widths = 0;
    cnx_status status = get_int_array(root, "depths", path, CNX_MAX_STAGES, c->depths,
                                      &c->num_stages);
    if (status == CNX_OK)
        status = get_int_array(root, "hidden_sizes", path, CNX_MAX_STAGES, c->widths, &widths);
    if (status == CNX_OK && widths != c->num_stages)
        status = cnx_fail(CNX_ERROR_WEIGHTS, "%s: %d depths but %d hidden_sizes", path,
                          c->num_stages, widths);
    if (status == CNX_OK) status = get_number(root, "layer_norm_eps", path, &eps);
    if (status == CNX_OK && !(eps > 0 && eps < 1))
        status = kind_error(path, "layer_norm_eps", "a small positive number");
    if (status == CNX_OK) status = get_string(root, "hidden_act", path, &activation);
    if (status == CNX_OK && strcmp(activation, "gelu") != 0)
        status = cnx_fail(CNX_ERROR_UNSUPPORTED,
                          "%s: hidden_act \"%s\"; cnx runs ConvNeXt's exact \"gelu\"", path,
                          activation);
    if (status != CNX_OK) return status;
    c->head_norm_eps = (float)eps;

    json_object *id2label = member(root, "id2label");
    if (id2label && (status = read_id2label(c, id2label)) != CNX_OK) return status;
    c->num_classes = id2label ? c->num_labels : -1;

    char processor[4096];
    snprintf(processor, sizeof processor, "%s/preprocessor_config.json", folder);
    return file_exists(processor) ? read_image_processor(c, processor) : CNX_OK;
}

/* ------------------------------------------------------------------ read */

cnx_status cnx_checkpoint_config_read(const char *folder, int use_test_size,
                                      cnx_checkpoint_config *c) {
    memset(c, 0, sizeof *c);
    c->num_classes = -1;
    if ((size_t)snprintf(c->config_path, sizeof c->config_path, "%s/config.json", folder) >=
        sizeof c->config_path)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "%s: path too long", folder);
    if (!file_exists(c->config_path)) return CNX_OK;

    json_object *root;
    cnx_status status = read_json_object(c->config_path, &root);
    if (status != CNX_OK) return status;
    const char *architecture = NULL, *model_type = NULL;
    status = get_string(root, "architecture", c->config_path, &architecture);
    if (status == CNX_OK) status = get_string(root, "model_type", c->config_path, &model_type);
    if (status == CNX_OK && architecture)
        status = read_timm(c, root, architecture, use_test_size);
    else if (status == CNX_OK && model_type)
        status = read_transformers(c, root, model_type, folder);
    else if (status == CNX_OK)
        status = cnx_fail(CNX_ERROR_WEIGHTS,
                          "%s: names no model: neither timm's \"architecture\" nor "
                          "transformers' \"model_type\"", c->config_path);
    json_object_put(root);
    if (status != CNX_OK) cnx_checkpoint_config_free(c);
    return status;
}

void cnx_checkpoint_config_free(cnx_checkpoint_config *c) {
    for (int i = 0; c->labels && i < c->num_labels; i++) free(c->labels[i]);
    free(c->labels);
    c->labels = NULL;
    c->num_labels = 0;
}
