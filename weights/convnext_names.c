/* One table of name patterns serves both directions: parsing a file's names
 * and spelling out the name of a tensor that is missing. */
#include "convnext_names.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* How the first number in a pattern encodes the stage. torchvision puts
 * stages and downsamples alternately in one "features" Sequential. */
typedef enum stage_field {
    NO_STAGE,          /* stem and head: no number */
    TORCHVISION_STAGE, /* features.{2s+1}: stage s's blocks */
    TORCHVISION_DOWN,  /* features.{2s}, s >= 1: the downsample before stage s */
    STAGE,             /* stages.{s} (timm, transformers) */
    DOWN               /* stages.{s}.downsample(_layer), s >= 1 */
} stage_field;

typedef struct name_pattern {
    cnx_naming naming;
    cnx_role role;
    stage_field stage;
    const char *pattern; /* '#' is a number: the stage field, then the block */
} name_pattern;

static const name_pattern patterns[] = {
    {CNX_NAMING_TORCHVISION, CNX_ROLE_STEM_CONV_WEIGHT, NO_STAGE, "features.0.0.weight"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_STEM_CONV_BIAS, NO_STAGE, "features.0.0.bias"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_STEM_NORM_WEIGHT, NO_STAGE, "features.0.1.weight"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_STEM_NORM_BIAS, NO_STAGE, "features.0.1.bias"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_HEAD_NORM_WEIGHT, NO_STAGE, "classifier.0.weight"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_HEAD_NORM_BIAS, NO_STAGE, "classifier.0.bias"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_HEAD_FC_WEIGHT, NO_STAGE, "classifier.2.weight"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_HEAD_FC_BIAS, NO_STAGE, "classifier.2.bias"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_DOWN_NORM_WEIGHT, TORCHVISION_DOWN, "features.#.0.weight"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_DOWN_NORM_BIAS, TORCHVISION_DOWN, "features.#.0.bias"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_DOWN_CONV_WEIGHT, TORCHVISION_DOWN, "features.#.1.weight"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_DOWN_CONV_BIAS, TORCHVISION_DOWN, "features.#.1.bias"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_BLOCK_DW_WEIGHT, TORCHVISION_STAGE, "features.#.#.block.0.weight"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_BLOCK_DW_BIAS, TORCHVISION_STAGE, "features.#.#.block.0.bias"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_BLOCK_NORM_WEIGHT, TORCHVISION_STAGE, "features.#.#.block.2.weight"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_BLOCK_NORM_BIAS, TORCHVISION_STAGE, "features.#.#.block.2.bias"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_BLOCK_FC1_WEIGHT, TORCHVISION_STAGE, "features.#.#.block.3.weight"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_BLOCK_FC1_BIAS, TORCHVISION_STAGE, "features.#.#.block.3.bias"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_BLOCK_FC2_WEIGHT, TORCHVISION_STAGE, "features.#.#.block.5.weight"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_BLOCK_FC2_BIAS, TORCHVISION_STAGE, "features.#.#.block.5.bias"},
    {CNX_NAMING_TORCHVISION, CNX_ROLE_BLOCK_LAYER_SCALE, TORCHVISION_STAGE, "features.#.#.layer_scale"},

    {CNX_NAMING_TIMM, CNX_ROLE_STEM_CONV_WEIGHT, NO_STAGE, "stem.0.weight"},
    {CNX_NAMING_TIMM, CNX_ROLE_STEM_CONV_BIAS, NO_STAGE, "stem.0.bias"},
    {CNX_NAMING_TIMM, CNX_ROLE_STEM_NORM_WEIGHT, NO_STAGE, "stem.1.weight"},
    {CNX_NAMING_TIMM, CNX_ROLE_STEM_NORM_BIAS, NO_STAGE, "stem.1.bias"},
    {CNX_NAMING_TIMM, CNX_ROLE_HEAD_NORM_WEIGHT, NO_STAGE, "head.norm.weight"},
    {CNX_NAMING_TIMM, CNX_ROLE_HEAD_NORM_BIAS, NO_STAGE, "head.norm.bias"},
    {CNX_NAMING_TIMM, CNX_ROLE_HEAD_FC_WEIGHT, NO_STAGE, "head.fc.weight"},
    {CNX_NAMING_TIMM, CNX_ROLE_HEAD_FC_BIAS, NO_STAGE, "head.fc.bias"},
    {CNX_NAMING_TIMM, CNX_ROLE_DOWN_NORM_WEIGHT, DOWN, "stages.#.downsample.0.weight"},
    {CNX_NAMING_TIMM, CNX_ROLE_DOWN_NORM_BIAS, DOWN, "stages.#.downsample.0.bias"},
    {CNX_NAMING_TIMM, CNX_ROLE_DOWN_CONV_WEIGHT, DOWN, "stages.#.downsample.1.weight"},
    {CNX_NAMING_TIMM, CNX_ROLE_DOWN_CONV_BIAS, DOWN, "stages.#.downsample.1.bias"},
    {CNX_NAMING_TIMM, CNX_ROLE_BLOCK_DW_WEIGHT, STAGE, "stages.#.blocks.#.conv_dw.weight"},
    {CNX_NAMING_TIMM, CNX_ROLE_BLOCK_DW_BIAS, STAGE, "stages.#.blocks.#.conv_dw.bias"},
    {CNX_NAMING_TIMM, CNX_ROLE_BLOCK_NORM_WEIGHT, STAGE, "stages.#.blocks.#.norm.weight"},
    {CNX_NAMING_TIMM, CNX_ROLE_BLOCK_NORM_BIAS, STAGE, "stages.#.blocks.#.norm.bias"},
    {CNX_NAMING_TIMM, CNX_ROLE_BLOCK_FC1_WEIGHT, STAGE, "stages.#.blocks.#.mlp.fc1.weight"},
    {CNX_NAMING_TIMM, CNX_ROLE_BLOCK_FC1_BIAS, STAGE, "stages.#.blocks.#.mlp.fc1.bias"},
    {CNX_NAMING_TIMM, CNX_ROLE_BLOCK_GRN_WEIGHT, STAGE, "stages.#.blocks.#.mlp.grn.weight"},
    {CNX_NAMING_TIMM, CNX_ROLE_BLOCK_GRN_BIAS, STAGE, "stages.#.blocks.#.mlp.grn.bias"},
    {CNX_NAMING_TIMM, CNX_ROLE_BLOCK_FC2_WEIGHT, STAGE, "stages.#.blocks.#.mlp.fc2.weight"},
    {CNX_NAMING_TIMM, CNX_ROLE_BLOCK_FC2_BIAS, STAGE, "stages.#.blocks.#.mlp.fc2.bias"},
    {CNX_NAMING_TIMM, CNX_ROLE_BLOCK_LAYER_SCALE, STAGE, "stages.#.blocks.#.gamma"},

    /* transformers, after its base model's "convnext." / "convnextv2." prefix. */
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_STEM_CONV_WEIGHT, NO_STAGE, "embeddings.patch_embeddings.weight"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_STEM_CONV_BIAS, NO_STAGE, "embeddings.patch_embeddings.bias"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_STEM_NORM_WEIGHT, NO_STAGE, "embeddings.layernorm.weight"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_STEM_NORM_BIAS, NO_STAGE, "embeddings.layernorm.bias"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_HEAD_NORM_WEIGHT, NO_STAGE, "layernorm.weight"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_HEAD_NORM_BIAS, NO_STAGE, "layernorm.bias"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_HEAD_FC_WEIGHT, NO_STAGE, "classifier.weight"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_HEAD_FC_BIAS, NO_STAGE, "classifier.bias"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_DOWN_NORM_WEIGHT, DOWN, "encoder.stages.#.downsampling_layer.0.weight"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_DOWN_NORM_BIAS, DOWN, "encoder.stages.#.downsampling_layer.0.bias"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_DOWN_CONV_WEIGHT, DOWN, "encoder.stages.#.downsampling_layer.1.weight"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_DOWN_CONV_BIAS, DOWN, "encoder.stages.#.downsampling_layer.1.bias"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_BLOCK_DW_WEIGHT, STAGE, "encoder.stages.#.layers.#.dwconv.weight"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_BLOCK_DW_BIAS, STAGE, "encoder.stages.#.layers.#.dwconv.bias"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_BLOCK_NORM_WEIGHT, STAGE, "encoder.stages.#.layers.#.layernorm.weight"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_BLOCK_NORM_BIAS, STAGE, "encoder.stages.#.layers.#.layernorm.bias"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_BLOCK_FC1_WEIGHT, STAGE, "encoder.stages.#.layers.#.pwconv1.weight"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_BLOCK_FC1_BIAS, STAGE, "encoder.stages.#.layers.#.pwconv1.bias"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_BLOCK_GRN_WEIGHT, STAGE, "encoder.stages.#.layers.#.grn.weight"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_BLOCK_GRN_BIAS, STAGE, "encoder.stages.#.layers.#.grn.bias"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_BLOCK_FC2_WEIGHT, STAGE, "encoder.stages.#.layers.#.pwconv2.weight"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_BLOCK_FC2_BIAS, STAGE, "encoder.stages.#.layers.#.pwconv2.bias"},
    {CNX_NAMING_TRANSFORMERS, CNX_ROLE_BLOCK_LAYER_SCALE, STAGE, "encoder.stages.#.layers.#.layer_scale_parameter"},
};

