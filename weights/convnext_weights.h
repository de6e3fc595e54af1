/* Internal: a ConvNeXt's (V1 or V2) parameters as fp32 host arrays,
 * whichever naming scheme (torchvision, timm or Hugging Face) and dtype
 * (F32, F16, BF16) the file used. Backends read this struct; only weights/
 * knows about file formats. */
#ifndef CNX_WEIGHTS_CONVNEXT_WEIGHTS_H
#define CNX_WEIGHTS_CONVNEXT_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "cnx.h"

/* Shapes are PyTorch's, row-major. C is the stage width. */
typedef struct cnx_block_weights {
    const float *dw_weight;   /* [C, 7, 7]   depthwise conv (from [C,1,7,7]) */
    const float *dw_bias;     /* [C] */
    const float *norm_weight; /* [C]         LayerNorm, eps 1e-6 */
    const float *norm_bias;   /* [C] */
    const float *fc1_weight;  /* [4C, C]     Linear C -> 4C (from [4C,C] or [4C,C,1,1]) */
    const float *fc1_bias;    /* [4C] */
    /* ConvNeXt V2's GRN after the GELU, or both NULL (V1): with Gx the L2
     * norm of channel c over H and W, Nx = Gx / (mean over c of Gx + 1e-6),
     * out = x + grn_bias + grn_weight * (x * Nx). */
    const float *grn_weight;  /* [4C]        (from [4C] or [1,1,1,4C]) */
    const float *grn_bias;    /* [4C] */
    const float *fc2_weight;  /* [C, 4C]     Linear 4C -> C */
    const float *fc2_bias;    /* [C] */
    const float *layer_scale; /* [C]         (from [C,1,1] or [C]); NULL: none (V2) */
} cnx_block_weights;

/* Between stages s-1 and s (s >= 1): LayerNorm, then a 2x2 stride-2 conv. */
typedef struct cnx_downsample_weights {
    const float *norm_weight; /* [C_prev] */
    const float *norm_bias;   /* [C_prev] */
    const float *conv_weight; /* [C, C_prev, 2, 2] */
    const float *conv_bias;   /* [C] */
} cnx_downsample_weights;

typedef struct cnx_convnext_weights {
    int num_stages;
    int depths[CNX_MAX_STAGES];
    int widths[CNX_MAX_STAGES];
    int num_classes;
    int64_t num_parameters;

    const float *stem_weight;      /* [C0, 3, 4, 4] */
    const float *stem_bias;        /* [C0] */
    const float *stem_norm_weight; /* [C0] */
    const float *stem_norm_bias;   /* [C0] */

    cnx_downsample_weights downsample[CNX_MAX_STAGES]; /* [0] unused */
    cnx_block_weights *blocks[CNX_MAX_STAGES];          /* depths[s] each */

    const float *head_norm_weight; /* [C_last] */
    const float *head_norm_bias;   /* [C_last] */
    float head_norm_eps;           /* 1e-6; Hugging Face's layer_norm_eps (1e-12 by
                                    * default) where its config.json says so */
    const float *head_weight;      /* [num_classes, C_last] */
    const float *head_bias;        /* [num_classes] */

    int has_grn;         /* ConvNeXt V2: every block has GRN and no layer scale */
    int has_layer_scale; /* every block has layer scale (V1 as torchvision and timm make it) */

    /* What the file says about itself (from safetensors __metadata__). */
    char architecture[64]; /* named from the shapes: "convnext_tiny", "convnextv2_atto", ... */
    char weights_dtype[8];
    char naming[16];       /* "torchvision", "timm" or "transformers" */
    char source[256];
    int has_preprocess_metadata; /* anything but torchvision's defaults */
    cnx_preprocess preprocess;
    cnx_preprocess_sources preprocess_sources;
    char **labels;  /* the checkpoint's class names (num_labels == num_classes), or NULL */
    int num_labels;

    float *arena;          /* owns every array above */
    cnx_block_weights *block_storage;
} cnx_convnext_weights;

/* Reads and validates a safetensors file. On failure, returns a status, sets
 * cnx_last_error() to "PATH: cause", and leaves *weights zeroed. */
cnx_status cnx_convnext_weights_load(const char *path, cnx_convnext_weights *weights);

/* As cnx_convnext_weights_load for a file; for a checkpoint folder, its
 * model.safetensors with what config.json and preprocessor_config.json say
 * (weights/checkpoint_config.h): preprocessing below the file's own
 * metadata, class names, transformers' final LayerNorm eps, all checked
 * against the tensors. use_test_size: timm's test_input_size/test_crop_pct. */
cnx_status cnx_convnext_weights_open(const char *path, int use_test_size,
                                     cnx_convnext_weights *weights);

/* What the backends rely on beyond the shapes, for weights from anywhere
 * (the loader's and the random ones always pass; tests assemble some by
 * hand): GRN weight and bias together, a finite head eps >= 0. Sets
 * *has_grn when some block has GRN. */
cnx_status cnx_convnext_weights_check(const cnx_convnext_weights *weights, int *has_grn);

void cnx_convnext_weights_free(cnx_convnext_weights *weights);

#endif
