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
 * The GEMMs run on cuBLASLt (cuda_gemm.c: layout, algorithms, fall-backs),
 * fc2 with C = D = the residual and beta = 1; the weights are folded and
 * uploaded by cuda_weights.c, into an arena laid out as arena.h says.
 *
 * The 4x4 stem and 2x2 downsampling convs are gather + GEMM here, not cuDNN:
 * the gather is one pass over data the GEMM reads anyway, and it keeps one
 * library on the hot path. Whether cuDNN's conv (or a fused implicit GEMM) is
 * faster is for a GPU measurement to decide. */
#ifdef CNX_HAVE_CUDA

#include "cuda_backend.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "avgpool_layernorm.cuh"
#include "bias_gelu.cuh"
#include "cublaslt_library.h"
#include "cuda_gemm.h"
#include "cuda_status.h"
#include "cuda_weights.h"
#include "dwconv_layernorm.cuh"
#include "error.h"
#include "grn.cuh"
#include "kernel_image.cuh"
#include "layernorm.cuh"
#include "preprocess.cuh"
#include "softmax_topk.cuh"
#include "stem_patches.cuh"

enum { PLAN_SLOTS = 8 };

/* -------------------------------------------------------------- state */

typedef struct {
    int n, height, width; /* n == 0: a free slot */
    unsigned long long last_used;
    gemm_plan stem, down[CNX_MAX_STAGES], fc1[CNX_MAX_STAGES], fc2[CNX_MAX_STAGES], head;
    cudaGraphExec_t graph;
    int runs;         /* runs so far (the first is eager) */
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

    gemm_context gemm;
    cuda_weights weights;

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
    void *workspace;     /* cuBLASLt's, GEMM_WORKSPACE_BYTES */

    forward_plan plans[PLAN_SLOTS];
    unsigned long long clock;
    /* Graphs of plans replaced while the caller captured: destroyed after
     * the capture, for a destroy may synchronize, which a capture forbids. */
    cudaGraphExec_t *retired;
    int retired_count, retired_capacity;
};

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
        c.logits * sizeof(cnx_prediction), GEMM_WORKSPACE_BYTES, c.grn * sizeof(float),
    };
    for (int i = 0; i < 11; i++) {
        offsets[i] = arena_align_up(total);
        total = offsets[i] + sizes[i] + ARENA_GUARD_BYTES;
    }
    total = arena_align_up(total);
    const cudaError_t e = cudaMalloc(&b->act_arena, total);
    cudaGetLastError(); /* a failure is reported below, not left for the next launch */
    if (e != cudaSuccess) {
        b->act_arena = NULL;
        return cnx_fail(e == cudaErrorMemoryAllocation ? CNX_ERROR_OUT_OF_MEMORY : CNX_ERROR_DEVICE,
                        "cuda_backend.c: cudaMalloc of %.2f GiB for the activations of %d images "
                        "of %dx%d (%s): %s; try a smaller batch", total / 1073741824.0,
                        b->max_batch, b->input_size, b->input_size, cnx_precision_name(b->precision),
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
    b->gemm.workspace = b->workspace;
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
    gemm_plan_release(&p->stem);
    gemm_plan_release(&p->head);
    for (int s = 0; s < CNX_MAX_STAGES; s++) {
        gemm_plan_release(&p->down[s]);
        gemm_plan_release(&p->fc1[s]);
        gemm_plan_release(&p->fc2[s]);
    }
    if (p->graph)
        cudaGraphExecDestroy(p->graph);
    memset(p, 0, sizeof *p);
}

static cnx_status build_plan(cuda_backend *b, forward_plan *p, int n, int height, int width) {
    const gemm_context *ctx = &b->gemm;
    const cuda_weights *cw = &b->weights;
    size_t h = (size_t)height / 4, w = (size_t)width / 4;
    CNX_TRY(gemm_plan_make(ctx, &p->stem, &cw->stem, (size_t)n * h * w, CUDA_R_32F, "stem"));
    for (int s = 0; s < b->num_stages; s++) {
        if (s > 0) {
            h /= 2;
            w /= 2;
            CNX_TRY(gemm_plan_make(ctx, &p->down[s], &cw->down[s], (size_t)n * h * w, CUDA_R_32F,
                                   "downsampling"));
        }
        /* Every block of a stage has the same shapes: block 0's descriptors
         * stand for all (they differ only in the bias pointer, and every
         * bias is 256-byte aligned). */
        const cuda_block *blk = &cw->blocks[s][0];
        CNX_TRY(gemm_plan_make(ctx, &p->fc1[s], &blk->fc1, (size_t)n * h * w, ctx->type, "fc1"));
        CNX_TRY(gemm_plan_make(ctx, &p->fc2[s], &blk->fc2, (size_t)n * h * w, CUDA_R_32F, "fc2"));
    }
    CNX_TRY(gemm_plan_make(ctx, &p->head, &cw->head, (size_t)n, CUDA_R_32F, "classifier"));
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
        return cuda_status_failed(e, "cnx_kernel_image_probe()", __FILE__, __LINE__);
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
    cuda_weights_free(&b->weights);
    gemm_context_destroy(&b->gemm);
    if (b->act_arena)
        cudaFree(b->act_arena);
    if (b->own_stream)
        cudaStreamDestroy(b->own_stream);
    if (b->work_done)
        cudaEventDestroy(b->work_done);
    if (b->legacy_point)
        cudaEventDestroy(b->legacy_point);
    free(b);
}

static cnx_status setup(cuda_backend *b, const cnx_convnext_weights *w, void *stream,
                        cublasComputeType_t compute, cudaDataType_t gemm_type) {
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
    CNX_TRY(gemm_context_create(&b->gemm, compute, gemm_type, cnx_precision_name(b->precision)));
    CNX_TRY(cuda_weights_upload(&b->weights, w, b->act));
    CNX_TRY(cuda_weights_describe(&b->weights, &b->gemm));
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
    cudaDataType_t gemm_type = CUDA_R_32F;
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F; /* true fp32: TF32 only when asked */
    switch (precision) {
    case CNX_PRECISION_FP32:
        b->act = CNX_ACT_F32;
        break;
    case CNX_PRECISION_TF32:
        b->act = CNX_ACT_F32;
        compute = CUBLAS_COMPUTE_32F_FAST_TF32;
        break;
    case CNX_PRECISION_FP16:
        b->act = CNX_ACT_F16;
        gemm_type = CUDA_R_16F;
        break;
    case CNX_PRECISION_BF16:
        b->act = CNX_ACT_BF16;
        gemm_type = CUDA_R_16BF;
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

    const cnx_status status = setup(b, w, stream, compute, gemm_type);
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
    /* A capture cannot wait for an event recorded outside it. */
    enum cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    CUDA_TRY(cudaStreamIsCapturing(next, &capturing));
    if (capturing != cudaStreamCaptureStatusNone)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "set the CUDA stream: the stream is being captured; set it before the "
                        "capture begins");
    /* Work queued on the old stream uses the same buffers: the new stream
     * waits for it through work_done, never through the old stream, which
     * the caller may have destroyed by now (and even for the same handle:
     * a destroyed stream's handle can come back for a new one). Graphs are
     * not tied to a stream (captured on our own), so they stay. */
    CUDA_TRY(cudaStreamWaitEvent(next, b->work_done, 0));
    b->stream = next;
    b->caller_stream = stream != NULL;
    return CNX_OK;
}

int cuda_backend_on_caller_stream(const cuda_backend *b) {
    return b->caller_stream;
}

/* ------------------------------------------------------------- forward */

/* Everything from the stem GEMM to the logits: what a graph holds. The
 * patches of the input are already in b->patches. */
static cnx_status enqueue_body(cuda_backend *b, forward_plan *p) {
    const cudaStream_t stream = b->stream;
    const gemm_context *ctx = &b->gemm;
    const cuda_weights *cw = &b->weights;
    const int n = p->n;
    int h = p->height / 4, w = p->width / 4;
    size_t rows = (size_t)n * h * w;
    CNX_TRY(gemm_run(ctx, &p->stem, &cw->stem, b->patches, b->residual, 0.0f, rows, stream));
    CUDA_TRY(layernorm_forward(b->residual, b->residual, cw->stem_norm_gain, cw->stem_norm_bias,
                               rows, b->widths[0], CNX_ACT_F32, stream));
    for (int s = 0; s < b->num_stages; s++) {
        const int c = b->widths[s];
        if (s > 0) {
            CUDA_TRY(layernorm_patches_forward(b->patches, b->residual, n, h, w, b->widths[s - 1],
                                               b->act, stream));
            h /= 2;
            w /= 2;
            rows = (size_t)n * h * w;
            CNX_TRY(gemm_run(ctx, &p->down[s], &cw->down[s], b->patches, b->residual, 0.0f, rows,
                             stream));
        }
        for (int j = 0; j < b->depths[s]; j++) {
            const cuda_block *blk = &cw->blocks[s][j];
            CUDA_TRY(dwconv7_layernorm_forward(b->normalized, b->residual, blk->dw_weight,
                                               blk->dw_bias, n, h, w, c, b->act, stream));
            CNX_TRY(gemm_run(ctx, &p->fc1[s], &blk->fc1, b->normalized, b->hidden, 0.0f, rows,
                             stream));
            CUDA_TRY(bias_gelu_forward(b->hidden, blk->fc1_bias, rows, 4 * c, b->act, stream));
            if (blk->grn_weight)
                CUDA_TRY(cnx_grn_forward(b->hidden, b->grn_scratch, blk->grn_weight, blk->grn_bias,
                                         n, h * w, 4 * c, b->act, stream));
            CNX_TRY(gemm_run(ctx, &p->fc2[s], &blk->fc2, b->hidden, b->residual, 1.0f, rows,
                             stream));
        }
    }
    CUDA_TRY(avgpool_layernorm_forward(b->pooled, b->residual, n, h * w,
                                       b->widths[b->num_stages - 1], b->head_norm_eps, b->act,
                                       stream));
    CNX_TRY(gemm_run(ctx, &p->head, &cw->head, b->pooled, b->logits, 0.0f, (size_t)n, stream));
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
        return cuda_status_failed(ended, "cudaStreamEndCapture(b->own_stream, &graph)", __FILE__,
                                  __LINE__);
    }
    const cudaError_t made = cudaGraphInstantiate(&p->graph, graph, 0);
    cudaGraphDestroy(graph);
    if (made != cudaSuccess) {
        p->graph = NULL;
        return cuda_status_failed(made, "cudaGraphInstantiate(&p->graph, graph, 0)", __FILE__, __LINE__);
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
 * Only `capturable` work (from and to device memory, nothing waited for)
 * may go into a caller's capture: anything else is refused before it
 * queues a thing, which would spoil the capture. On our own stream the work
 * waits for what the caller queued on the legacy default stream before the
 * call (libcnx uses the legacy default stream, so stream 0 here is it), as
 * work on a blocking stream would; on the caller's stream, the stream's
 * order is the contract. */
static cnx_status begin_call(cuda_backend *b, int capturable, const char *what) {
    CUDA_TRY(cudaSetDevice(b->device));
    enum cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    if (b->caller_stream)
        CUDA_TRY(cudaStreamIsCapturing(b->stream, &capturing));
    b->caller_capturing = capturing != cudaStreamCaptureStatusNone;
    if (b->caller_capturing && !capturable)
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "%s: the engine's stream is being captured, and only a forward from and "
                        "to device memory (cnx_engine_forward_device) can be", what);
    if (!b->caller_capturing)
        destroy_retired_graphs(b);
    if (!b->caller_stream) {
        CUDA_TRY(cudaEventRecord(b->legacy_point, NULL));
        CUDA_TRY(cudaStreamWaitEvent(b->stream, b->legacy_point, 0));
    }
    return CNX_OK;
}

/* The end of every call that began, whatever became of it: work_done
 * marks what it queued, a failed call's half included, for destroy and
 * set_stream to wait for (a capture has nothing to mark: the caller's graph
 * runs when the caller says). Returns the call's status, or this failure. */
static cnx_status end_call(cuda_backend *b, cnx_status status) {
    if (b->caller_capturing)
        return status;
    const cudaError_t e = cudaEventRecord(b->work_done, b->stream);
    if (e != cudaSuccess && status == CNX_OK)
        return cuda_status_failed(e, "cudaEventRecord(b->work_done, b->stream)", __FILE__, __LINE__);
    return status;
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

static cnx_status queue_forward(cuda_backend *b, const float *input, int input_on_device, int n,
                                int height, int width, float *logits, int logits_on_device) {
    CNX_TRY(forward_to_logits(b, input, input_on_device, n, height, width));
    CUDA_TRY(cudaMemcpyAsync(logits, b->logits, (size_t)n * b->classes * sizeof(float),
                             logits_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost,
                             b->stream));
    return CNX_OK;
}

cnx_status cuda_backend_forward(cuda_backend *b, const float *input, int input_on_device, int n,
                                int height, int width, float *logits, int logits_on_device) {
    if (!logits)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "CUDA forward: NULL logits");
    CNX_TRY(begin_call(b, input_on_device && logits_on_device, "CUDA forward"));
    CNX_TRY(end_call(b, queue_forward(b, input, input_on_device, n, height, width, logits,
                                      logits_on_device)));
    if (!logits_on_device || !b->caller_stream)
        CUDA_TRY(cudaStreamSynchronize(b->stream));
    return CNX_OK;
}

/* The top k of b->logits into host memory, queued. */
static cnx_status queue_top_k(cuda_backend *b, int n, int k, cnx_prediction *top) {
    CUDA_TRY(softmax_topk_forward(b->top, b->probs, b->logits, n, b->classes, k, b->stream));
    CUDA_TRY(cudaMemcpyAsync(top, b->top, (size_t)n * k * sizeof(cnx_prediction),
                             cudaMemcpyDeviceToHost, b->stream));
    return CNX_OK;
}

static cnx_status queue_classify(cuda_backend *b, const float *input, int input_on_device, int n,
                                 int height, int width, int k, cnx_prediction *top) {
    CNX_TRY(forward_to_logits(b, input, input_on_device, n, height, width));
    return queue_top_k(b, n, k, top);
}

cnx_status cuda_backend_classify(cuda_backend *b, const float *input, int input_on_device, int n,
                                 int height, int width, int k, cnx_prediction *top) {
    if (!top || k < 1 || k > b->classes)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "classify: k = %d, expected 1..%d", k, b->classes);
    CNX_TRY(begin_call(b, 0, "classify"));
    CNX_TRY(end_call(b, queue_classify(b, input, input_on_device, n, height, width, k, top)));
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

static cnx_status queue_pixels(cuda_backend *b, const uint8_t *pixels, uint64_t pixel_bytes,
                               const cnx_image_desc *descs, int n, const cnx_preprocess *params,
                               int k, cnx_prediction *top, float *logits) {
    const int crop = params->crop;
    /* The model's input straight into the input buffer, in the layout and
     * type forward_to_logits takes from the caller. */
    CNX_TRY(check_call(b, b->input, n, crop, crop));
    CNX_TRY(cnx_preprocess_forward(b->input, CNX_LAYOUT_NCHW, CNX_ACT_F32, pixels, pixel_bytes, descs,
                                   n, params, b->stream));
    CNX_TRY(forward_to_logits(b, b->input, 1, n, crop, crop));
    if (k > 0)
        CNX_TRY(queue_top_k(b, n, k, top));
    if (logits)
        CUDA_TRY(cudaMemcpyAsync(logits, b->logits, (size_t)n * b->classes * sizeof(float),
                                 cudaMemcpyDeviceToHost, b->stream));
    return CNX_OK;
}

cnx_status cuda_backend_enqueue_pixels(cuda_backend *b, const uint8_t *pixels, uint64_t pixel_bytes,
                                       const cnx_image_desc *descs, int n,
                                       const cnx_preprocess *params, int k, cnx_prediction *top,
                                       float *logits) {
    if (k < 0 || k > b->classes || (k > 0 && !top) || (k == 0 && !logits))
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "classify: k = %d (expected 0..%d) with %s", k, b->classes,
                        k > 0 ? "no output for the top-k" : "no logits either");
    CNX_TRY(begin_call(b, 0, "classify images"));
    return end_call(b, queue_pixels(b, pixels, pixel_bytes, descs, n, params, k, top, logits));
}

#else
/* Built without CUDA: engine.c never calls the backend. */
typedef int cnx_cuda_backend_unused;
#endif
