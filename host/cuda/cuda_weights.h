/* Internal: the model's weights on the device, folded as the CPU backend
 * folds them (LayerNorm affines into the following Linear or conv, layer
 * scale, where the model has one, into fc2), converted to the GEMM type and
 * uploaded into one arena (arena.h). The depthwise conv, LayerNorm and GRN
 * parameters and every bias stay fp32. In fp16 each GEMM's weights are
 * stored times a power of two, 2^s, and its alpha is 2^-s: fp16's 5
 * exponent bits would otherwise lose the small folded weights (fc2's times
 * layer scales down to 1e-6) to subnormals or zero. CUDA builds only. */
#ifndef CNX_HOST_CUDA_WEIGHTS_H
#define CNX_HOST_CUDA_WEIGHTS_H

#include "convnext_weights.h"
#include "cuda_gemm.h"
#include "kernel_common.cuh"

typedef struct {
    const float *dw_weight;  /* [7, 7, C] fp32 */
    const float *dw_bias;    /* [C] */
    const float *fc1_bias;   /* [4C], LayerNorm bias folded in */
    gemm_weights fc1;        /* [4C, C], LayerNorm gain folded in */
    const float *grn_weight; /* [4C] fp32, NULL: no GRN (V1) */
    const float *grn_bias;   /* [4C] */
    gemm_weights fc2;        /* [C, 4C] + bias, layer scale (if any) folded in */
} cuda_block;

typedef struct {
    void *arena; /* device */
    int num_stages, depths[CNX_MAX_STAGES];
    gemm_weights stem, down[CNX_MAX_STAGES], head; /* down[0] unused */
    const float *stem_norm_gain, *stem_norm_bias;
    cuda_block *blocks[CNX_MAX_STAGES];
} cuda_weights;

/* Folds, converts (act: the GEMM type) and uploads w, waiting until the
 * copy has landed. On failure, what was made is left for cuda_weights_free. */
cnx_status cuda_weights_upload(cuda_weights *cw, const cnx_convnext_weights *w, cnx_act_dtype act);

/* Every GEMM's layout and descriptors (gemm_weights_describe). */
cnx_status cuda_weights_describe(cuda_weights *cw, const gemm_context *ctx);

/* The arena, the descriptors and the blocks; cw is zeroed. */
void cuda_weights_free(cuda_weights *cw);

#endif
