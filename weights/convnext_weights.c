/* Loads a ConvNeXt (V1 or V2) from safetensors: works out the naming scheme
 * and the architecture from the names and shapes, insists that every tensor
 * is present, expected and shaped right, and converts all of them to fp32
 * in one arena. The shapes are the truth; the metadata only says how to
 * preprocess images. Layer scale and GRN are each on every block or on
 * none. */
#define _POSIX_C_SOURCE 200809L

#include "convnext_weights.h"

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "checkpoint_config.h"
#include "convnext_architectures.h"
#include "convnext_names.h"
#include "error.h"
#include "safetensors.h"

/* Far above any ConvNeXt (xxlarge ends at 3072 channels, ImageNet-22k has
 * 21841 classes); keeps every size product well inside int64 and int. */
#define MAX_WIDTH 65536
#define MAX_CLASSES (1 << 24)

/* Slots: one per parameter, stem and head first, then the downsamples of
 * every stage (stage 0 has none), then the blocks, stage by stage. */
#define FIXED_SLOTS (CNX_ROLE_FIRST_DOWNSAMPLE)
#define BLOCK_SLOTS_START (FIXED_SLOTS + CNX_MAX_STAGES * CNX_DOWNSAMPLE_ROLES)

typedef struct loader {
    const cnx_safetensors *st;
    const char *path;
    cnx_naming naming;
    cnx_convnext_name *names; /* per tensor */
    int num_stages;
    int depths[CNX_MAX_STAGES];
    int first_block[CNX_MAX_STAGES]; /* index of the stage's block 0 among all blocks */
    int total_blocks;
    int widths[CNX_MAX_STAGES];
    int num_classes;
    int has_layer_scale, has_grn; /* a tensor of that role exists */
    size_t num_slots;
    long *slot_tensor; /* tensor index per slot; -1 while unseen */
} loader;

/* ------------------------------------------------------------ slot layout */

static size_t slot_of(const loader *l, const cnx_convnext_name *n) {
    if (n->role < CNX_ROLE_FIRST_DOWNSAMPLE) return (size_t)n->role;
    if (n->role < CNX_ROLE_FIRST_BLOCK)
        return FIXED_SLOTS + (size_t)n->stage * CNX_DOWNSAMPLE_ROLES +
               (size_t)(n->role - CNX_ROLE_FIRST_DOWNSAMPLE);
    return BLOCK_SLOTS_START +
           (size_t)(l->first_block[n->stage] + n->block) * CNX_BLOCK_ROLES +
           (size_t)(n->role - CNX_ROLE_FIRST_BLOCK);
}

static cnx_convnext_name name_of_slot(const loader *l, size_t slot) {
    cnx_convnext_name n = {l->naming, CNX_ROLE_COUNT, -1, -1};
    if (slot < FIXED_SLOTS) {
        n.role = (cnx_role)slot;
    } else if (slot < BLOCK_SLOTS_START) {
        size_t k = slot - FIXED_SLOTS;
        n.stage = (int)(k / CNX_DOWNSAMPLE_ROLES);
        n.role = (cnx_role)(CNX_ROLE_FIRST_DOWNSAMPLE + k % CNX_DOWNSAMPLE_ROLES);
    } else {
        size_t k = slot - BLOCK_SLOTS_START;
        int block = (int)(k / CNX_BLOCK_ROLES);
        n.role = (cnx_role)(CNX_ROLE_FIRST_BLOCK + k % CNX_BLOCK_ROLES);
        n.stage = 0;
        while (n.stage + 1 < l->num_stages && block >= l->first_block[n.stage + 1]) n.stage++;
        n.block = block - l->first_block[n.stage];
    }
    return n;
}

/* Stage 0 has no downsample, and neither do stages the file lacks; layer
 * scale and GRN only where the model has them. */
static int slot_is_required(const loader *l, size_t slot) {
    if (slot < FIXED_SLOTS) return 1;
    if (slot >= BLOCK_SLOTS_START) {
        cnx_role role = (cnx_role)(CNX_ROLE_FIRST_BLOCK + (slot - BLOCK_SLOTS_START) % CNX_BLOCK_ROLES);
        if (role == CNX_ROLE_BLOCK_LAYER_SCALE) return l->has_layer_scale;
        if (role == CNX_ROLE_BLOCK_GRN_WEIGHT || role == CNX_ROLE_BLOCK_GRN_BIAS) return l->has_grn;
        return 1;
    }
    int stage = (int)((slot - FIXED_SLOTS) / CNX_DOWNSAMPLE_ROLES);
    return stage >= 1 && stage < l->num_stages;
}

/* --------------------------------------------------------- name analysis */

