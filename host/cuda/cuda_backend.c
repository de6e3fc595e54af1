/* CUDA ConvNeXt forward: our kernels for the memory-bound layers, cuBLASLt
 * for every GEMM. Activations are NHWC, so every pointwise layer and every
 * patch conv is one GEMM over batch*height*width rows:
 *
 *   stem:        stem_patches -> GEMM(+bias) -> LayerNorm(affine), fp32 residual
 *   downsample:  LayerNorm+2x2 gather -> GEMM(+bias, LN folded) -> residual
 *   block:       dwconv7+LayerNorm -> fc1 GEMM -> bias+GELU -> [GRN (V2) ->]
 *                fc2 GEMM (+bias, layer scale folded where there is one)
 *                accumulated onto the residual
 *   head:        avgpool+LayerNorm (the model's head epsilon) -> GEMM(+bias,
 *                LN folded) -> logits [-> softmax/top-k]
 *
 * GEMM layout. A row-major activation X[rows, K] is, to cuBLASLt's
 * column-major view, a K x rows matrix with ld K; a row-major weight
 * W[M, K] is a K x M matrix with ld K. Y[rows, M] = X W^T is then, column-
 * major, the M x rows matrix D = op(A) B with A = W, op(A) = transpose
 * (M x K), B = X (K x rows): "TN", m = M, n = rows, k = K, lda = ldb = K,
 * ldc = ldd = M. The bias epilogue adds a length-M vector to every column,
 * i.e. to every pixel. fc2 runs with C = D = the residual and beta = 1. In
 * fp16 each GEMM's weights are stored times 2^s and its alpha is 2^-s (see
 * scale_into_fp16_range).
 * Every operand and bias starts on a 256-byte boundary of an arena (the
 * alignment cuBLASLt's heuristic assumes by default).
 *
 * The 4x4 stem and 2x2 downsampling convs are gather + GEMM here, not cuDNN:
 * the gather is one pass over data the GEMM reads anyway, and it keeps one
 * library on the hot path. Whether cuDNN's conv (or a fused implicit GEMM) is
 * faster is for a GPU measurement to decide. */
#ifdef CNX_HAVE_CUDA

#include "cuda_backend.h"

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "add_bias.cuh"
#include "avgpool_layernorm.cuh"
#include "bias_gelu.cuh"
#include "cublaslt_library.h"
#include "dwconv_layernorm.cuh"
#include "error.h"
#include "grn.cuh"
#include "kernel_image.cuh"
#include "layernorm.cuh"
#include "preprocess.cuh"
#include "softmax_topk.cuh"
#include "stem_patches.cuh"

enum {
    PLAN_SLOTS = 8,
    ARENA_ALIGN = 256,
    GEMM_ALGOS = 6, /* algorithms asked of the heuristic per GEMM, best first */
};
/* cuBLAS's recommended workspace on Hopper. */
#define WORKSPACE_BYTES ((size_t)32 << 20)

/* Debug builds and the CUDA emulation leave a guard zone after each buffer of
 * an arena, which the emulation makes inaccessible (CNX_DEVICE_GUARD): a
 * kernel that runs past its buffer then fails instead of quietly using its
 * neighbour's data. Two pages, so that a whole page lies in every zone. */
#if !defined(NDEBUG) || defined(CNX_CUDA_EMULATION)
#define ARENA_GUARD_BYTES ((size_t)8192)
#else
#define ARENA_GUARD_BYTES ((size_t)0)
#endif
#ifndef CNX_DEVICE_GUARD
#define CNX_DEVICE_GUARD(zone, bytes) ((void)(zone), (void)(bytes))
#endif

/* ------------------------------------------------------------- errors */

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static cnx_status cuda_failed(cudaError_t e, const char *call, const char *file, int line) {
    cudaGetLastError(); /* handled here: the next launcher's check must not see it again */
    const cnx_status status =
        e == cudaErrorMemoryAllocation ? CNX_ERROR_OUT_OF_MEMORY : CNX_ERROR_DEVICE;
    return cnx_fail(status, "%s:%d: %s: %s (%s)", base_name(file), line, call,
                    cudaGetErrorString(e), cudaGetErrorName(e));
}

static cnx_status cublas_failed(cublasStatus_t s, const char *call, const char *file, int line) {
    const cnx_status status =
        s == CUBLAS_STATUS_ALLOC_FAILED ? CNX_ERROR_OUT_OF_MEMORY : CNX_ERROR_DEVICE;
    return cnx_fail(status, "%s:%d: %s: %s", base_name(file), line, call,
                    cublasLtGetStatusString(s));
}

/* Each CUDA or cuBLASLt call, and each kernel launcher (which returns
 * cudaGetLastError() after its launch), goes through one of these. */
