/* The model's weights on the device (see cuda_weights.h). */
#ifdef CNX_HAVE_CUDA

#include "cuda_weights.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "cuda_status.h"
#include "error.h"
#include "layernorm_folding.h"

/* ------------------------------------------------- fp16 / bf16 encoding */

static uint32_t float_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

/* Round to nearest even, as __float2half_rn: overflow to inf, subnormals kept. */
static uint16_t f32_to_f16(float f) {
    const uint32_t x = float_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return sign | 0x7e00u; /* NaN */
    if (ax >= 0x477ff000u)
        return sign | 0x7c00u; /* >= 65520 (halfway above 65504) rounds to inf */
    if (ax < 0x38800000u) {    /* below 2^-14: a subnormal half, or zero */
        if (ax <= 0x33000000u)
            return sign; /* <= 2^-25: ties to even go to zero */
        const uint32_t mantissa = (ax & 0x7fffffu) | 0x800000u;
        const int shift = 126 - (int)(ax >> 23); /* 14..24 */
        uint32_t r = mantissa >> shift;
        const uint32_t rest = mantissa & ((1u << shift) - 1u), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (r & 1u)))
            r++;
        return (uint16_t)(sign | r); /* r == 0x400 is the smallest normal */
    }
    uint32_t r = (ax >> 13) - (112u << 10); /* exponent rebias 127 -> 15 */
    const uint32_t rest = ax & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (r & 1u)))
        r++; /* a carry into the exponent is the right answer */
    return (uint16_t)(sign | r);
}