static cnx_status classify_names(loader *l) {
    const cnx_safetensors *st = l->st;
    if (st->num_tensors == 0)
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: holds no tensors", l->path);

    /* One example of each scheme, to name two when a file mixes them. */
    const char *example[CNX_NAMING_COUNT] = {NULL};
    int *recognized = calloc(st->num_tensors, sizeof *recognized);
    if (!recognized) return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory", l->path);
    for (size_t i = 0; i < st->num_tensors; i++) {
        recognized[i] = cnx_convnext_parse_name(st->tensors[i].name, &l->names[i]);
        if (recognized[i] && !example[l->names[i].naming])
            example[l->names[i].naming] = st->tensors[i].name;
    }
    int found = -1, other = -1;
    for (int n = 0; n < CNX_NAMING_COUNT; n++) {
        if (!example[n]) continue;
        if (found < 0) found = n;
        else if (other < 0) other = n;
    }

    cnx_status status = CNX_OK;
    if (other >= 0) {
        status = cnx_fail(CNX_ERROR_WEIGHTS, "%s: mixes %s tensor names (%s) with %s names (%s)",
                          l->path, cnx_naming_string((cnx_naming)found), example[found],
                          cnx_naming_string((cnx_naming)other), example[other]);
    } else if (found < 0) {
        status = cnx_fail(CNX_ERROR_WEIGHTS,
                          "%s: no ConvNeXt tensors: expected torchvision names (features.*, "
                          "classifier.*), timm names (stem.*, stages.*, head.*) or transformers "
                          "names (convnext.embeddings.*, convnext.encoder.*, classifier.*), "
                          "found %s",
                          l->path, st->tensors[0].name);
    } else {
        l->naming = (cnx_naming)found;
        for (size_t i = 0; i < st->num_tensors && status == CNX_OK; i++) {
            if (!recognized[i])
                status = cnx_fail(CNX_ERROR_WEIGHTS,
                                  "%s: unexpected tensor %s (not a parameter of a %s ConvNeXt)",
                                  l->path, st->tensors[i].name, cnx_naming_string(l->naming));
            else if (l->names[i].role == CNX_ROLE_BLOCK_LAYER_SCALE)
                l->has_layer_scale = 1;
            else if (l->names[i].role == CNX_ROLE_BLOCK_GRN_WEIGHT ||
                     l->names[i].role == CNX_ROLE_BLOCK_GRN_BIAS)
                l->has_grn = 1;
        }
    }
    free(recognized);
    return status;
}

static cnx_status check_dtypes(const loader *l) {
    for (size_t i = 0; i < l->st->num_tensors; i++) {
        const cnx_safetensors_tensor *t = &l->st->tensors[i];
        if (!cnx_safetensors_is_float_dtype(t->dtype))
            return cnx_fail(CNX_ERROR_UNSUPPORTED,
                            "%s: tensor %s has dtype %s; cnx reads F32, F16 or BF16", l->path,
                            t->name, t->dtype);
    }
    return CNX_OK;
}

/* Stages and the blocks in each: both must count up from 0 without gaps. */
static cnx_status count_blocks(loader *l) {
    const cnx_safetensors *st = l->st;
    size_t n = st->num_tensors;
    int max_block[CNX_MAX_STAGES] = {-1, -1, -1, -1};
    for (size_t i = 0; i < n; i++) {
        const cnx_convnext_name *name = &l->names[i];
        if (name->stage >= CNX_MAX_STAGES)
            return cnx_fail(CNX_ERROR_UNSUPPORTED,
                            "%s: tensor %s belongs to stage %d; cnx supports at most %d stages",
                            l->path, st->tensors[i].name, name->stage, CNX_MAX_STAGES);
        if (name->stage + 1 > l->num_stages) l->num_stages = name->stage + 1;
        if (name->block >= 0 && name->block > max_block[name->stage])
            max_block[name->stage] = name->block;
    }

    /* Each block has a tensor, so there are at most n blocks per stage:
     * the first absent index is found among 0..n. */
    unsigned char *present = malloc(n + 1);
    if (!present) return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory", l->path);
    cnx_status status = CNX_OK;
    for (int s = 0; s < l->num_stages && status == CNX_OK; s++) {
        memset(present, 0, n + 1);
        for (size_t i = 0; i < n; i++)
            if (l->names[i].stage == s && l->names[i].block >= 0 &&
                (size_t)l->names[i].block <= n)
                present[l->names[i].block] = 1;
        int first_absent = 0;
        while (present[first_absent]) first_absent++;
        cnx_convnext_name example = {l->naming, CNX_ROLE_BLOCK_DW_WEIGHT, s, first_absent};
        char missing[128];
        cnx_convnext_format_name(&example, missing, sizeof missing);
        if (max_block[s] < 0)
            status = cnx_fail(CNX_ERROR_WEIGHTS, "%s: stage %d has no blocks (no tensor %s)",
                              l->path, s, missing);
        else if (first_absent < max_block[s])
            status = cnx_fail(CNX_ERROR_WEIGHTS,
                              "%s: stage %d block indices are not contiguous: block %d is "
                              "missing (no tensor %s) but block %d exists",
                              l->path, s, first_absent, missing, max_block[s]);
        l->depths[s] = max_block[s] + 1;
        l->first_block[s] = l->total_blocks;
        l->total_blocks += l->depths[s];
    }
    free(present);
    return status;
}