#define CUDA_TRY(call)                                                         \
    do {                                                                       \
        const cudaError_t e_ = (call);                                         \
        if (e_ != cudaSuccess)                                                 \
            return cuda_failed(e_, #call, __FILE__, __LINE__);                 \
    } while (0)

#define CUBLAS_TRY(call)                                                       \
    do {                                                                       \
        const cublasStatus_t s_ = (call);                                      \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                       \
            return cublas_failed(s_, #call, __FILE__, __LINE__);               \
    } while (0)



/* -------------------------------------------------------------- state */

/* The fixed half of one GEMM: its weights and their layout, and (for GEMMs
 * with a bias) a descriptor with the bias epilogue pointing at it. */
typedef struct {
    const void *weight; /* device, [m, k] row-major, GEMM type */
    const float *bias;  /* device, [m], or NULL (fc1: its bias goes to the GELU) */
    float alpha;        /* the GEMM's alpha: 1, or 2^-s for weights stored times 2^s */
    int m, k;
    cublasLtMatrixLayout_t a;
    cublasLtMatmulDesc_t desc; /* NULL without a bias: the plain descriptor is used */
} gemm_weights;

typedef struct {
    const float *dw_weight; /* [7, 7, C] fp32 */
    const float *dw_bias;   /* [C] */
    const float *fc1_bias;  /* [4C], LayerNorm bias folded in */
    gemm_weights fc1;       /* [4C, C], LayerNorm gain folded in */
    const float *grn_weight; /* [4C] fp32, NULL: no GRN (V1) */
    const float *grn_bias;   /* [4C] */
    gemm_weights fc2;       /* [C, 4C] + bias, layer scale (if any) folded in */
} cuda_block;

/* The batch-dependent half of one GEMM. */
typedef struct {
    cublasLtMatrixLayout_t b; /* K x rows */
    cublasLtMatrixLayout_t d; /* M x rows (also C) */
    cublasLtMatmulAlgo_t algos[GEMM_ALGOS]; /* the heuristic's usable ones, best first */
    int algo_count;
    int algo;           /* the one in use: algos[algo] is the first that ran */
    int bias_by_kernel; /* no algorithm with the bias epilogue: add_bias instead */
    const char *what;   /* "stem", "fc1", ...: for messages */
} gemm_plan;

typedef struct {
    int n, height, width; /* n == 0: a free slot */
    unsigned long long last_used;
    gemm_plan stem, down[CNX_MAX_STAGES], fc1[CNX_MAX_STAGES], fc2[CNX_MAX_STAGES], head;
    cudaGraphExec_t graph;
    int runs;         /* runs on the current stream */
    int graph_failed; /* capture failed once: eager from then on */
} forward_plan;

/* Element counts of the activation buffers for n images. */
typedef struct {
    size_t input, patches, residual, hidden, pooled, logits;
    size_t grn; /* fp32 scratch of the GRN kernels; 0 without GRN */
} act_counts;

struct cuda_backend {
    int device;
    cnx_precision precision;
    cnx_act_dtype act;          /* activation (GEMM input) type */
    size_t act_size;            /* its bytes */
    cudaDataType_t gemm_type;   /* the same, for cuBLASLt */
    cublasComputeType_t compute;
    int graphs;

    int num_stages, depths[CNX_MAX_STAGES], widths[CNX_MAX_STAGES], classes;
    int max_batch, input_size;
    int has_grn;         /* some block has GRN */
    float head_norm_eps; /* the head LayerNorm's */

    cudaStream_t stream;     /* where work goes */
    cudaStream_t own_stream; /* ours; also where graphs are captured */
    int caller_stream;       /* stream is the caller's */
    int caller_capturing;    /* this call's work goes into a graph the caller captures */
    cudaEvent_t work_done;   /* recorded after each call's work: what destroy and
                              * set_stream wait for, never the caller's stream */
    cudaEvent_t legacy_point; /* the legacy stream's work queued before a call */

    cublasLtHandle_t lt;
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulDesc_t plain; /* TN, no epilogue */

    void *weights_arena;
    gemm_weights stem, down[CNX_MAX_STAGES], head;
    const float *stem_norm_gain, *stem_norm_bias;
    cuda_block *blocks[CNX_MAX_STAGES];

    void *act_arena;
    act_counts capacity; /* what the arena holds */
    float *input;        /* [n, 3, H, W] */
    void *patches;       /* stem / downsampling patch rows */
    float *residual;     /* [n, h, w, C] */
    void *normalized;    /* [n, h, w, C] */
    void *hidden;        /* [n, h, w, 4C] */
    void *pooled;        /* [n, C_last] */
    float *logits;       /* [n, classes] */
    float *grn_scratch;  /* GRN partial sums and Nx (V2), else NULL */
    float *probs;        /* [n, classes] */
    cnx_prediction *top; /* [n, classes] at most */
    void *workspace;

    forward_plan plans[PLAN_SLOTS];
    unsigned long long clock;
    /* Graphs of plans replaced while the caller captured: destroyed after
     * the capture, for a destroy may synchronize, which a capture forbids. */
    cudaGraphExec_t *retired;
    int retired_count, retired_capacity;
};

static const char *precision_name(cnx_precision p) {
    switch (p) {
    case CNX_PRECISION_FP32: return "fp32";
    case CNX_PRECISION_TF32: return "tf32";
    case CNX_PRECISION_FP16: return "fp16";
    case CNX_PRECISION_BF16: return "bf16";
    }
    return "?";
}

static size_t align_up(size_t x) {
    return (x + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

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
    const size_t offset = align_up(ab->size);
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
                const uint16_t h = ab->act == CNX_ACT_F16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
                memcpy(dst + 2 * i, &h, 2);
            }
        }
    }
    return (const void *)(ab->device + offset);
}

/* A conv [out, in, k, k] in the patch order [out, k, k, in], with a
 * preceding LayerNorm (gain, bias over `in`) folded in, as the CPU backend
 * does: W' = W * gain[in], b' = b + sum W * bias[in] (summed in double). */
