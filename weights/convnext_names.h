/* Internal: the tensor names of a ConvNeXt (V1 or V2) state_dict, as
 * torchvision, timm and Hugging Face transformers spell them, mapped both
 * ways to a canonical (stage, block, role). */
#ifndef CNX_WEIGHTS_CONVNEXT_NAMES_H
#define CNX_WEIGHTS_CONVNEXT_NAMES_H

#include <stddef.h>

typedef enum cnx_naming {
    CNX_NAMING_TORCHVISION = 0,
    CNX_NAMING_TIMM,
    CNX_NAMING_TRANSFORMERS, /* ConvNext(V2)ForImageClassification */
    CNX_NAMING_COUNT
} cnx_naming;

/* Which parameter a tensor is. Stem and head roles have no stage or block;
 * downsample roles have a stage (>= 1); block roles have both. */
typedef enum cnx_role {
    CNX_ROLE_STEM_CONV_WEIGHT = 0,
    CNX_ROLE_STEM_CONV_BIAS,
    CNX_ROLE_STEM_NORM_WEIGHT,
    CNX_ROLE_STEM_NORM_BIAS,
    CNX_ROLE_HEAD_NORM_WEIGHT,
    CNX_ROLE_HEAD_NORM_BIAS,
    CNX_ROLE_HEAD_FC_WEIGHT,
    CNX_ROLE_HEAD_FC_BIAS,
    CNX_ROLE_DOWN_NORM_WEIGHT,
    CNX_ROLE_DOWN_NORM_BIAS,
    CNX_ROLE_DOWN_CONV_WEIGHT,
    CNX_ROLE_DOWN_CONV_BIAS,
    CNX_ROLE_BLOCK_DW_WEIGHT,
    CNX_ROLE_BLOCK_DW_BIAS,
    CNX_ROLE_BLOCK_NORM_WEIGHT,
    CNX_ROLE_BLOCK_NORM_BIAS,
    CNX_ROLE_BLOCK_FC1_WEIGHT,
    CNX_ROLE_BLOCK_FC1_BIAS,
    CNX_ROLE_BLOCK_GRN_WEIGHT, /* ConvNeXt V2 */
    CNX_ROLE_BLOCK_GRN_BIAS,
    CNX_ROLE_BLOCK_FC2_WEIGHT,
    CNX_ROLE_BLOCK_FC2_BIAS,
    CNX_ROLE_BLOCK_LAYER_SCALE,
    CNX_ROLE_COUNT
} cnx_role;

#define CNX_ROLE_FIRST_DOWNSAMPLE CNX_ROLE_DOWN_NORM_WEIGHT
#define CNX_ROLE_FIRST_BLOCK CNX_ROLE_BLOCK_DW_WEIGHT
#define CNX_DOWNSAMPLE_ROLES (CNX_ROLE_FIRST_BLOCK - CNX_ROLE_FIRST_DOWNSAMPLE)
#define CNX_BLOCK_ROLES (CNX_ROLE_COUNT - CNX_ROLE_FIRST_BLOCK)

typedef struct cnx_convnext_name {
    cnx_naming naming;
    cnx_role role;
    int stage; /* -1 for stem and head roles */
    int block; /* -1 unless a block role */
} cnx_convnext_name;

/* "torchvision", "timm" or "transformers". */
const char *cnx_naming_string(cnx_naming naming);

/* Parses a tensor name, after stripping one leading "module." or "model."
 * (left by DataParallel and by wrappers), or "convnext." or "convnextv2."
 * (the base model's prefix in transformers). Returns 1 and fills *out when
 * the name is a ConvNeXt parameter in any scheme, else 0. Stage and block
 * numbers are parsed as written, without an upper bound beyond INT_MAX/2;
 * the caller checks them against what it supports. */
int cnx_convnext_parse_name(const char *name, cnx_convnext_name *out);

/* The canonical name (no prefix) of a role in a scheme, into buf:
 * e.g. (TORCHVISION, BLOCK_FC1_WEIGHT, 2, 5) -> "features.5.5.block.3.weight".
 * Truncated to fit. */
void cnx_convnext_format_name(const cnx_convnext_name *name, char *buf, size_t size);

#endif