static cnx_status assign_slots(loader *l) {
    l->num_slots = BLOCK_SLOTS_START + (size_t)l->total_blocks * CNX_BLOCK_ROLES;
    l->slot_tensor = malloc(l->num_slots * sizeof *l->slot_tensor);
    if (!l->slot_tensor) return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory", l->path);
    for (size_t s = 0; s < l->num_slots; s++) l->slot_tensor[s] = -1;

    for (size_t i = 0; i < l->st->num_tensors; i++) {
        size_t slot = slot_of(l, &l->names[i]);
        if (l->slot_tensor[slot] >= 0)
            return cnx_fail(CNX_ERROR_WEIGHTS, "%s: tensors %s and %s are the same parameter",
                            l->path, l->st->tensors[l->slot_tensor[slot]].name,
                            l->st->tensors[i].name);
        l->slot_tensor[slot] = (long)i;
    }
    for (size_t slot = 0; slot < l->num_slots; slot++) {
        if (l->slot_tensor[slot] >= 0 || !slot_is_required(l, slot)) continue;
        cnx_convnext_name n = name_of_slot(l, slot);
        char missing[128];
        cnx_convnext_format_name(&n, missing, sizeof missing);
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: missing tensor %s", l->path, missing);
    }
    return CNX_OK;
}

/* ---------------------------------------------------------------- shapes */

static const cnx_safetensors_tensor *slot_tensor(const loader *l, const cnx_convnext_name *n) {
    return &l->st->tensors[l->slot_tensor[slot_of(l, n)]];
}

static cnx_status shape_error(const loader *l, const cnx_safetensors_tensor *t,
                              const char *expected) {
    char got[160];
    cnx_safetensors_format_shape(t->shape, t->ndim, got, sizeof got);
    return cnx_fail(CNX_ERROR_WEIGHTS, "%s: tensor %s has shape %s, expected %s", l->path,
                    t->name, got, expected);
}

/* Widths from each stage's first depthwise conv, classes from the head. */
static cnx_status infer_sizes(loader *l) {
    for (int s = 0; s < l->num_stages; s++) {
        cnx_convnext_name dw = {l->naming, CNX_ROLE_BLOCK_DW_WEIGHT, s, 0};
        const cnx_safetensors_tensor *t = slot_tensor(l, &dw);
        if (t->ndim != 4 || t->shape[0] < 1 || t->shape[1] != 1 || t->shape[2] != 7 ||
            t->shape[3] != 7)
            return shape_error(l, t, "[C, 1, 7, 7] (a depthwise 7x7 conv)");
        if (t->shape[0] > MAX_WIDTH)
            return cnx_fail(CNX_ERROR_UNSUPPORTED, "%s: tensor %s: width %" PRId64
                            " is over cnx's limit of %d", l->path, t->name, t->shape[0],
                            MAX_WIDTH);
        l->widths[s] = (int)t->shape[0];
    }
    cnx_convnext_name fc = {l->naming, CNX_ROLE_HEAD_FC_WEIGHT, -1, -1};
    const cnx_safetensors_tensor *t = slot_tensor(l, &fc);
    int last = l->widths[l->num_stages - 1];
    if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] != last) {
        char expected[64];
        snprintf(expected, sizeof expected, "[num_classes, %d]", last);
        return shape_error(l, t, expected);
    }
    if (t->shape[0] > MAX_CLASSES)
        return cnx_fail(CNX_ERROR_UNSUPPORTED, "%s: tensor %s: %" PRId64
                        " classes is over cnx's limit of %d", l->path, t->name, t->shape[0],
                        MAX_CLASSES);
    l->num_classes = (int)t->shape[0];
    return CNX_OK;
}

typedef struct shape {
    int ndim;
    int64_t dims[4];
} shape;