static void fold_patch_conv(float *w_out, float *b_out, const float *weight, const float *bias,
                            int out_ch, int in_ch, int k, const float *gain,
                            const float *norm_bias) {
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

/* fp16 has 5 exponent bits: fc2's weights times layer scales down to 1e-6
 * (or any weights folded with small gains) would be subnormal or zero there,
 * and a block's increment lost. One power of two for the whole matrix, 2^s,
 * brings its largest |value| to [2^13, 2^14) (headroom below 65504),
 * exactly; the GEMM's alpha = 2^-s undoes it, exactly, on the fp32
 * accumulator: D = alpha A B + beta C + bias, the bias (fp32, unscaled)
 * outside alpha in cuBLASLt's epilogue and in add_bias alike. fc2's rows
 * each share one layer scale, so every row within 2^27 of the largest keeps
 * its values normal. Returns alpha. */
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
static void layout_weights(cuda_backend *b, const cnx_convnext_weights *w, arena_builder *ab,
                           float *tmp, float *tmp_bias) {
    const int fill = ab->host != NULL;
    const int c0 = w->widths[0];
    if (fill)
        fold_patch_conv(tmp, tmp_bias, w->stem_weight, w->stem_bias, c0, 3, 4, NULL, NULL);
    stage_gemm(ab, &b->stem, c0, 48, tmp, fill ? tmp_bias : w->stem_bias);
    b->stem_norm_gain = stage_floats(ab, w->stem_norm_weight, (size_t)c0);
    b->stem_norm_bias = stage_floats(ab, w->stem_norm_bias, (size_t)c0);

    for (int s = 0; s < w->num_stages; s++) {
        const int c = w->widths[s], hidden = 4 * c;
        if (s > 0) {
            const cnx_downsample_weights *d = &w->downsample[s];
            const int prev = w->widths[s - 1];
            if (fill)
                fold_patch_conv(tmp, tmp_bias, d->conv_weight, d->conv_bias, c, prev, 2,
                                d->norm_weight, d->norm_bias);
            stage_gemm(ab, &b->down[s], c, 4 * prev, tmp, fill ? tmp_bias : d->conv_bias);
        }
        for (int j = 0; j < w->depths[s]; j++) {
            const cnx_block_weights *bw = &w->blocks[s][j];
            cuda_block *blk = &b->blocks[s][j];
            if (fill) {
                for (int ch = 0; ch < c; ch++)
                    for (int t = 0; t < 49; t++)
                        tmp[(size_t)t * c + ch] = bw->dw_weight[(size_t)ch * 49 + t];
            }
            blk->dw_weight = stage_floats(ab, tmp, (size_t)49 * c);
            blk->dw_bias = stage_floats(ab, bw->dw_bias, (size_t)c);

            if (fill)
                fold_patch_conv(tmp, tmp_bias, bw->fc1_weight, bw->fc1_bias, hidden, c, 1,
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
        fold_patch_conv(tmp, tmp_bias, w->head_weight, w->head_bias, w->num_classes, last, 1,
                        w->head_norm_weight, w->head_norm_bias);
    stage_gemm(ab, &b->head, w->num_classes, last, tmp, fill ? tmp_bias : w->head_bias);
}

static cnx_status upload_weights(cuda_backend *b, const cnx_convnext_weights *w) {
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
        b->blocks[s] = calloc((size_t)w->depths[s], sizeof(cuda_block));
        if (!b->blocks[s])
            return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory");
    }
    arena_builder sizing = {NULL, 0, 0, b->act, 0};
    layout_weights(b, w, &sizing, NULL, NULL);
    const size_t bytes = align_up(sizing.size);

    const cudaError_t e = cudaMalloc(&b->weights_arena, bytes);
    cudaGetLastError(); /* a failure is reported below, not left for the next launch */
    if (e != cudaSuccess) {
        b->weights_arena = NULL;
        return cnx_fail(e == cudaErrorMemoryAllocation ? CNX_ERROR_OUT_OF_MEMORY : CNX_ERROR_DEVICE,
                        "cuda_backend.c: cudaMalloc of %.1f MiB for the weights: %s",
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
        arena_builder fill = {host, 0, (uintptr_t)b->weights_arena, b->act, 0};
        layout_weights(b, w, &fill, tmp, tmp_bias);
        cudaError_t copy = cudaMemcpy(b->weights_arena, host, bytes, cudaMemcpyHostToDevice);
        /* A pageable copy may return before the DMA lands, and the engine's
         * stream is non-blocking: wait, so no kernel reads half-copied weights. */
        if (copy == cudaSuccess)
            copy = cudaDeviceSynchronize();
        if (copy != cudaSuccess) {
            status = cuda_failed(copy, "cudaMemcpy(weights)", __FILE__, __LINE__);
        } else if (ARENA_GUARD_BYTES) {
            arena_builder guard = {NULL, 0, (uintptr_t)b->weights_arena, b->act, 1};
            layout_weights(b, w, &guard, NULL, NULL);
        }
    }
    free(host);
    free(tmp);
    free(tmp_bias);
    return status;
}

/* ------------------------------------------------------ cuBLASLt setup */

static cnx_status make_desc(cuda_backend *b, cublasLtMatmulDesc_t *desc, const float *bias) {
    CUBLAS_TRY(cublasLtMatmulDescCreate(desc, b->compute, CUDA_R_32F));
    const int32_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    CUBLAS_TRY(cublasLtMatmulDescSetAttribute(*desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof trans_a));
    CUBLAS_TRY(cublasLtMatmulDescSetAttribute(*desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b));
    if (bias) {
        /* The bias is fp32, the type of D for every GEMM that has one (the
         * default bias type is D's). */
        const uint32_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        CUBLAS_TRY(cublasLtMatmulDescSetAttribute(*desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
        CUBLAS_TRY(cublasLtMatmulDescSetAttribute(*desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    }
    return CNX_OK;
}

static cnx_status make_gemm(cuda_backend *b, gemm_weights *g) {
    CUBLAS_TRY(cublasLtMatrixLayoutCreate(&g->a, b->gemm_type, (uint64_t)g->k, (uint64_t)g->m, g->k));
    if (g->bias)
        CNX_TRY(make_desc(b, &g->desc, g->bias));
    return CNX_OK;
}

static void destroy_gemm(gemm_weights *g) {
    if (g->a)
        cublasLtMatrixLayoutDestroy(g->a);
    if (g->desc)
        cublasLtMatmulDescDestroy(g->desc);
    g->a = NULL;
    g->desc = NULL;
}

/* --------------------------------------------------------- activations */

static act_counts activation_counts(const cuda_backend *b, size_t n, int height, int width) {
    act_counts c;
    memset(&c, 0, sizeof c);
    c.input = n * 3 * (size_t)height * width;
    size_t h = (size_t)height / 4, w = (size_t)width / 4;
    c.patches = n * h * w * 48;
    for (int s = 0; s < b->num_stages; s++) {
        if (s > 0) {
            const size_t down = n * (h / 2) * (w / 2) * 4 * (size_t)b->widths[s - 1];
            if (down > c.patches)
                c.patches = down;
            h /= 2;
            w /= 2;
        }
        const size_t x = n * h * w * (size_t)b->widths[s];
        if (x > c.residual)
            c.residual = x;
        if (4 * x > c.hidden)
            c.hidden = 4 * x;
        const size_t grn =
            b->has_grn ? cnx_grn_scratch_floats((int)n, (int)(h * w), 4 * b->widths[s]) : 0;
        if (grn > c.grn)
            c.grn = grn;
    }
    c.pooled = n * (size_t)b->widths[b->num_stages - 1];
    c.logits = n * (size_t)b->classes;
    return c;
}

static cnx_status allocate_activations(cuda_backend *b) {
    const act_counts c = activation_counts(b, (size_t)b->max_batch, b->input_size, b->input_size);
    const size_t a = b->act_size;
    size_t offsets[11], total = 0;
    const size_t sizes[11] = {
        c.input * sizeof(float), c.patches * a, c.residual * sizeof(float), c.residual * a,
        c.hidden * a, c.pooled * a, c.logits * sizeof(float), c.logits * sizeof(float),
        c.logits * sizeof(cnx_prediction), WORKSPACE_BYTES, c.grn * sizeof(float),
    };
    for (int i = 0; i < 11; i++) {
        offsets[i] = align_up(total);
        total = offsets[i] + sizes[i] + ARENA_GUARD_BYTES;
    }
    total = align_up(total);
    const cudaError_t e = cudaMalloc(&b->act_arena, total);
    cudaGetLastError(); /* a failure is reported below, not left for the next launch */
    if (e != cudaSuccess) {
        b->act_arena = NULL;
        return cnx_fail(e == cudaErrorMemoryAllocation ? CNX_ERROR_OUT_OF_MEMORY : CNX_ERROR_DEVICE,
                        "cuda_backend.c: cudaMalloc of %.2f GiB for the activations of %d images "
                        "of %dx%d (%s): %s; try a smaller batch", total / 1073741824.0,
                        b->max_batch, b->input_size, b->input_size, precision_name(b->precision),
                        cudaGetErrorString(e));
    }
    unsigned char *base = b->act_arena;
    if (ARENA_GUARD_BYTES)
        for (int i = 0; i < 11; i++)
            CNX_DEVICE_GUARD(base + offsets[i] + sizes[i], ARENA_GUARD_BYTES);
    b->input = (float *)(base + offsets[0]);
    b->patches = base + offsets[1];
    b->residual = (float *)(base + offsets[2]);
    b->normalized = base + offsets[3];
    b->hidden = base + offsets[4];
    b->pooled = base + offsets[5];
    b->logits = (float *)(base + offsets[6]);
    b->probs = (float *)(base + offsets[7]);
    b->top = (cnx_prediction *)(base + offsets[8]);
    b->workspace = base + offsets[9];
    b->grn_scratch = c.grn ? (float *)(base + offsets[10]) : NULL;
    b->capacity = c;
    return CNX_OK;
}

int cuda_backend_capacity(const cuda_backend *b, int height, int width) {
    if (height < 4 || width < 4)
        return 0;
    const act_counts one = activation_counts(b, 1, height, width);
    const size_t need[7] = {one.input, one.patches, one.residual, one.hidden, one.pooled,
                            one.logits, one.grn};
    const size_t have[7] = {b->capacity.input, b->capacity.patches, b->capacity.residual,
                            b->capacity.hidden, b->capacity.pooled, b->capacity.logits,
                            b->capacity.grn};
    size_t fit = (size_t)b->max_batch;
    for (int i = 0; i < 7; i++)
        if (need[i] && have[i] / need[i] < fit)
            fit = have[i] / need[i];
    return (int)fit;
}

/* --------------------------------------------------------------- plans */

static void destroy_gemm_plan(gemm_plan *p) {
    if (p->b)
        cublasLtMatrixLayoutDestroy(p->b);
    if (p->d)
        cublasLtMatrixLayoutDestroy(p->d);
    memset(p, 0, sizeof *p);
}

static void destroy_retired_graphs(cuda_backend *b) {
    for (int i = 0; i < b->retired_count; i++)
        cudaGraphExecDestroy(b->retired[i]);
    b->retired_count = 0;
}

/* Frees p's graph now, or after the caller's capture. */
static cnx_status retire_graph(cuda_backend *b, forward_plan *p) {
    if (!p->graph)
        return CNX_OK;
    if (!b->caller_capturing) {
        cudaGraphExecDestroy(p->graph);
    } else {
        if (b->retired_count == b->retired_capacity) {
            const int capacity = b->retired_capacity ? 2 * b->retired_capacity : PLAN_SLOTS;
            cudaGraphExec_t *grown = realloc(b->retired, (size_t)capacity * sizeof *grown);
            if (!grown)
                return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory");
            b->retired = grown;
            b->retired_capacity = capacity;
        }
        b->retired[b->retired_count++] = p->graph;
    }
    p->graph = NULL;
    return CNX_OK;
}

static void destroy_plan(forward_plan *p) {
    destroy_gemm_plan(&p->stem);
    destroy_gemm_plan(&p->head);
    for (int s = 0; s < CNX_MAX_STAGES; s++) {
        destroy_gemm_plan(&p->down[s]);
        destroy_gemm_plan(&p->fc1[s]);
        destroy_gemm_plan(&p->fc2[s]);
    }
    if (p->graph)
        cudaGraphExecDestroy(p->graph);
    memset(p, 0, sizeof *p);
}

/* The usable algorithms of the heuristic's ranking for desc (state SUCCESS,
 * workspace within ours), best first, into p. Returns SUCCESS when there is
 * one, else why not. */
static cublasStatus_t heuristic(cuda_backend *b, cublasLtMatmulDesc_t desc, const gemm_weights *g,
                                gemm_plan *p) {
    cublasLtMatmulHeuristicResult_t results[GEMM_ALGOS];
    int found = 0;
    memset(results, 0, sizeof results);
    p->algo_count = 0;
    const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(
        b->lt, desc, g->a, p->b, p->d, p->d, b->pref, GEMM_ALGOS, results, &found);
    if (s != CUBLAS_STATUS_SUCCESS)
        return s;
    cublasStatus_t why = CUBLAS_STATUS_NOT_SUPPORTED; /* also for an empty ranking */
    for (int i = 0; i < found && i < GEMM_ALGOS; i++) {
        if (results[i].state != CUBLAS_STATUS_SUCCESS)
            why = results[i].state;
        else if (results[i].workspaceSize <= WORKSPACE_BYTES)
            p->algos[p->algo_count++] = results[i].algo;
    }
    return p->algo_count ? CUBLAS_STATUS_SUCCESS : why;
}

/* Layouts and algorithms for g over `rows` rows, D of type d_type. */
static cnx_status plan_gemm(cuda_backend *b, gemm_plan *p, const gemm_weights *g, size_t rows,
                            cudaDataType_t d_type, const char *what) {
    p->what = what;
    CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->b, b->gemm_type, (uint64_t)g->k, rows, g->k));
    CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->d, d_type, (uint64_t)g->m, rows, g->m));
    cublasStatus_t why = heuristic(b, g->desc ? g->desc : b->plain, g, p);
    if (why != CUBLAS_STATUS_SUCCESS && g->desc) {
        why = heuristic(b, b->plain, g, p);
        p->bias_by_kernel = 1; /* no algorithm with the bias epilogue here */
    }
    if (why == CUBLAS_STATUS_SUCCESS)
        return CNX_OK;
    return cnx_fail(CNX_ERROR_DEVICE,
                    "cuBLASLt has no algorithm for the %s GEMM (m %d, n %zu, k %d, %s): %s", what,
                    g->m, rows, g->k, precision_name(b->precision), cublasLtGetStatusString(why));
}

static cnx_status build_plan(cuda_backend *b, forward_plan *p, int n, int height, int width) {
    const cudaDataType_t act_type = b->gemm_type;
    size_t h = (size_t)height / 4, w = (size_t)width / 4;
    CNX_TRY(plan_gemm(b, &p->stem, &b->stem, (size_t)n * h * w, CUDA_R_32F, "stem"));
    for (int s = 0; s < b->num_stages; s++) {
        if (s > 0) {
            h /= 2;
            w /= 2;
            CNX_TRY(plan_gemm(b, &p->down[s], &b->down[s], (size_t)n * h * w, CUDA_R_32F, "downsampling"));
        }
        /* Every block of a stage has the same shapes: block 0's descriptors
         * stand for all (they differ only in the bias pointer, and every
         * bias is 256-byte aligned). */
        const cuda_block *blk = &b->blocks[s][0];
        CNX_TRY(plan_gemm(b, &p->fc1[s], &blk->fc1, (size_t)n * h * w, act_type, "fc1"));
        CNX_TRY(plan_gemm(b, &p->fc2[s], &blk->fc2, (size_t)n * h * w, CUDA_R_32F, "fc2"));
    }
    CNX_TRY(plan_gemm(b, &p->head, &b->head, (size_t)n, CUDA_R_32F, "classifier"));
    return CNX_OK;
}

static cnx_status get_plan(cuda_backend *b, int n, int height, int width, forward_plan **out) {
    forward_plan *victim = NULL;
    for (int i = 0; i < PLAN_SLOTS; i++) {
        forward_plan *p = &b->plans[i];
        if (p->n == n && p->height == height && p->width == width) {
            p->last_used = ++b->clock;
            *out = p;
            return CNX_OK;
        }
        if (!victim || (victim->n && (!p->n || p->last_used < victim->last_used)))
            victim = p;
    }
    CNX_TRY(retire_graph(b, victim));
    destroy_plan(victim);
    const cnx_status status = build_plan(b, victim, n, height, width);
    if (status != CNX_OK) {
        destroy_plan(victim);
        return status;
    }
    victim->n = n;
    victim->height = height;
    victim->width = width;
    victim->last_used = ++b->clock;
    *out = victim;
    return CNX_OK;
}

/* -------------------------------------------------------------- create */

int cuda_backend_supported(int ordinal, char *why, size_t why_size) {
    int major = 0;
    const cudaError_t e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ordinal);
    if (e != cudaSuccess) {
        snprintf(why, why_size, "CUDA device %d: %s", ordinal, cudaGetErrorString(e));
        cudaGetLastError();
        return 0;
    }
    if (major < 8) {
        snprintf(why, why_size, "CUDA device %d has compute capability %d.x; cnx needs 8.0 or newer",
                 ordinal, major);
        return 0;
    }
    return 1;
}

/* A device that none of the build's architectures fits would fail every
 * launch; refuse it here, naming both. */
static cnx_status check_kernel_image(int device) {
    const cudaError_t e = cnx_kernel_image_probe();
    if (e == cudaSuccess)
        return CNX_OK;
    if (e != cudaErrorNoKernelImageForDevice)
        return cuda_failed(e, "cnx_kernel_image_probe()", __FILE__, __LINE__);
    int major = 0, minor = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
    char archs[128];
    cnx_kernel_image_archs(archs, sizeof archs);
    return cnx_fail(CNX_ERROR_NO_DEVICE,
                    "CUDA device %d has compute capability %d.%d and this cnx has kernels for %s "
                    "only: rebuild it with %d%d in CMAKE_CUDA_ARCHITECTURES",
                    device, major, minor, archs, major, minor);
}

void cuda_backend_destroy(cuda_backend *b) {
    if (!b)
        return;
    cudaSetDevice(b->device);
    if (b->work_done)
        cudaEventSynchronize(b->work_done); /* nothing of ours may still be running */
    for (int i = 0; i < PLAN_SLOTS; i++)
        destroy_plan(&b->plans[i]);
    destroy_retired_graphs(b);
    free(b->retired);
    destroy_gemm(&b->stem);
    destroy_gemm(&b->head);
    for (int s = 0; s < CNX_MAX_STAGES; s++) {
        destroy_gemm(&b->down[s]);
        if (b->blocks[s]) {
            for (int j = 0; j < b->depths[s]; j++) {
                destroy_gemm(&b->blocks[s][j].fc1);
                destroy_gemm(&b->blocks[s][j].fc2);
            }
            free(b->blocks[s]);
        }
    }
    if (b->plain)
        cublasLtMatmulDescDestroy(b->plain);
    if (b->pref)
        cublasLtMatmulPreferenceDestroy(b->pref);
    if (b->lt)
        cublasLtDestroy(b->lt);
    if (b->act_arena)
        cudaFree(b->act_arena);
    if (b->weights_arena)
        cudaFree(b->weights_arena);
    if (b->own_stream)
        cudaStreamDestroy(b->own_stream);
    if (b->work_done)
        cudaEventDestroy(b->work_done);
    if (b->legacy_point)
        cudaEventDestroy(b->legacy_point);
    free(b);
}

static cnx_status setup(cuda_backend *b, const cnx_convnext_weights *w, void *stream) {
    CNX_TRY(cnx_cublaslt_load());
    char why[256];
    if (!cuda_backend_supported(b->device, why, sizeof why))
        return cnx_fail(CNX_ERROR_NO_DEVICE, "%s", why);
    CUDA_TRY(cudaSetDevice(b->device));
    CNX_TRY(check_kernel_image(b->device));
    CUDA_TRY(cudaStreamCreateWithFlags(&b->own_stream, cudaStreamNonBlocking));
    b->stream = stream ? (cudaStream_t)stream : b->own_stream;
    b->caller_stream = stream != NULL;
    CUDA_TRY(cudaEventCreateWithFlags(&b->work_done, cudaEventDisableTiming));
    CUDA_TRY(cudaEventCreateWithFlags(&b->legacy_point, cudaEventDisableTiming));
    CUDA_TRY(cudaEventRecord(b->work_done, b->stream)); /* nothing to wait for yet */
    CUBLAS_TRY(cublasLtCreate(&b->lt));
    CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&b->pref));
    const uint64_t workspace = WORKSPACE_BYTES;
    CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(b->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &workspace, sizeof workspace));
    CNX_TRY(make_desc(b, &b->plain, NULL));

    CNX_TRY(upload_weights(b, w));
    CNX_TRY(make_gemm(b, &b->stem));
    CNX_TRY(make_gemm(b, &b->head));
    for (int s = 0; s < b->num_stages; s++) {
        if (s > 0)
            CNX_TRY(make_gemm(b, &b->down[s]));
        for (int j = 0; j < b->depths[s]; j++) {
            CNX_TRY(make_gemm(b, &b->blocks[s][j].fc1));
            CNX_TRY(make_gemm(b, &b->blocks[s][j].fc2));
        }
    }
    CNX_TRY(allocate_activations(b));
    /* The planned shape's algorithms now, so that a GPU without them fails
     * here rather than on the first batch. */
    forward_plan *plan;
    CNX_TRY(get_plan(b, b->max_batch, b->input_size, b->input_size, &plan));
    return CNX_OK;
}

