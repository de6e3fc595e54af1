/* Internal: seeded random ConvNeXt weights, for benchmarks and tests that
 * must not download anything (cnx_engine_create_random). */
#ifndef CNX_WEIGHTS_RANDOM_WEIGHTS_H
#define CNX_WEIGHTS_RANDOM_WEIGHTS_H

#include <stdint.h>

#include "convnext_weights.h"

/* Seeded random weights of a named architecture (cnx_convnext_architecture:
 * convnext_* with layer scale, convnextv2_* with GRN and no layer scale; the
 * head LayerNorm's epsilon 1e-6 for both): 1000 classes, the ImageNet
 * default preprocessing (cnx_default_preprocess()), naming "torchvision"
 * (V1) or "timm" (V2), dtype "F32", source "random (seed N)". Laid out as the loader does (one
 * arena, block_storage), so cnx_convnext_weights_free frees them. An unknown
 * name is CNX_ERROR_INVALID_ARGUMENT, the message listing the known names;
 * on failure *weights is left zeroed. */
cnx_status cnx_convnext_weights_random(const char *architecture, uint64_t seed,
                                       cnx_convnext_weights *weights);

#endif