static shape expected_shape(const loader *l, const cnx_convnext_name *n) {
    int64_t c = n->stage >= 0 ? l->widths[n->stage] : 0;
    int64_t c_prev = n->stage >= 1 ? l->widths[n->stage - 1] : 0;
    int64_t c0 = l->widths[0], c_last = l->widths[l->num_stages - 1];
    int64_t classes = l->num_classes;
    switch (n->role) {
    case CNX_ROLE_STEM_CONV_WEIGHT: return (shape){4, {c0, 3, 4, 4}};
    case CNX_ROLE_STEM_CONV_BIAS:
    case CNX_ROLE_STEM_NORM_WEIGHT:
    case CNX_ROLE_STEM_NORM_BIAS: return (shape){1, {c0}};
    case CNX_ROLE_HEAD_NORM_WEIGHT:
    case CNX_ROLE_HEAD_NORM_BIAS: return (shape){1, {c_last}};
    case CNX_ROLE_HEAD_FC_WEIGHT: return (shape){2, {classes, c_last}};
    case CNX_ROLE_HEAD_FC_BIAS: return (shape){1, {classes}};
    case CNX_ROLE_DOWN_NORM_WEIGHT:
    case CNX_ROLE_DOWN_NORM_BIAS: return (shape){1, {c_prev}};
    case CNX_ROLE_DOWN_CONV_WEIGHT: return (shape){4, {c, c_prev, 2, 2}};
    case CNX_ROLE_DOWN_CONV_BIAS: return (shape){1, {c}};
    case CNX_ROLE_BLOCK_DW_WEIGHT: return (shape){4, {c, 1, 7, 7}};
    case CNX_ROLE_BLOCK_DW_BIAS:
    case CNX_ROLE_BLOCK_NORM_WEIGHT:
    case CNX_ROLE_BLOCK_NORM_BIAS:
    case CNX_ROLE_BLOCK_FC2_BIAS: return (shape){1, {c}};
    case CNX_ROLE_BLOCK_FC1_WEIGHT: return (shape){2, {4 * c, c}};
    case CNX_ROLE_BLOCK_FC1_BIAS: return (shape){1, {4 * c}};
    case CNX_ROLE_BLOCK_FC2_WEIGHT: return (shape){2, {c, 4 * c}};
    case CNX_ROLE_BLOCK_LAYER_SCALE:
        /* torchvision keeps [C,1,1] to broadcast over NCHW; timm's gamma and
         * transformers' layer_scale_parameter are [C]. */
        return n->naming == CNX_NAMING_TORCHVISION ? (shape){3, {c, 1, 1}} : (shape){1, {c}};
    case CNX_ROLE_BLOCK_GRN_WEIGHT:
    case CNX_ROLE_BLOCK_GRN_BIAS:
        /* transformers broadcasts over NHWC with [1,1,1,4C]; timm keeps [4C]. */
        return n->naming == CNX_NAMING_TRANSFORMERS ? (shape){4, {1, 1, 1, 4 * c}}
                                                    : (shape){1, {4 * c}};
    case CNX_ROLE_COUNT: break;
    }
    return (shape){0, {0}};
}

static int shape_equals(const cnx_safetensors_tensor *t, const shape *s) {
    if (t->ndim != s->ndim) return 0;
    for (int d = 0; d < s->ndim; d++)
        if (t->shape[d] != s->dims[d]) return 0;
    return 1;
}

static cnx_status check_shapes(const loader *l) {
    for (size_t i = 0; i < l->st->num_tensors; i++) {
        const cnx_safetensors_tensor *t = &l->st->tensors[i];
        const cnx_convnext_name *n = &l->names[i];
        shape want = expected_shape(l, n);
        if (shape_equals(t, &want)) continue;
        /* timm's conv_mlp models (atto..nano) keep the MLP as 1x1 convs. */
        int is_fc = n->role == CNX_ROLE_BLOCK_FC1_WEIGHT || n->role == CNX_ROLE_BLOCK_FC2_WEIGHT;
        if (is_fc && n->naming == CNX_NAMING_TIMM) {
            shape as_conv = {4, {want.dims[0], want.dims[1], 1, 1}};
            if (shape_equals(t, &as_conv)) continue;
        }
        char expected[160];
        cnx_safetensors_format_shape(want.dims, want.ndim, expected, sizeof expected);
        return shape_error(l, t, expected);
    }
    return CNX_OK;
}

/* ------------------------------------------------------- values, pointers */

