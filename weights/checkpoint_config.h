/* Internal: what a checkpoint folder's config files say, as timm's
 * save_for_hf and Hugging Face's save_pretrained write them.
 *
 *   timm:          config.json {"architecture", "num_classes",
 *                  "pretrained_cfg": {input_size, interpolation, crop_pct,
 *                  crop_mode, mean, std, test_input_size, test_crop_pct},
 *                  "label_names"?}
 *   transformers:  config.json {"model_type": "convnext" | "convnextv2",
 *                  "depths", "hidden_sizes", "layer_norm_eps", "hidden_act",
 *                  "id2label"} and preprocessor_config.json {size, crop_pct,
 *                  resample, do_resize, do_rescale, rescale_factor,
 *                  do_normalize, image_mean, image_std}
 *
 * Missing keys take each library's own defaults, so that the preprocessing
 * is the one the library would run. */
#ifndef CNX_WEIGHTS_CHECKPOINT_CONFIG_H
#define CNX_WEIGHTS_CHECKPOINT_CONFIG_H

#include "cnx.h"

typedef enum cnx_config_library {
    CNX_CONFIG_NONE = 0, /* no config.json */
    CNX_CONFIG_TIMM,
    CNX_CONFIG_TRANSFORMERS
} cnx_config_library;

typedef struct cnx_checkpoint_config {
    cnx_config_library library;
    char config_path[4096];     /* for messages */
    char architecture[64];      /* timm's "architecture", transformers' "model_type" */
    int declares_grn;           /* transformers: model_type convnextv2 */
    int num_stages;             /* transformers: len(depths); 0: not said */
    int depths[CNX_MAX_STAGES];
    int widths[CNX_MAX_STAGES]; /* transformers' hidden_sizes */
    int num_classes;            /* -1: not said */
    float head_norm_eps;        /* transformers' layer_norm_eps; 0: not said */
    int has_preprocess;         /* a preprocessing was read */
    cnx_preprocess preprocess;  /* valid where has_preprocess */
    cnx_value_source source;    /* where that preprocessing came from */
    char **labels;              /* num_labels names, or NULL */
    int num_labels;
} cnx_checkpoint_config;

/* Reads the config files in folder (none is fine: library NONE). A file
 * that is not valid JSON, or holds a value of the wrong kind, or names a
 * model cnx does not run, fails with "FILE: cause". use_test_size: timm's
 * test_input_size and test_crop_pct where the config has them. */
cnx_status cnx_checkpoint_config_read(const char *folder, int use_test_size,
                                      cnx_checkpoint_config *config);

void cnx_checkpoint_config_free(cnx_checkpoint_config *config);

#endif