cnx_status cuda_backend_create(const cnx_convnext_weights *w, cnx_precision precision,
                               int max_batch, int input_size, int device, void *stream,
                               cuda_backend **out) {
    *out = NULL;
    if (max_batch < 1 || input_size < (4 << (w->num_stages - 1)))
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "CUDA backend: batch %d or input size %d too small",
                        max_batch, input_size);
    int has_grn;
    cnx_status checked = cnx_convnext_weights_check(w, &has_grn);
    if (checked != CNX_OK)
        return checked;
    cuda_backend *b = calloc(1, sizeof *b);
    if (!b)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory");
    b->device = device;
    b->precision = precision;
    switch (precision) {
    case CNX_PRECISION_FP32:
        b->act = CNX_ACT_F32;
        b->gemm_type = CUDA_R_32F;
        b->compute = CUBLAS_COMPUTE_32F; /* true fp32: cuBLASLt uses TF32 only when asked */
        break;
    case CNX_PRECISION_TF32:
        b->act = CNX_ACT_F32;
        b->gemm_type = CUDA_R_32F;
        b->compute = CUBLAS_COMPUTE_32F_FAST_TF32;
        break;
    case CNX_PRECISION_FP16:
        b->act = CNX_ACT_F16;
        b->gemm_type = CUDA_R_16F;
        b->compute = CUBLAS_COMPUTE_32F;
        break;
    case CNX_PRECISION_BF16:
        b->act = CNX_ACT_BF16;
        b->gemm_type = CUDA_R_16BF;
        b->compute = CUBLAS_COMPUTE_32F;
        break;
    }
    b->act_size = b->act == CNX_ACT_F32 ? 4 : 2;
    const char *graphs = getenv("CNX_CUDA_GRAPHS");
    b->graphs = !(graphs && strcmp(graphs, "0") == 0);
    b->num_stages = w->num_stages;
    memcpy(b->depths, w->depths, sizeof b->depths);
    memcpy(b->widths, w->widths, sizeof b->widths);
    b->classes = w->num_classes;
    b->has_grn = has_grn;
    b->head_norm_eps = w->head_norm_eps;
    b->max_batch = max_batch;
    b->input_size = input_size;

    const cnx_status status = setup(b, w, stream);
    if (status != CNX_OK) {
        cuda_backend_destroy(b);
        return status;
    }
    *out = b;
    return CNX_OK;
}