static const float **field_of(cnx_convnext_weights *w, const cnx_convnext_name *n) {
    cnx_downsample_weights *down = n->stage >= 0 ? &w->downsample[n->stage] : NULL;
    cnx_block_weights *block = n->block >= 0 ? &w->blocks[n->stage][n->block] : NULL;
    switch (n->role) {
    case CNX_ROLE_STEM_CONV_WEIGHT: return &w->stem_weight;
    case CNX_ROLE_STEM_CONV_BIAS: return &w->stem_bias;
    case CNX_ROLE_STEM_NORM_WEIGHT: return &w->stem_norm_weight;
    case CNX_ROLE_STEM_NORM_BIAS: return &w->stem_norm_bias;
    case CNX_ROLE_HEAD_NORM_WEIGHT: return &w->head_norm_weight;
    case CNX_ROLE_HEAD_NORM_BIAS: return &w->head_norm_bias;
    case CNX_ROLE_HEAD_FC_WEIGHT: return &w->head_weight;
    case CNX_ROLE_HEAD_FC_BIAS: return &w->head_bias;
    case CNX_ROLE_DOWN_NORM_WEIGHT: return &down->norm_weight;
    case CNX_ROLE_DOWN_NORM_BIAS: return &down->norm_bias;
    case CNX_ROLE_DOWN_CONV_WEIGHT: return &down->conv_weight;
    case CNX_ROLE_DOWN_CONV_BIAS: return &down->conv_bias;
    case CNX_ROLE_BLOCK_DW_WEIGHT: return &block->dw_weight;
    case CNX_ROLE_BLOCK_DW_BIAS: return &block->dw_bias;
    case CNX_ROLE_BLOCK_NORM_WEIGHT: return &block->norm_weight;
    case CNX_ROLE_BLOCK_NORM_BIAS: return &block->norm_bias;
    case CNX_ROLE_BLOCK_FC1_WEIGHT: return &block->fc1_weight;
    case CNX_ROLE_BLOCK_FC1_BIAS: return &block->fc1_bias;
    case CNX_ROLE_BLOCK_GRN_WEIGHT: return &block->grn_weight;
    case CNX_ROLE_BLOCK_GRN_BIAS: return &block->grn_bias;
    case CNX_ROLE_BLOCK_FC2_WEIGHT: return &block->fc2_weight;
    case CNX_ROLE_BLOCK_FC2_BIAS: return &block->fc2_bias;
    case CNX_ROLE_BLOCK_LAYER_SCALE: return &block->layer_scale;
    case CNX_ROLE_COUNT: break;
    }
    return NULL;
}

static cnx_status check_finite(const loader *l, const cnx_safetensors_tensor *t,
                               const float *values) {
    for (int64_t i = 0; i < t->numel; i++) {
        if (isfinite(values[i])) continue;
        const char *what = isnan(values[i]) ? "NaN" : values[i] > 0 ? "+Inf" : "-Inf";
        return cnx_fail(CNX_ERROR_WEIGHTS,
                        "%s: tensor %s has a non-finite value (%s) at element %" PRId64,
                        l->path, t->name, what, i);
    }
    return CNX_OK;
}

/* Every tensor, converted to fp32, in slot order in one allocation. */
static cnx_status convert_values(const loader *l, cnx_convnext_weights *w) {
    int64_t total = 0;
    for (size_t i = 0; i < l->st->num_tensors; i++) total += l->st->tensors[i].numel;
    if ((uint64_t)total > SIZE_MAX / sizeof(float))
        return cnx_fail(CNX_ERROR_TOO_LARGE, "%s: %" PRId64 " parameters do not fit in memory",
                        l->path, total);
    w->num_parameters = total;
    w->arena = malloc(total ? (size_t)total * sizeof(float) : 1);
    w->block_storage = calloc((size_t)l->total_blocks, sizeof *w->block_storage);
    if (!w->arena || !w->block_storage)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory for %" PRId64
                        " parameters", l->path, total);
    for (int s = 0; s < l->num_stages; s++) w->blocks[s] = w->block_storage + l->first_block[s];

    float *next = w->arena;
    for (size_t slot = 0; slot < l->num_slots; slot++) {
        if (l->slot_tensor[slot] < 0) continue;
        const cnx_safetensors_tensor *t = &l->st->tensors[l->slot_tensor[slot]];
        cnx_status status = cnx_safetensors_to_f32(l->st, t, next);
        if (status == CNX_OK) status = check_finite(l, t, next);
        if (status != CNX_OK) return status;
        cnx_convnext_name n = name_of_slot(l, slot);
        *field_of(w, &n) = next;
        next += t->numel;
    }
    return CNX_OK;
}

/* ---------------------------------------------------- names from shapes */

static const char *weights_dtype(const cnx_safetensors *st) {
    for (size_t i = 1; i < st->num_tensors; i++)
        if (strcmp(st->tensors[i].dtype, st->tensors[0].dtype) != 0) return "mixed";
    return st->tensors[0].dtype;
}

/* -------------------------------------------------------------- metadata */

static cnx_status parse_side(const char *path, const char *key, const char *text, int *out) {
    long value = 0;
    int digits = 0;
    for (const char *p = text; *p; p++, digits++) {
        if (*p < '0' || *p > '9' || digits >= 9) {
            digits = 0;
            break;
        }
        value = value * 10 + (*p - '0');
    }
    if (digits == 0 || value < 1 || value > CNX_MAX_SIDE)
        return cnx_fail(CNX_ERROR_WEIGHTS,
                        "%s: metadata \"%s\" is \"%s\", expected a whole number of pixels "
                        "from 1 to %d", path, key, text, CNX_MAX_SIDE);
    *out = (int)value;
    return CNX_OK;
}