#define NUM_PATTERNS (sizeof patterns / sizeof patterns[0])

/* Prefixes in front of every name: wrappers' (DataParallel, training
 * scripts) and transformers' base model (classifier.* has none). */
static const char *const wrapper_prefixes[] = {"module.", "model.", "convnextv2.", "convnext."};

const char *cnx_naming_string(cnx_naming naming) {
    switch (naming) {
    case CNX_NAMING_TIMM: return "timm";
    case CNX_NAMING_TRANSFORMERS: return "transformers";
    default: return "torchvision";
    }
}

/* A decimal number as PyTorch writes module indices: no sign, no leading
 * zeros. Returns the characters consumed, 0 when there is no such number. */
static size_t parse_index(const char *text, int *value) {
    if (text[0] < '0' || text[0] > '9') return 0;
    if (text[0] == '0') {
        *value = 0;
        return (text[1] >= '0' && text[1] <= '9') ? 0 : 1;
    }
    long long n = 0;
    size_t length = 0;
    while (text[length] >= '0' && text[length] <= '9') {
        n = n * 10 + (text[length] - '0');
        if (n > INT_MAX / 2) return 0; /* keeps 2s+1 and friends in range */
        length++;
    }
    *value = (int)n;
    return length;
}

/* Matches name against pattern; numbers[] receives each '#'. */
static int match(const char *pattern, const char *name, int numbers[2]) {
    int found = 0;
    while (*pattern) {
        if (*pattern == '#') {
            size_t length = parse_index(name, &numbers[found++]);
            if (length == 0) return 0;
            name += length;
            pattern++;
        } else if (*pattern++ != *name++) {
            return 0;
        }
    }
    return *name == '\0';
}

