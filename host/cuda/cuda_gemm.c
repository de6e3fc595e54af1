/* One GEMM of the CUDA forward on cuBLASLt (see cuda_gemm.h). */
#ifdef CNX_HAVE_CUDA

#include "cuda_gemm.h"

#include <stdint.h>
#include <string.h>

#include "add_bias.cuh"
#include "cublaslt_library.h"
#include "cuda_status.h"
#include "error.h"

/* TN; with a bias, the bias epilogue pointing at it. */
static cnx_status make_desc(const gemm_context *ctx, cublasLtMatmulDesc_t *desc, const float *bias) {
    CUBLAS_TRY(cublasLtMatmulDescCreate(desc, ctx->compute, CUDA_R_32F));
    const int32_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    CUBLAS_TRY(cublasLtMatmulDescSetAttribute(*desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a,
                                              sizeof trans_a));
    CUBLAS_TRY(cublasLtMatmulDescSetAttribute(*desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b,
                                              sizeof trans_b));
    if (bias) {
        /* The bias is fp32, the type of D for every GEMM that has one (the
         * default bias type is D's). */
        const uint32_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        CUBLAS_TRY(cublasLtMatmulDescSetAttribute(*desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                                  sizeof epilogue));
        CUBLAS_TRY(cublasLtMatmulDescSetAttribute(*desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                  sizeof bias));
    }
    return CNX_OK;
}

cnx_status gemm_context_create(gemm_context *ctx, cublasComputeType_t compute, cudaDataType_t type,
                               const char *precision) {
    memset(ctx, 0, sizeof *ctx);
    ctx->compute = compute;
    ctx->type = type;
    ctx->precision = precision;
    CUBLAS_TRY(cublasLtCreate(&ctx->lt));
    CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&ctx->pref));
    const uint64_t workspace = GEMM_WORKSPACE_BYTES;
    CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(ctx->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &workspace, sizeof workspace));
    return make_desc(ctx, &ctx->plain, NULL);
}

void gemm_context_destroy(gemm_context *ctx) {
    if (ctx->plain)
        cublasLtMatmulDescDestroy(ctx->plain);
    if (ctx->pref)
        cublasLtMatmulPreferenceDestroy(ctx->pref);
    if (ctx->lt)
        cublasLtDestroy(ctx->lt);
    memset(ctx, 0, sizeof *ctx);
}

cnx_status gemm_weights_describe(const gemm_context *ctx, gemm_weights *g) {
    CUBLAS_TRY(cublasLtMatrixLayoutCreate(&g->a, ctx->type, (uint64_t)g->k, (uint64_t)g->m, g->k));
    if (g->bias)
        CNX_TRY(make_desc(ctx, &g->desc, g->bias));
    return CNX_OK;
}

void gemm_weights_release(gemm_weights *g) {
    if (g->a)
        cublasLtMatrixLayoutDestroy(g->a);
    if (g->desc)
        cublasLtMatmulDescDestroy(g->desc);
    g->a = NULL;
    g->desc = NULL;
}

/* The usable algorithms of the heuristic's ranking for desc (state SUCCESS,
 * workspace within ours), best first, into p. Returns SUCCESS when there is
 * one, else why not. */
static cublasStatus_t heuristic(const gemm_context *ctx, cublasLtMatmulDesc_t desc,
                                const gemm_weights *g, gemm_plan *p) {
    cublasLtMatmulHeuristicResult_t results[GEMM_ALGOS];
    int found = 0;
    memset(results, 0, sizeof results);
    p->algo_count = 0;
    const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(
        ctx->lt, desc, g->a, p->b, p->d, p->d, ctx->pref, GEMM_ALGOS, results, &found);
    if (s != CUBLAS_STATUS_SUCCESS)
        return s;
    cublasStatus_t why = CUBLAS_STATUS_NOT_SUPPORTED; /* also for an empty ranking */
    for (int i = 0; i < found && i < GEMM_ALGOS; i++) {
        if (results[i].state != CUBLAS_STATUS_SUCCESS)
            why = results[i].state;
        else if (results[i].workspaceSize <= GEMM_WORKSPACE_BYTES)
            p->algos[p->algo_count++] = results[i].algo;
    }
    return p->algo_count ? CUBLAS_STATUS_SUCCESS : why;
}