/* "0.485,0.456,0.406" -> `count` finite doubles, as Python's float() reads
 * them. Parsed in the C locale whatever the embedding program set, so
 * "0.485" never depends on LC_NUMERIC. */
static cnx_status parse_numbers(const char *path, const char *key, const char *text, int count,
                                int positive, double *out) {
    locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: cannot create the C locale", path);
    locale_t previous = uselocale(c_locale);

    const char *p = text;
    int ok = 1;
    for (int c = 0; c < count && ok; c++) {
        char *end;
        double value = strtod(p, &end);
        while (*end == ' ') end++;
        /* What the value becomes as a float32 must be finite (and positive) too. */
        float narrowed = (float)value;
        ok = end != p && isfinite(value) && isfinite(narrowed) && (!positive || narrowed > 0);
        ok = ok && (c < count - 1 ? *end == ',' : *end == '\0');
        out[c] = value;
        p = end + 1;
    }
    uselocale(previous);
    freelocale(c_locale);
    if (!ok)
        return cnx_fail(CNX_ERROR_WEIGHTS,
                        "%s: metadata \"%s\" is \"%s\", expected %s %s number%s", path, key,
                        text, count == 1 ? "one" : "three comma-separated",
                        positive ? "positive" : "finite", count == 1 ? "" : "s");
    return CNX_OK;
}

/* Three numbers as torch's float32 tensor of Python floats holds them. */
static cnx_status parse_triple(const char *path, const char *key, const char *text,
                               int positive, float out[3]) {
    double values[3];
    cnx_status status = parse_numbers(path, key, text, 3, positive, values);
    for (int c = 0; c < 3 && status == CNX_OK; c++) out[c] = (float)values[c];
    return status;
}

static cnx_status name_error(const char *path, const char *key, const char *text,
                             const char *expected) {
    return cnx_fail(CNX_ERROR_WEIGHTS, "%s: metadata \"%s\" is \"%s\", expected %s", path,
                    key, text, expected);
}

/* The choices beyond torchvision's: filter, crop mode, crop offset, rescale. */
static cnx_status read_preprocess_choices(const cnx_safetensors *st, cnx_preprocess *p,
                                          cnx_preprocess_sources *from) {
    const char *path = st->path;
    const char *interpolation = cnx_safetensors_metadata(st, "interpolation");
    const char *crop_mode = cnx_safetensors_metadata(st, "crop_mode");
    const char *crop_offset = cnx_safetensors_metadata(st, "crop_offset");
    const char *rescale = cnx_safetensors_metadata(st, "rescale_factor");
    if (interpolation && cnx_interpolation_parse(interpolation, &p->interpolation) != 0)
        return name_error(path, "interpolation", interpolation,
                          "bilinear, bicubic, box, hamming or lanczos");
    if (p->interpolation == CNX_INTERPOLATION_NEAREST)
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "%s: metadata interpolation is \"nearest\"; cnx implements Pillow's "
                        "separable filters (bilinear, bicubic, box, hamming, lanczos)", path);
    if (crop_mode && cnx_crop_mode_parse(crop_mode, &p->crop_mode) != 0)
        return name_error(path, "crop_mode", crop_mode, "center, squash or border");
    if (crop_offset && cnx_crop_offset_parse(crop_offset, &p->crop_offset) != 0)
        return name_error(path, "crop_offset", crop_offset, "round or floor");
    if (interpolation) from->interpolation = CNX_SOURCE_METADATA;
    if (crop_mode) from->crop_mode = CNX_SOURCE_METADATA;
    if (crop_offset) from->crop_offset = CNX_SOURCE_METADATA;
    if (!rescale) return CNX_OK;
    from->rescale_factor = CNX_SOURCE_METADATA;
    return parse_numbers(path, "rescale_factor", rescale, 1, 1, &p->rescale_factor);
}

static void set_all_sources(cnx_preprocess_sources *from, cnx_value_source source) {
    *from = (cnx_preprocess_sources){source, source, source, source, source,
                                     source, source, source, source};
}

/* The preprocessing: torchvision's defaults, then what the checkpoint
 * folder's config files say, then the file's metadata, each value recording
 * where it came from. */
