/* Folding a LayerNorm's affine into the conv or Linear that follows it, as
 * both backends run them: LayerNorm(x) = n(x) * gain + bias feeds W, so
 * W (n * gain + bias) + b = (W * gain) n + (b + W bias). */
#ifndef CNX_WEIGHTS_LAYERNORM_FOLDING_H
#define CNX_WEIGHTS_LAYERNORM_FOLDING_H

/* A conv [out_ch, in_ch, k, k] (a Linear is k = 1) reordered to the patch
 * order [out_ch, k, k, in_ch] into w_out, its bias into b_out:
 * W' = W * gain[in], b' = b + sum W * norm_bias[in], the sum in double.
 * gain or norm_bias NULL: that part is not there. */
void cnx_fold_layernorm_into_conv(float *w_out, float *b_out, const float *weight,
                                  const float *bias, int out_ch, int in_ch, int k,
                                  const float *gain, const float *norm_bias);

#endif
