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
 * i.e. to every pixel. fc2 runs with C = D = the residual and beta = 1.
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
#include "dwconv_layernorm.cuh"
#include "error.h"
#include "grn.cuh"
#include "layernorm.cuh"
#include "preprocess.cuh"
#include "softmax_topk.cuh"
#include "stem_patches.cuh"

enum {
    PLAN_SLOTS = 8,
    ARENA_ALIGN = 256,
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
    cublasLtMatmulAlgo_t algo;
    int bias_by_kernel; /* no algorithm with the bias epilogue: add_bias instead */
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
    cudaStream_t own_stream; /* ours, or NULL */
    int caller_stream;       /* stream is the caller's */

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

static void stage_gemm(arena_builder *ab, gemm_weights *g, int m, int k, const float *w_values,
                       const float *b_values) {
    g->m = m;
    g->k = k;
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

            if (!bw->layer_scale) { /* V2: nothing to fold */
                stage_gemm(ab, &blk->fc2, c, hidden, bw->fc2_weight, bw->fc2_bias);
            } else {
                if (fill) {
                    for (int o = 0; o < c; o++) {
                        for (int i = 0; i < hidden; i++)
                            tmp[(size_t)o * hidden + i] =
                                bw->fc2_weight[(size_t)o * hidden + i] * bw->layer_scale[o];
                        tmp_bias[o] = bw->fc2_bias[o] * bw->layer_scale[o];
                    }
                }
                stage_gemm(ab, &blk->fc2, c, hidden, tmp, fill ? tmp_bias : bw->fc2_bias);
            }
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

static cnx_status heuristic(cuda_backend *b, cublasLtMatmulDesc_t desc, const gemm_weights *g,
                            gemm_plan *p, cublasStatus_t *why) {
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    memset(&result, 0, sizeof result);
    *why = cublasLtMatmulAlgoGetHeuristic(b->lt, desc, g->a, p->b, p->d, p->d, b->pref, 1,
                                          &result, &found);
    if (*why != CUBLAS_STATUS_SUCCESS)
        return CNX_ERROR_DEVICE;
    if (found < 1 || result.state != CUBLAS_STATUS_SUCCESS || result.workspaceSize > WORKSPACE_BYTES) {
        *why = found < 1 ? CUBLAS_STATUS_NOT_SUPPORTED : result.state;
        if (*why == CUBLAS_STATUS_SUCCESS)
            *why = CUBLAS_STATUS_NOT_SUPPORTED;
        return CNX_ERROR_DEVICE;
    }
    p->algo = result.algo;
    return CNX_OK;
}

/* Layouts and an algorithm for g over `rows` rows, D of type d_type. */
static cnx_status plan_gemm(cuda_backend *b, gemm_plan *p, const gemm_weights *g, size_t rows,
                            cudaDataType_t d_type, const char *what) {
    CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->b, b->gemm_type, (uint64_t)g->k, rows, g->k));
    CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->d, d_type, (uint64_t)g->m, rows, g->m));
    cublasStatus_t why;
    if (heuristic(b, g->desc ? g->desc : b->plain, g, p, &why) == CNX_OK)
        return CNX_OK;
    if (g->desc && heuristic(b, b->plain, g, p, &why) == CNX_OK) {
        p->bias_by_kernel = 1; /* no algorithm with the bias epilogue here */
        return CNX_OK;
    }
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