static cnx_status read_preprocess(const cnx_safetensors *st, const cnx_checkpoint_config *config,
                                  cnx_convnext_weights *w) {
    const char *path = st->path;
    cnx_preprocess *p = &w->preprocess;
    cnx_preprocess_sources *from = &w->preprocess_sources;
    *p = cnx_default_preprocess();
    set_all_sources(from, CNX_SOURCE_DEFAULT);
    if (config && config->has_preprocess) {
        *p = config->preprocess;
        set_all_sources(from, config->source);
    }

    const char *resize = cnx_safetensors_metadata(st, "resize");
    const char *crop = cnx_safetensors_metadata(st, "crop");
    const char *mean = cnx_safetensors_metadata(st, "mean");
    const char *std = cnx_safetensors_metadata(st, "std");
    cnx_status status = read_preprocess_choices(st, p, from);
    if (resize && status == CNX_OK) status = parse_side(path, "resize", resize, &p->resize);
    if (crop && status == CNX_OK) status = parse_side(path, "crop", crop, &p->crop);
    if (mean && status == CNX_OK) status = parse_triple(path, "mean", mean, 0, p->mean);
    if (std && status == CNX_OK) status = parse_triple(path, "std", std, 1, p->std);
    if (resize) from->resize = CNX_SOURCE_METADATA;
    if (crop) from->crop = CNX_SOURCE_METADATA;
    if (mean) from->mean = CNX_SOURCE_METADATA;
    if (std) from->std = CNX_SOURCE_METADATA;

    const cnx_value_source *each = &from->resize;
    w->has_preprocess_metadata = 0;
    for (size_t i = 0; i < sizeof *from / sizeof *each; i++)
        if (each[i] != CNX_SOURCE_DEFAULT) w->has_preprocess_metadata = 1;
    return status;
}

/* ------------------------------------------------- the folder's config */

/* What the config files declare must be what the tensors are. */
static cnx_status check_config(const cnx_checkpoint_config *c, const cnx_convnext_weights *w) {
    const char *path = c->config_path;
    if (c->library == CNX_CONFIG_TIMM && strcmp(c->architecture, w->architecture) != 0)
        return cnx_fail(CNX_ERROR_WEIGHTS,
                        "%s: says architecture %s, but the tensors are a %s (depths %d,%d,%d,%d, "
                        "width %d, %s)", path, c->architecture, w->architecture, w->depths[0],
                        w->depths[1], w->depths[2], w->depths[3], w->widths[0],
                        w->has_grn ? "GRN" : "no GRN");
    if (c->library == CNX_CONFIG_TRANSFORMERS && c->declares_grn != w->has_grn)
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: model_type %s, but the tensors %s GRN", path,
                        c->architecture, w->has_grn ? "have" : "have no");
    if (c->num_stages && c->num_stages != w->num_stages)
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: %d stages, but the tensors have %d", path,
                        c->num_stages, w->num_stages);
    for (int s = 0; s < c->num_stages; s++)
        if (c->depths[s] != w->depths[s] || c->widths[s] != w->widths[s])
            return cnx_fail(CNX_ERROR_WEIGHTS,
                            "%s: stage %d has depth %d and width %d, but the tensors have %d "
                            "and %d", path, s, c->depths[s], c->widths[s], w->depths[s],
                            w->widths[s]);
    if (c->num_classes >= 0 && c->num_classes != w->num_classes)
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: %d classes, but the classifier has %d", path,
                        c->num_classes, w->num_classes);
    if (c->labels && c->num_labels != w->num_classes)
        return cnx_fail(CNX_ERROR_WEIGHTS, "%s: %d class names for %d classes", path,
                        c->num_labels, w->num_classes);
    return CNX_OK;
}

/* Takes the config's class names and the final LayerNorm's eps, and names
 * the folder as the source where the file names none. */
static void apply_config(cnx_checkpoint_config *c, cnx_convnext_weights *w) {
    if (!w->source[0])
        snprintf(w->source, sizeof w->source, "%s checkpoint folder (%s)",
                 c->library == CNX_CONFIG_TIMM ? "timm" : "transformers", c->architecture);
    w->labels = c->labels;
    w->num_labels = c->num_labels;
    c->labels = NULL;
    c->num_labels = 0;
    if (c->head_norm_eps > 0) w->head_norm_eps = c->head_norm_eps;
}

/* ------------------------------------------------------------------ load */