static uint16_t f32_to_bf16(float f) {
    const uint32_t x = float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

/* --------------------------------------------------------- the weights */

/* Two passes over the same layout: the first only sums the sizes (host ==
 * NULL), the second writes the folded, converted values into a host image
 * of the arena and computes the device pointers. Where there are guard
 * zones, a third (guard set) marks them once the arena is uploaded. */
typedef struct {
    unsigned char *host;
    size_t size;
    uintptr_t device;
    cnx_act_dtype act;
    int guard;
} arena_builder;

static size_t arena_take(arena_builder *ab, size_t bytes) {
    const size_t offset = arena_align_up(ab->size);
    ab->size = offset + bytes + ARENA_GUARD_BYTES;
    if (ab->guard)
        CNX_DEVICE_GUARD((void *)(ab->device + offset + bytes), ARENA_GUARD_BYTES);
    return offset;
}

static const float *stage_floats(arena_builder *ab, const float *values, size_t count) {
    const size_t offset = arena_take(ab, count * sizeof(float));
    if (ab->host && values) /* values is NULL only on the sizing pass */
        memcpy(ab->host + offset, values, count * sizeof(float));
    return (const float *)(ab->device + offset);
}

static const void *stage_gemm_weights(arena_builder *ab, const float *values, size_t count) {
    const size_t size = ab->act == CNX_ACT_F32 ? 4 : 2;
    const size_t offset = arena_take(ab, count * size);
    if (ab->host && values) {
        unsigned char *dst = ab->host + offset;
        if (ab->act == CNX_ACT_F32) {
            memcpy(dst, values, count * sizeof(float));
        } else {
            for (size_t i = 0; i < count; i++) {
                const uint16_t h =
                    ab->act == CNX_ACT_F16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
                memcpy(dst + 2 * i, &h, 2);
            }
        }
    }
    return (const void *)(ab->device + offset);
}

/* fp16 has 5 exponent bits: fc2's weights times layer scales down to 1e-6
 * (or any weights folded with small gains) would be subnormal or zero there,
 * and a block's increment lost. One power of two for the whole matrix, 2^s,
 * brings its largest |value| to [2^13, 2^14) (headroom below 65504),
 * exactly; the GEMM's alpha = 2^-s undoes it, exactly, on the fp32
 * accumulator: D = alpha A B + beta C + bias, the bias (fp32, unscaled)
 * outside alpha in cuBLASLt's epilogue and in add_bias alike. fc2's rows
 * each share one layer scale: a row within about 2^27 of the largest value
 * keeps its largest values normal (its smallest may still be subnormal);
 * one alpha per matrix cannot do better than that. Returns alpha. */
static float scale_into_fp16_range(float *values, size_t count) {
    float most = 0.0f;
    for (size_t i = 0; i < count; i++)
        most = fmaxf(most, fabsf(values[i]));
    if (!(most > 0.0f) || !isfinite(most))
        return 1.0f;
    int exponent;
    frexpf(most, &exponent); /* most < 2^exponent */
    const int shift = 14 - exponent < 126 ? 14 - exponent : 126; /* alpha stays a normal float */
    for (size_t i = 0; i < count; i++)
        values[i] = ldexpf(values[i], shift);
    return ldexpf(1.0f, -shift);
}

/* w_values (the folded weights, NULL on the sizing pass) are scaled in place
 * for fp16. */
static void stage_gemm(arena_builder *ab, gemm_weights *g, int m, int k, float *w_values,
                       const float *b_values) {
    g->m = m;
    g->k = k;
    if (ab->host) /* the filling pass: the others only lay out */
        g->alpha = ab->act == CNX_ACT_F16 ? scale_into_fp16_range(w_values, (size_t)m * k) : 1.0f;
    g->weight = stage_gemm_weights(ab, w_values, (size_t)m * k);
    g->bias = b_values ? stage_floats(ab, b_values, (size_t)m) : NULL;
}

/* tmp holds the largest folded matrix, tmp_bias the largest bias; both
 * NULL (and unused) on the sizing pass. */
static void layout_weights(cuda_weights *cw, const cnx_convnext_weights *w, arena_builder *ab,
                           float *tmp, float *tmp_bias) {
    const int fill = ab->host != NULL;
    const int c0 = w->widths[0];
    if (fill)
        cnx_fold_layernorm_into_conv(tmp, tmp_bias, w->stem_weight, w->stem_bias, c0, 3, 4, NULL, NULL);
    stage_gemm(ab, &cw->stem, c0, 48, tmp, fill ? tmp_bias : w->stem_bias);
    cw->stem_norm_gain = stage_floats(ab, w->stem_norm_weight, (size_t)c0);
    cw->stem_norm_bias = stage_floats(ab, w->stem_norm_bias, (size_t)c0);

    for (int s = 0; s < w->num_stages; s++) {
        const int c = w->widths[s], hidden = 4 * c;
        if (s > 0) {
            const cnx_downsample_weights *d = &w->downsample[s];
            const int prev = w->widths[s - 1];
            if (fill)
                cnx_fold_layernorm_into_conv(tmp, tmp_bias, d->conv_weight, d->conv_bias, c, prev, 2,
                                d->norm_weight, d->norm_bias);
            stage_gemm(ab, &cw->down[s], c, 4 * prev, tmp, fill ? tmp_bias : d->conv_bias);
        }
        for (int j = 0; j < w->depths[s]; j++) {
            const cnx_block_weights *bw = &w->blocks[s][j];
            cuda_block *blk = &cw->blocks[s][j];
            if (fill) {
                for (int ch = 0; ch < c; ch++)
                    for (int t = 0; t < 49; t++)
                        tmp[(size_t)t * c + ch] = bw->dw_weight[(size_t)ch * 49 + t];
            }
            blk->dw_weight = stage_floats(ab, tmp, (size_t)49 * c);
            blk->dw_bias = stage_floats(ab, bw->dw_bias, (size_t)c);

            if (fill)
                cnx_fold_layernorm_into_conv(tmp, tmp_bias, bw->fc1_weight, bw->fc1_bias, hidden, c, 1,
                                bw->norm_weight, bw->norm_bias);
            stage_gemm(ab, &blk->fc1, hidden, c, tmp, NULL);
            blk->fc1_bias = stage_floats(ab, tmp_bias, (size_t)hidden);
            if (bw->grn_weight) {
                blk->grn_weight = stage_floats(ab, bw->grn_weight, (size_t)hidden);
                blk->grn_bias = stage_floats(ab, bw->grn_bias, (size_t)hidden);
            }

            /* Layer scale (V1; V2 has none) folded in, in fp32. */
            if (fill) {
                for (int o = 0; o < c; o++) {
                    const float scale = bw->layer_scale ? bw->layer_scale[o] : 1.0f;
                    const float *row = bw->fc2_weight + (size_t)o * hidden;
                    for (int i = 0; i < hidden; i++)
                        tmp[(size_t)o * hidden + i] = row[i] * scale;
                    tmp_bias[o] = bw->fc2_bias[o] * scale;
                }
            }
            stage_gemm(ab, &blk->fc2, c, hidden, tmp, fill ? tmp_bias : bw->fc2_bias);
        }
    }
    const int last = w->widths[w->num_stages - 1];
    if (fill)
        cnx_fold_layernorm_into_conv(tmp, tmp_bias, w->head_weight, w->head_bias, w->num_classes, last, 1,
                        w->head_norm_weight, w->head_norm_bias);
    stage_gemm(ab, &cw->head, w->num_classes, last, tmp, fill ? tmp_bias : w->head_bias);
}

cnx_status cuda_weights_upload(cuda_weights *cw, const cnx_convnext_weights *w, cnx_act_dtype act) {
    cw->num_stages = w->num_stages;
    memcpy(cw->depths, w->depths, sizeof cw->depths);
    size_t most = (size_t)w->widths[0] * 48, most_bias = (size_t)w->num_classes;
    for (int s = 0; s < w->num_stages; s++) {
        const size_t c = (size_t)w->widths[s];
        if (4 * c * c > most) most = 4 * c * c;
        if (s > 0 && c * 4 * w->widths[s - 1] > most) most = c * 4 * w->widths[s - 1];
        if (49 * c > most) most = 49 * c;
        if (4 * c > most_bias) most_bias = 4 * c;
    }
    const size_t head = (size_t)w->num_classes * w->widths[w->num_stages - 1];
    if (head > most) most = head;

    for (int s = 0; s < w->num_stages; s++) {
        cw->blocks[s] = calloc((size_t)w->depths[s], sizeof(cuda_block));
        if (!cw->blocks[s])
            return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory");
    }
    arena_builder sizing = {NULL, 0, 0, act, 0};
    layout_weights(cw, w, &sizing, NULL, NULL);
    const size_t bytes = arena_align_up(sizing.size);

    const cudaError_t e = cudaMalloc(&cw->arena, bytes);
    cudaGetLastError(); /* a failure is reported below, not left for the next launch */
    if (e != cudaSuccess) {
        cw->arena = NULL;
        return cnx_fail(e == cudaErrorMemoryAllocation ? CNX_ERROR_OUT_OF_MEMORY : CNX_ERROR_DEVICE,
                        "cuda_weights.c: cudaMalloc of %.1f MiB for the weights: %s",
                        bytes / 1048576.0, cudaGetErrorString(e));
    }
    unsigned char *host = calloc(1, bytes);
    float *tmp = malloc(most * sizeof(float));
    float *tmp_bias = malloc(most_bias * sizeof(float));
    cnx_status status = CNX_OK;
    if (!host || !tmp || !tmp_bias) {
        status = cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory staging %.1f MiB of weights",
                          bytes / 1048576.0);
    } else {
        arena_builder fill = {host, 0, (uintptr_t)cw->arena, act, 0};
        layout_weights(cw, w, &fill, tmp, tmp_bias);
        cudaError_t copy = cudaMemcpy(cw->arena, host, bytes, cudaMemcpyHostToDevice);
        /* A pageable copy may return before the DMA lands, and the engine's
         * stream is non-blocking: wait for the legacy stream the copy went
         * to (not the whole device: the caller's work is not ours to wait
         * for), so no kernel reads half-copied weights. */
        if (copy == cudaSuccess)
            copy = cudaStreamSynchronize(NULL);
        if (copy != cudaSuccess) {
            status = cuda_status_failed(copy, "cudaMemcpy(weights)", __FILE__, __LINE__);
        } else if (ARENA_GUARD_BYTES) {
            arena_builder guard = {NULL, 0, (uintptr_t)cw->arena, act, 1};
            layout_weights(cw, w, &guard, NULL, NULL);
        }
    }
    free(host);
    free(tmp);
    free(tmp_bias);
    return status;
}