static void drop_graphs(cuda_backend *b) {
    for (int i = 0; i < PLAN_SLOTS; i++) {
        forward_plan *p = &b->plans[i];
        if (p->graph)
            cudaGraphExecDestroy(p->graph);
        p->graph = NULL;
        p->runs = 0;
        p->graph_failed = 0;
    }
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

void cuda_backend_destroy(cuda_backend *b) {
    if (!b)
        return;
    cudaSetDevice(b->device);
    if (b->stream)
        cudaStreamSynchronize(b->stream); /* nothing of ours may still be running */
    for (int i = 0; i < PLAN_SLOTS; i++)
        destroy_plan(&b->plans[i]);
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
    free(b);
}

static cnx_status setup(cuda_backend *b, const cnx_convnext_weights *w, void *stream) {
    char why[256];
    if (!cuda_backend_supported(b->device, why, sizeof why))
        return cnx_fail(CNX_ERROR_NO_DEVICE, "%s", why);
    CUDA_TRY(cudaSetDevice(b->device));
    if (stream) {
        b->stream = (cudaStream_t)stream;
        b->caller_stream = 1;
    } else {
        CUDA_TRY(cudaStreamCreateWithFlags(&b->own_stream, cudaStreamNonBlocking));
        b->stream = b->own_stream;
    }
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
    cudaStream_t next = (cudaStream_t)stream;
    if (!stream) {
        if (!b->own_stream)
            CUDA_TRY(cudaStreamCreateWithFlags(&b->own_stream, cudaStreamNonBlocking));
        next = b->own_stream;
    }
    if (next == b->stream && b->caller_stream == (stream != NULL))
        return CNX_OK;
    /* Work queued on the old stream uses the same buffers. */
    CUDA_TRY(cudaStreamSynchronize(b->stream));
    drop_graphs(b); /* a graph is captured per stream */
    b->stream = next;
    b->caller_stream = stream != NULL;
    return CNX_OK;
}

int cuda_backend_on_caller_stream(const cuda_backend *b) {
    return b->caller_stream;
}

/* ------------------------------------------------------------- forward */

static cnx_status run_gemm(cuda_backend *b, const gemm_plan *p, const gemm_weights *g,
                           const void *in, void *out, float beta, size_t rows) {
    static const float one = 1.0f;
    const int kernel_bias = g->bias && p->bias_by_kernel;
    if (kernel_bias && beta != 0.0f) /* out += bias, then out += A B */
        CUDA_TRY(add_bias_forward((float *)out, g->bias, rows, g->m, b->stream));
    const cublasLtMatmulDesc_t desc = g->desc && !p->bias_by_kernel ? g->desc : b->plain;
    CUBLAS_TRY(cublasLtMatmul(b->lt, desc, &one, g->weight, g->a, in, p->b, &beta, out, p->d, out,
                              p->d, &p->algo, b->workspace, WORKSPACE_BYTES, b->stream));
    if (kernel_bias && beta == 0.0f)
        CUDA_TRY(add_bias_forward((float *)out, g->bias, rows, g->m, b->stream));
    return CNX_OK;
}

/* Everything from the stem GEMM to the logits: what a graph holds. The
 * patches of the input are already in b->patches. */
static cnx_status enqueue_body(cuda_backend *b, const forward_plan *p) {
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

static cnx_status capture(cuda_backend *b, forward_plan *p) {
    cudaGraph_t graph = NULL;
    CUDA_TRY(cudaStreamBeginCapture(b->stream, cudaStreamCaptureModeThreadLocal));
    const cnx_status status = enqueue_body(b, p);
    const cudaError_t ended = cudaStreamEndCapture(b->stream, &graph); /* always end it */
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
    if (p->graph) {
        CUDA_TRY(cudaGraphLaunch(p->graph, b->stream));
        p->runs++;
        return CNX_OK;
    }
    /* The first run on a stream is eager: it loads every kernel, which a
     * capture should not have to do. The legacy default stream cannot be
     * captured, and a stream the caller is capturing takes our work as it is. */
    int want_graph = b->graphs && !p->graph_failed && p->runs >= 1 && b->stream != NULL;
    if (want_graph) {
        enum cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
        CUDA_TRY(cudaStreamIsCapturing(b->stream, &capturing));
        want_graph = capturing == cudaStreamCaptureStatusNone;
    }
    if (want_graph) {
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
    CUDA_TRY(cudaSetDevice(b->device));
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
    CNX_TRY(forward_to_logits(b, input, input_on_device, n, height, width));
    const size_t bytes = (size_t)n * b->classes * sizeof(float);
    CUDA_TRY(cudaMemcpyAsync(logits, b->logits, bytes,
                             logits_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost,
                             b->stream));
    if (!logits_on_device || !b->caller_stream)
        CUDA_TRY(cudaStreamSynchronize(b->stream));
    return CNX_OK;
}

cnx_status cuda_backend_classify(cuda_backend *b, const float *input, int input_on_device, int n,
                                 int height, int width, int k, cnx_prediction *top) {
    if (!top || k < 1 || k > b->classes)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "classify: k = %d, expected 1..%d", k, b->classes);
    CNX_TRY(forward_to_logits(b, input, input_on_device, n, height, width));
    CUDA_TRY(softmax_topk_forward(b->top, b->probs, b->logits, n, b->classes, k, b->stream));
    CUDA_TRY(cudaMemcpyAsync(top, b->top, (size_t)n * k * sizeof(cnx_prediction),
                             cudaMemcpyDeviceToHost, b->stream));
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
    CUDA_TRY(cudaSetDevice(b->device));
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
    return CNX_OK;
}

#else
/* Built without CUDA: engine.c never calls the backend. */
typedef int cnx_cuda_backend_unused;
#endif
