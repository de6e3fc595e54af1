/* A LayerNorm's affine folded into the conv that follows (see
 * layernorm_folding.h). */
#include "layernorm_folding.h"

#include <stddef.h>

void cnx_fold_layernorm_into_conv(float *w_out, float *b_out, const float *weight,
                                  const float *bias, int out_ch, int in_ch, int k,
                                  const float *gain, const float *norm_bias) {
    const size_t per_out = (size_t)k * k * in_ch;
    for (int o = 0; o < out_ch; o++) {
        double folded = bias[o];
        for (int i = 0; i < in_ch; i++) {
            for (int ky = 0; ky < k; ky++) {
                for (int kx = 0; kx < k; kx++) {
                    const float w = weight[(((size_t)o * in_ch + i) * k + ky) * k + kx];
                    w_out[o * per_out + ((size_t)ky * k + kx) * in_ch + i] = gain ? w * gain[i] : w;
                    if (norm_bias)
                        folded += (double)w * norm_bias[i];
                }
            }
        }
        b_out[o] = (float)folded;
    }
}