/* The stage a pattern's first number stands for, or -1 if it cannot be one. */
static int decode_stage(stage_field field, int number) {
    switch (field) {
    case NO_STAGE: return -1;
    case TORCHVISION_STAGE: return number % 2 == 1 ? (number - 1) / 2 : -1;
    case TORCHVISION_DOWN: return number >= 2 && number % 2 == 0 ? number / 2 : -1;
    case STAGE: return number;
    case DOWN: return number >= 1 ? number : -1;
    }
    return -1;
}

static int encode_stage(stage_field field, int stage) {
    switch (field) {
    case TORCHVISION_STAGE: return 2 * stage + 1;
    case TORCHVISION_DOWN: return 2 * stage;
    default: return stage;
    }
}

static const char *strip_wrapper_prefix(const char *name) {
    for (size_t i = 0; i < sizeof wrapper_prefixes / sizeof wrapper_prefixes[0]; i++) {
        size_t length = strlen(wrapper_prefixes[i]);
        if (strncmp(name, wrapper_prefixes[i], length) == 0) return name + length;
    }
    return name;
}

int cnx_convnext_parse_name(const char *name, cnx_convnext_name *out) {
    name = strip_wrapper_prefix(name);
    for (size_t i = 0; i < NUM_PATTERNS; i++) {
        int numbers[2] = {-1, -1};
        if (!match(patterns[i].pattern, name, numbers)) continue;
        int stage = decode_stage(patterns[i].stage, numbers[0]);
        if (patterns[i].stage != NO_STAGE && stage < 0) continue;
        out->naming = patterns[i].naming;
        out->role = patterns[i].role;
        out->stage = stage;
        out->block = numbers[1];
        return 1;
    }
    return 0;
}

void cnx_convnext_format_name(const cnx_convnext_name *name, char *buf, size_t size) {
    const name_pattern *entry = NULL;
    for (size_t i = 0; i < NUM_PATTERNS && !entry; i++)
        if (patterns[i].naming == name->naming && patterns[i].role == name->role)
            entry = &patterns[i];
    if (size == 0) return;
    buf[0] = '\0';
    if (!entry) return;

    int numbers[2] = {encode_stage(entry->stage, name->stage), name->block};
    int next = 0;
    size_t used = 0;
    for (const char *p = entry->pattern; *p && used + 1 < size; p++) {
        int written = *p == '#' ? snprintf(buf + used, size - used, "%d", numbers[next++])
                                : snprintf(buf + used, size - used, "%c", *p);
        if (written < 0) break;
        used += (size_t)written;
    }
}