cnx_status cuda_backend_set_stream(cuda_backend *b, void *stream) {
    CUDA_TRY(cudaSetDevice(b->device));
    const cudaStream_t next = stream ? (cudaStream_t)stream : b->own_stream;
    if (next == b->stream && b->caller_stream == (stream != NULL))
        return CNX_OK;
    /* Work queued on the old stream uses the same buffers: the new stream
     * waits for it through work_done, never through the old stream, which
     * the caller may have destroyed by now. Graphs are not tied to a stream
     * (captured on our own), so they stay. */
    CUDA_TRY(cudaStreamWaitEvent(next, b->work_done, 0));
    b->stream = next;
    b->caller_stream = stream != NULL;
    return CNX_OK;
}

int cuda_backend_on_caller_stream(const cuda_backend *b) {
    return b->caller_stream;
}

/* ------------------------------------------------------------- forward */

/* After cublasLtMatmul refused p's algorithm with `status`: moves p on to
 * its next one for good (later runs and captures use the one that ran), or
 * fails naming the GEMM. A refused call has run nothing (cuBLASLt checks a
 * call before it launches; EXECUTION_FAILED is a launch that failed), so on
 * an eager stream the GEMM can simply be queued again. Not in a capture: a
 * failed launch there may invalidate it, and a caller's capture is not ours
 * to spoil. Hence the fall-through happens in a plan's first run on a
 * stream, which run_body keeps eager (and run_body runs a failed capture of
 * ours again eagerly). */