typedef cnx_status (*gemm_visitor)(const gemm_context *ctx, gemm_weights *g);

/* visit on every GEMM's weights (stem, head, each stage's downsampling and
 * its blocks' fc1 and fc2), stopping at the first failure. */
static cnx_status for_each_gemm(cuda_weights *cw, const gemm_context *ctx, gemm_visitor visit) {
    CNX_TRY(visit(ctx, &cw->stem));
    CNX_TRY(visit(ctx, &cw->head));
    for (int s = 0; s < cw->num_stages; s++) {
        if (s > 0)
            CNX_TRY(visit(ctx, &cw->down[s]));
        for (int j = 0; cw->blocks[s] && j < cw->depths[s]; j++) {
            CNX_TRY(visit(ctx, &cw->blocks[s][j].fc1));
            CNX_TRY(visit(ctx, &cw->blocks[s][j].fc2));
        }
    }
    return CNX_OK;
}

static cnx_status release_gemm(const gemm_context *ctx, gemm_weights *g) {
    (void)ctx;
    gemm_weights_release(g);
    return CNX_OK;
}

cnx_status cuda_weights_describe(cuda_weights *cw, const gemm_context *ctx) {
    return for_each_gemm(cw, ctx, gemm_weights_describe);
}

void cuda_weights_free(cuda_weights *cw) {
    for_each_gemm(cw, NULL, release_gemm);
    for (int s = 0; s < CNX_MAX_STAGES; s++)
        free(cw->blocks[s]);
    if (cw->arena)
        cudaFree(cw->arena);
    memset(cw, 0, sizeof *cw);
}

#else
typedef int cnx_cuda_weights_unused;
#endif