static cnx_status load(loader *l, cnx_checkpoint_config *config, cnx_convnext_weights *w) {
    l->names = calloc(l->st->num_tensors ? l->st->num_tensors : 1, sizeof *l->names);
    if (!l->names) return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "%s: out of memory", l->path);
    cnx_status status = classify_names(l);
    if (status == CNX_OK) status = check_dtypes(l);
    if (status == CNX_OK) status = count_blocks(l);
    if (status == CNX_OK) status = assign_slots(l);
    if (status == CNX_OK) status = infer_sizes(l);
    if (status == CNX_OK) status = check_shapes(l);
    if (status == CNX_OK) status = read_preprocess(l->st, config, w);
    if (status != CNX_OK) return status;
    const char *source = cnx_safetensors_metadata(l->st, "source");
    snprintf(w->source, sizeof w->source, "%s", source ? source : "");

    w->num_stages = l->num_stages;
    memcpy(w->depths, l->depths, sizeof w->depths);
    memcpy(w->widths, l->widths, sizeof w->widths);
    w->num_classes = l->num_classes;
    w->has_grn = l->has_grn;
    w->has_layer_scale = l->has_layer_scale;
    w->head_norm_eps = 1e-6f;
    snprintf(w->architecture, sizeof w->architecture, "%s",
             cnx_convnext_architecture_name(w->num_stages, w->depths, w->widths, w->has_grn));
    snprintf(w->weights_dtype, sizeof w->weights_dtype, "%s", weights_dtype(l->st));
    snprintf(w->naming, sizeof w->naming, "%s", cnx_naming_string(l->naming));
    if (config && config->library != CNX_CONFIG_NONE) {
        if ((status = check_config(config, w)) != CNX_OK) return status;
        apply_config(config, w);
    }
    return convert_values(l, w);
}

static cnx_status load_file(const char *path, cnx_checkpoint_config *config,
                            cnx_convnext_weights *weights) {
    memset(weights, 0, sizeof *weights);
    cnx_safetensors st;
    cnx_status status = cnx_safetensors_open(path, &st);
    if (status != CNX_OK) return status;

    loader l = {.st = &st, .path = st.path};
    status = load(&l, config, weights);
    free(l.names);
    free(l.slot_tensor);
    cnx_safetensors_close(&st);
    if (status != CNX_OK) cnx_convnext_weights_free(weights);
    return status;
}

cnx_status cnx_convnext_weights_load(const char *path, cnx_convnext_weights *weights) {
    if (!path || !weights)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_convnext_weights_load: %s is NULL",
                        path ? "weights" : "path");
    return load_file(path, NULL, weights);
}

static int is_file(const char *path) {
    struct stat info;
    return stat(path, &info) == 0 && S_ISREG(info.st_mode);
}

cnx_status cnx_convnext_weights_open(const char *path, int use_test_size,
                                     cnx_convnext_weights *weights) {
    if (!path || !weights)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_convnext_weights_open: %s is NULL",
                        path ? "weights" : "path");
    struct stat info;
    if (stat(path, &info) != 0 || !S_ISDIR(info.st_mode)) return load_file(path, NULL, weights);

    memset(weights, 0, sizeof *weights);
    char file[4096];
    if ((size_t)snprintf(file, sizeof file, "%s/model.safetensors", path) >= sizeof file)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "%s: path too long", path);
    if (!is_file(file)) {
        char pickle[4096];
        snprintf(pickle, sizeof pickle, "%s/pytorch_model.bin", path);
        if (is_file(pickle))
            return cnx_fail(CNX_ERROR_UNSUPPORTED,
                            "%s: holds pytorch_model.bin, a pickle cnx does not load; convert "
                            "it: tools/convert_weights.py %s OUT.safetensors", path, path);
        return cnx_fail(CNX_ERROR_IO,
                        "%s: a folder with no weights in it (expected model.safetensors)", path);
    }
    cnx_checkpoint_config config;
    cnx_status status = cnx_checkpoint_config_read(path, use_test_size, &config);
    if (status != CNX_OK) return status;
    status = load_file(file, &config, weights);
    cnx_checkpoint_config_free(&config);
    return status;
}

cnx_status cnx_convnext_weights_check(const cnx_convnext_weights *w, int *has_grn) {
    *has_grn = 0;
    if (!(w->head_norm_eps >= 0.0f) || isinf(w->head_norm_eps))
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "head LayerNorm epsilon %g: expected a finite value >= 0",
                        (double)w->head_norm_eps);
    for (int s = 0; s < w->num_stages; s++) {
        for (int j = 0; j < w->depths[s]; j++) {
            const cnx_block_weights *k = &w->blocks[s][j];
            if (!k->grn_weight != !k->grn_bias)
                return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "block %d.%d has a GRN %s but no %s",
                                s, j, k->grn_weight ? "weight" : "bias",
                                k->grn_weight ? "bias" : "weight");
            *has_grn = *has_grn || k->grn_weight != NULL;
        }
    }
    return CNX_OK;
}

void cnx_convnext_weights_free(cnx_convnext_weights *weights) {
    for (int i = 0; weights->labels && i < weights->num_labels; i++) free(weights->labels[i]);
    free(weights->labels);
    free(weights->arena);
    free(weights->block_storage);
    memset(weights, 0, sizeof *weights);
}
