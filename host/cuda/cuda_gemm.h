/* Internal: one GEMM of the CUDA forward on cuBLASLt. A row-major activation
 * X[rows, K] is, to cuBLASLt's column-major view, a K x rows matrix with ld
 * K; a row-major weight W[M, K] is a K x M matrix with ld K. Y[rows, M] =
 * X W^T is then, column-major, the M x rows matrix D = op(A) B with A = W,
 * op(A) = transpose (M x K), B = X (K x rows): "TN", m = M, n = rows, k = K,
 * lda = ldb = K, ldc = ldd = M. The bias epilogue adds a length-M vector to
 * every column, i.e. to every pixel.
 *
 * A GEMM has a fixed half (gemm_weights: the weights, their layout, a
 * descriptor with the bias epilogue) and a half per row count (gemm_plan:
 * layouts and the heuristic's algorithms, best first). Where no algorithm
 * takes the bias epilogue, add_bias adds the bias; where one fails at run
 * time, the next is used from then on. CUDA builds only. */
#ifndef CNX_HOST_CUDA_GEMM_H
#define CNX_HOST_CUDA_GEMM_H

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stddef.h>

#include "cnx.h"

/* cuBLAS's recommended workspace on Hopper. */
#define GEMM_WORKSPACE_BYTES ((size_t)32 << 20)

enum { GEMM_ALGOS = 6 /* algorithms asked of the heuristic per GEMM, best first */ };

/* What every GEMM of an engine shares. */
typedef struct {
    cublasLtHandle_t lt;
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulDesc_t plain; /* TN, no epilogue */
    cublasComputeType_t compute;
    cudaDataType_t type;        /* of the weights and the activations read */
    const char *precision;      /* its name, for messages */
    void *workspace;            /* device, GEMM_WORKSPACE_BYTES: set by the owner */
} gemm_context;

typedef struct {
    const void *weight; /* device, [m, k] row-major, the context's type */
    const float *bias;  /* device, [m], or NULL (fc1: its bias goes to the GELU) */
    float alpha;        /* the GEMM's alpha: 1, or 2^-s for weights stored times 2^s */
    int m, k;
    cublasLtMatrixLayout_t a;
    cublasLtMatmulDesc_t desc; /* NULL without a bias: the plain descriptor is used */
} gemm_weights;

typedef struct {
    cublasLtMatrixLayout_t b; /* K x rows */
    cublasLtMatrixLayout_t d; /* M x rows (also C) */
    cublasLtMatmulAlgo_t algos[GEMM_ALGOS]; /* the heuristic's usable ones, best first */
    int algo_count;
    int algo;           /* the one in use: algos[algo] is the first that ran */
    int bias_by_kernel; /* no algorithm with the bias epilogue: add_bias instead */
    const char *what;   /* "stem", "fc1", ...: for messages */
} gemm_plan;

/* The handle, the preference (workspace) and the plain descriptor. On
 * failure, what was made is left for gemm_context_destroy. */
cnx_status gemm_context_create(gemm_context *ctx, cublasComputeType_t compute, cudaDataType_t type,
                               const char *precision);
void gemm_context_destroy(gemm_context *ctx);

/* g->weight, bias, m and k set: its layout and (with a bias) descriptor. */
cnx_status gemm_weights_describe(const gemm_context *ctx, gemm_weights *g);
void gemm_weights_release(gemm_weights *g);

/* Layouts and algorithms for g over `rows` rows, D of type d_type; `what`
 * names the GEMM in messages (a string that outlives the plan). */
cnx_status gemm_plan_make(const gemm_context *ctx, gemm_plan *p, const gemm_weights *g,
                          size_t rows, cudaDataType_t d_type, const char *what);
void gemm_plan_release(gemm_plan *p);

/* Queues out = g->alpha * (in x weights^T) + beta * out + bias on stream. */
cnx_status gemm_run(const gemm_context *ctx, gemm_plan *p, const gemm_weights *g, const void *in,
                    void *out, float beta, size_t rows, cudaStream_t stream);

#endif
