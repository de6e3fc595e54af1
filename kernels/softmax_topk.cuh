/* Softmax over each image's logits and its k most probable classes, on the
 * device, so that only n*k predictions cross the bus. Same rules as
 * cnx_top_k() on the host: probabilities from a double sum of
 * exp(logit - max), ranked by probability (as float), ties to the lower class
 * index. */
#ifndef CNX_KERNELS_SOFTMAX_TOPK_CUH
#define CNX_KERNELS_SOFTMAX_TOPK_CUH

#include "cnx.h"
#include "kernel_common.cuh"

#ifdef __cplusplus
extern "C" {
#endif

/* logits: fp32 [batch, classes]; probs: fp32 [batch, classes] scratch (the
 * softmax, left there); top: [batch, k] on the device. An image with a
 * non-finite logit gets class_index -1 in all k entries.
 * Launch: one 256-thread block per image; k passes of a block argmax. */
cudaError_t softmax_topk_forward(cnx_prediction *top, float *probs, const float *logits,
                                 int batch, int classes, int k, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