static cnx_status next_algorithm(cuda_backend *b, gemm_plan *p, const gemm_weights *g,
                                 size_t rows, cublasStatus_t status) {
    enum cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    const cudaError_t asked = cudaStreamIsCapturing(b->stream, &capturing);
    cudaGetLastError(); /* the failed launch's error, if any: not the next launcher's */
    const int captured = asked != cudaSuccess || capturing != cudaStreamCaptureStatusNone;
    if (!captured && p->algo + 1 < p->algo_count) {
        p->algo++;
        return CNX_OK;
    }
    const cnx_status failed =
        status == CUBLAS_STATUS_ALLOC_FAILED ? CNX_ERROR_OUT_OF_MEMORY : CNX_ERROR_DEVICE;
    return cnx_fail(failed,
                    "cuBLASLt failed to run the %s GEMM (m %d, n %zu, k %d, %s) with algorithm %d "
                    "of %d%s: %s", p->what, g->m, rows, g->k, precision_name(b->precision),
                    p->algo + 1, p->algo_count,
                    captured ? " while the stream was captured (no other tried)" : "",
                    cublasLtGetStatusString(status));
}

/* out = g->alpha * (weights x in) + beta * out + bias: the bias is outside
 * alpha, in cuBLASLt's epilogue and in add_bias before or after alike. */