cnx_status gemm_plan_make(const gemm_context *ctx, gemm_plan *p, const gemm_weights *g,
                          size_t rows, cudaDataType_t d_type, const char *what) {
    p->what = what;
    CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->b, ctx->type, (uint64_t)g->k, rows, g->k));
    CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->d, d_type, (uint64_t)g->m, rows, g->m));
    cublasStatus_t why = heuristic(ctx, g->desc ? g->desc : ctx->plain, g, p);
    if (why != CUBLAS_STATUS_SUCCESS && g->desc) {
        why = heuristic(ctx, ctx->plain, g, p);
        p->bias_by_kernel = 1; /* no algorithm with the bias epilogue here */
    }
    if (why == CUBLAS_STATUS_SUCCESS)
        return CNX_OK;
    return cnx_fail(CNX_ERROR_DEVICE,
                    "cuBLASLt has no algorithm for the %s GEMM (m %d, n %zu, k %d, %s): %s", what,
                    g->m, rows, g->k, ctx->precision, cublasLtGetStatusString(why));
}

void gemm_plan_release(gemm_plan *p) {
    if (p->b)
        cublasLtMatrixLayoutDestroy(p->b);
    if (p->d)
        cublasLtMatrixLayoutDestroy(p->d);
    memset(p, 0, sizeof *p);
}

/* After cublasLtMatmul refused p's algorithm with `status`: moves p on to
 * its next one for good (later runs and captures use the one that ran), or
 * fails naming the GEMM. A call refused before its launch (NOT_SUPPORTED,
 * INVALID_VALUE, ...) ran nothing, so on an eager stream the GEMM can simply
 * be queued again. EXECUTION_FAILED is a launch that failed, maybe after a
 * first kernel wrote part of D: again is fine where D is overwritten (beta
 * 0), not where it is added to (fc2 onto the residual). Not in a capture
 * either: a failed launch there may invalidate it, and a caller's capture
 * is not ours to spoil. Hence the fall-through happens in a plan's first
 * run, which the backend keeps eager (and it runs a failed capture of its
 * own again eagerly). */
static cnx_status next_algorithm(const gemm_context *ctx, gemm_plan *p, const gemm_weights *g,
                                 size_t rows, float beta, cudaStream_t stream,
                                 cublasStatus_t status) {
    enum cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    const cudaError_t asked = cudaStreamIsCapturing(stream, &capturing);
    cudaGetLastError(); /* the failed launch's error, if any: not the next launcher's */
    const int captured = asked != cudaSuccess || capturing != cudaStreamCaptureStatusNone;
    const int may_have_added = status == CUBLAS_STATUS_EXECUTION_FAILED && beta != 0.0f;
    if (!captured && !may_have_added && p->algo + 1 < p->algo_count) {
        p->algo++;
        return CNX_OK;
    }
    const cnx_status failed =
        status == CUBLAS_STATUS_ALLOC_FAILED ? CNX_ERROR_OUT_OF_MEMORY : CNX_ERROR_DEVICE;
    return cnx_fail(failed,
                    "cuBLASLt failed to run the %s GEMM (m %d, n %zu, k %d, %s) with algorithm %d "
                    "of %d%s: %s", p->what, g->m, rows, g->k, ctx->precision,
                    p->algo + 1, p->algo_count,
                    captured         ? " while the stream was captured (no other tried)"
                    : may_have_added ? " (its output may be half added to: no other tried)"
                                     : "",
                    cublasLtGetStatusString(status));
}

/* The bias is outside alpha, in cuBLASLt's epilogue and in add_bias before
 * or after alike. */
cnx_status gemm_run(const gemm_context *ctx, gemm_plan *p, const gemm_weights *g, const void *in,
                    void *out, float beta, size_t rows, cudaStream_t stream) {
    const int kernel_bias = g->bias && p->bias_by_kernel;
    if (kernel_bias && beta != 0.0f) /* out += bias, then out += alpha A B */
        CUDA_TRY(add_bias_forward((float *)out, g->bias, rows, g->m, stream));
    const cublasLtMatmulDesc_t desc = g->desc && !p->bias_by_kernel ? g->desc : ctx->plain;
    cublasStatus_t s;
    while ((s = cublasLtMatmul(ctx->lt, desc, &g->alpha, g->weight, g->a, in, p->b, &beta, out,
                               p->d, out, p->d, &p->algos[p->algo], ctx->workspace,
                               GEMM_WORKSPACE_BYTES, stream)) != CUBLAS_STATUS_SUCCESS)
        CNX_TRY(next_algorithm(ctx, p, g, rows, beta, stream, s));
    if (kernel_bias && beta == 0.0f)
        CUDA_TRY(add_bias_forward((float *)out, g->bias, rows, g->m, stream));
    return CNX_OK;
}

#else
typedef int cnx_cuda_gemm_unused;
#endif