static cnx_status run_gemm(cuda_backend *b, gemm_plan *p, const gemm_weights *g, const void *in,
                           void *out, float beta, size_t rows) {
    const int kernel_bias = g->bias && p->bias_by_kernel;
    if (kernel_bias && beta != 0.0f) /* out += bias, then out += alpha A B */
        CUDA_TRY(add_bias_forward((float *)out, g->bias, rows, g->m, b->stream));
    const cublasLtMatmulDesc_t desc = g->desc && !p->bias_by_kernel ? g->desc : b->plain;
    cublasStatus_t s;
    while ((s = cublasLtMatmul(b->lt, desc, &g->alpha, g->weight, g->a, in, p->b, &beta, out,
                               p->d, out, p->d, &p->algos[p->algo], b->workspace, WORKSPACE_BYTES,
                               b->stream)) != CUBLAS_STATUS_SUCCESS)
        CNX_TRY(next_algorithm(b, p, g, rows, s));
    if (kernel_bias && beta == 0.0f)
        CUDA_TRY(add_bias_forward((float *)out, g->bias, rows, g->m, b->stream));
    return CNX_OK;
}

/* Everything from the stem GEMM to the logits: what a graph holds. The
 * patches of the input are already in b->patches. */
static cnx_status enqueue_body(cuda_backend *b, forward_plan *p) {
    const cudaStream_t stream = b->stream;
    const int n = p->n;
    int h = p->height / 4, w = p->width / 4;
    size_t rows = (size_t)n * h * w;
    CNX_TRY(run_gemm(b, &p->stem, &b->stem, b->patches, b->residual, 0.0f, rows));
    CUDA_TRY(layernorm_forward(b->residual, b->residual, b->stem_norm_gain, b->stem_norm_bias, rows,
                               b->widths[0], CNX_ACT_F32, stream));
    for (int s = 0; s < b->num_stages; s++) {
        const int c = b->widths[s];
        if (s > 0) {
            CUDA_TRY(layernorm_patches_forward(b->patches, b->residual, n, h, w, b->widths[s - 1],
                                               b->act, stream));
            h /= 2;
            w /= 2;
            rows = (size_t)n * h * w;
            CNX_TRY(run_gemm(b, &p->down[s], &b->down[s], b->patches, b->residual, 0.0f, rows));
        }
        for (int j = 0; j < b->depths[s]; j++) {
            const cuda_block *blk = &b->blocks[s][j];
            CUDA_TRY(dwconv7_layernorm_forward(b->normalized, b->residual, blk->dw_weight,
                                               blk->dw_bias, n, h, w, c, b->act, stream));
            CNX_TRY(run_gemm(b, &p->fc1[s], &blk->fc1, b->normalized, b->hidden, 0.0f, rows));
            CUDA_TRY(bias_gelu_forward(b->hidden, blk->fc1_bias, rows, 4 * c, b->act, stream));
            if (blk->grn_weight)
                CUDA_TRY(cnx_grn_forward(b->hidden, b->grn_scratch, blk->grn_weight, blk->grn_bias,
                                         n, h * w, 4 * c, b->act, stream));
            CNX_TRY(run_gemm(b, &p->fc2[s], &blk->fc2, b->hidden, b->residual, 1.0f, rows));
        }
    }
    CUDA_TRY(avgpool_layernorm_forward(b->pooled, b->residual, n, h * w,
                                       b->widths[b->num_stages - 1], b->head_norm_eps, b->act,
                                       stream));
    CNX_TRY(run_gemm(b, &p->head, &b->head, b->pooled, b->logits, 0.0f, (size_t)n));
    return CNX_OK;
}

/* Captures the body into p->graph on our own stream, so that the graph can
 * be launched on whichever stream the work goes to. */
static cnx_status capture(cuda_backend *b, forward_plan *p) {
    cudaGraph_t graph = NULL;
    const cudaStream_t work_stream = b->stream;
    CUDA_TRY(cudaStreamBeginCapture(b->own_stream, cudaStreamCaptureModeThreadLocal));
    b->stream = b->own_stream; /* enqueue_body queues on b->stream */
    const cnx_status status = enqueue_body(b, p);
    b->stream = work_stream;
    const cudaError_t ended = cudaStreamEndCapture(b->own_stream, &graph); /* always end it */
    if (status != CNX_OK || ended != cudaSuccess) {
        if (graph)
            cudaGraphDestroy(graph);
        if (status != CNX_OK)
            return status;
        return cuda_failed(ended, "cudaStreamEndCapture(b->stream, &graph)", __FILE__, __LINE__);
    }
    const cudaError_t made = cudaGraphInstantiate(&p->graph, graph, 0);
    cudaGraphDestroy(graph);
    if (made != cudaSuccess) {
        p->graph = NULL;
        return cuda_failed(made, "cudaGraphInstantiate(&p->graph, graph, 0)", __FILE__, __LINE__);
    }
    return CNX_OK;
}

static cnx_status run_body(cuda_backend *b, forward_plan *p) {
    /* A stream the caller is capturing takes our kernels as they are: a
     * graph cannot be launched into a capture. */
    if (b->caller_capturing)
        return enqueue_body(b, p);
    if (p->graph) {
        CUDA_TRY(cudaGraphLaunch(p->graph, b->stream));
        p->runs++;
        return CNX_OK;
    }
    /* The first run of a plan is eager: it loads every kernel, which a
     * capture should not have to do. */
    if (b->graphs && !p->graph_failed && p->runs >= 1) {
        if (capture(b, p) == CNX_OK) {
            CUDA_TRY(cudaGraphLaunch(p->graph, b->stream));
            p->runs++;
            return CNX_OK;
        }
        /* Not capturable here: run eagerly from now on. A real fault shows
         * up again below, with its own message. */
        p->graph_failed = 1;
        cudaGetLastError();
        cnx_clear_error();
    }
    CNX_TRY(enqueue_body(b, p));
    p->runs++;
    return CNX_OK;
}

/* The start of every call that queues work: the device, whether the
 * caller is capturing its stream, and the order after the caller's work.
 * On our own stream the work waits for what the caller queued on the legacy
 * default stream before the call (libcnx uses the legacy default stream, so
 * stream 0 here is it), as work on a blocking stream would; on the caller's
 * stream, the stream's order is the contract. */
static cnx_status begin_call(cuda_backend *b) {
    CUDA_TRY(cudaSetDevice(b->device));
    enum cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    if (b->caller_stream)
        CUDA_TRY(cudaStreamIsCapturing(b->stream, &capturing));
    b->caller_capturing = capturing != cudaStreamCaptureStatusNone;
    if (!b->caller_capturing)
        destroy_retired_graphs(b);
    if (!b->caller_stream) {
        CUDA_TRY(cudaEventRecord(b->legacy_point, NULL));
        CUDA_TRY(cudaStreamWaitEvent(b->stream, b->legacy_point, 0));
    }
    return CNX_OK;
}

/* The end of every call that queued work: work_done marks it (a capture
 * has nothing to mark: the caller's graph runs when the caller says). */
static cnx_status end_call(cuda_backend *b) {
    if (!b->caller_capturing)
        CUDA_TRY(cudaEventRecord(b->work_done, b->stream));
    return CNX_OK;
}

static cnx_status check_call(const cuda_backend *b, const float *input, int n, int height,
                             int width) {
    if (!input || n < 1)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "CUDA forward: NULL input or batch %d", n);
    const int smallest = 4 << (b->num_stages - 1);
    if (height < smallest || width < smallest)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "input is %dx%d; this model needs sides of at least %d",
                        height, width, smallest);
    const int fit = cuda_backend_capacity(b, height, width);
    if (n > fit)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "CUDA forward: %d images of %dx%d, but the engine was planned for %d of "
                        "%dx%d (%d fit); create it with a larger input_size or max_batch",
                        n, height, width, b->max_batch, b->input_size, b->input_size, fit);
    return CNX_OK;
}

/* Input to b->logits, queued on b->stream. */
static cnx_status forward_to_logits(cuda_backend *b, const float *input, int input_on_device,
                                    int n, int height, int width) {
    CNX_TRY(check_call(b, input, n, height, width));
    forward_plan *p;
    CNX_TRY(get_plan(b, n, height, width, &p));
    const float *source = input;
    if (!input_on_device) {
        CUDA_TRY(cudaMemcpyAsync(b->input, input, (size_t)n * 3 * height * width * sizeof(float),
                                 cudaMemcpyHostToDevice, b->stream));
        source = b->input;
    }
    /* Outside the graph: the caller's input pointer changes from call to call. */
    CUDA_TRY(stem_patches_forward(b->patches, source, n, height, width, b->act, b->stream));
    return run_body(b, p);
}

cnx_status cuda_backend_forward(cuda_backend *b, const float *input, int input_on_device, int n,
                                int height, int width, float *logits, int logits_on_device) {
    if (!logits)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "CUDA forward: NULL logits");
    CNX_TRY(begin_call(b));
    CNX_TRY(forward_to_logits(b, input, input_on_device, n, height, width));
    const size_t bytes = (size_t)n * b->classes * sizeof(float);
    CUDA_TRY(cudaMemcpyAsync(logits, b->logits, bytes,
                             logits_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost,
                             b->stream));
    CNX_TRY(end_call(b));
    if (!logits_on_device || !b->caller_stream)
        CUDA_TRY(cudaStreamSynchronize(b->stream));
    return CNX_OK;
}

cnx_status cuda_backend_classify(cuda_backend *b, const float *input, int input_on_device, int n,
                                 int height, int width, int k, cnx_prediction *top) {
    if (!top || k < 1 || k > b->classes)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "classify: k = %d, expected 1..%d", k, b->classes);
    CNX_TRY(begin_call(b));
    CNX_TRY(forward_to_logits(b, input, input_on_device, n, height, width));
    CUDA_TRY(softmax_topk_forward(b->top, b->probs, b->logits, n, b->classes, k, b->stream));
    CUDA_TRY(cudaMemcpyAsync(top, b->top, (size_t)n * k * sizeof(cnx_prediction),
                             cudaMemcpyDeviceToHost, b->stream));
    CNX_TRY(end_call(b));
    CUDA_TRY(cudaStreamSynchronize(b->stream));
    for (int i = 0; i < n; i++)
        if (top[(size_t)i * k].class_index < 0)
            return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                            "classify: image %d of the batch has a non-finite logit", i);
    return CNX_OK;
}

void *cuda_backend_stream(const cuda_backend *b) {
    return b->stream;
}

cnx_status cuda_backend_enqueue_pixels(cuda_backend *b, const uint8_t *pixels, uint64_t pixel_bytes,
                                       const cnx_image_desc *descs, int n,
                                       const cnx_preprocess *params, int k, cnx_prediction *top,
                                       float *logits) {
    if (k < 0 || k > b->classes || (k > 0 && !top) || (k == 0 && !logits))
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "classify: k = %d (expected 0..%d) with %s", k, b->classes,
                        k > 0 ? "no output for the top-k" : "no logits either");
    CNX_TRY(begin_call(b));
    const int crop = params->crop;
    /* The model's input straight into the input buffer, in the layout and
     * type forward_to_logits takes from the caller. */
    CNX_TRY(check_call(b, b->input, n, crop, crop));
    CNX_TRY(cnx_preprocess_forward(b->input, CNX_LAYOUT_NCHW, CNX_ACT_F32, pixels, pixel_bytes, descs,
                                   n, params, b->stream));
    CNX_TRY(forward_to_logits(b, b->input, 1, n, crop, crop));
    if (k > 0) {
        CUDA_TRY(softmax_topk_forward(b->top, b->probs, b->logits, n, b->classes, k, b->stream));
        CUDA_TRY(cudaMemcpyAsync(top, b->top, (size_t)n * k * sizeof(cnx_prediction),
                                 cudaMemcpyDeviceToHost, b->stream));
    }
    if (logits)
        CUDA_TRY(cudaMemcpyAsync(logits, b->logits, (size_t)n * b->classes * sizeof(float),
                                 cudaMemcpyDeviceToHost, b->stream));
    return end_call(b);
}

#else
/* Built without CUDA: engine.c never calls the backend. */
typedef int cnx_cuda_backend_unused;
#endif
