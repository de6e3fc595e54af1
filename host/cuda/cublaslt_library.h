/* Internal: cuBLASLt, loaded when the first CUDA engine is made.
 *
 * libcnx does not link cuBLASLt: a program that runs on the CPU must start
 * on a machine that has no CUDA libraries. cublaslt_library.c defines a
 * forwarding function for each cuBLASLt function cnx calls, under its own
 * name (cublasLtMatmul is cnx_cublasLtMatmul, and so on, by the macros
 * below, which every file of host/cuda/ that calls cuBLASLt includes): a
 * name of cuBLASLt's own would satisfy an application's calls to cuBLASLt
 * wherever libcnx is linked statically. Each forwards to the library's
 * function once cnx_cublaslt_load has succeeded, and returns
 * CUBLAS_STATUS_NOT_INITIALIZED before. */
#ifndef CNX_HOST_CUDA_CUBLASLT_LIBRARY_H
#define CNX_HOST_CUDA_CUBLASLT_LIBRARY_H

#include <cublasLt.h>

#include "cnx.h"

/* Every cuBLASLt function cnx calls. One added to host/cuda/ goes here and
 * gets a forwarding definition in cublaslt_library.c. */
#define CNX_CUBLASLT_FUNCTIONS(X)                                              \
    X(cublasLtCreate)                                                          \
    X(cublasLtDestroy)                                                         \
    X(cublasLtGetStatusString)                                                 \
    X(cublasLtMatmulPreferenceCreate)                                          \
    X(cublasLtMatmulPreferenceDestroy)                                         \
    X(cublasLtMatmulPreferenceSetAttribute)                                    \
    X(cublasLtMatmulDescCreate)                                                \
    X(cublasLtMatmulDescDestroy)                                               \
    X(cublasLtMatmulDescSetAttribute)                                          \
    X(cublasLtMatrixLayoutCreate)                                              \
    X(cublasLtMatrixLayoutDestroy)                                             \
    X(cublasLtMatmulAlgoGetHeuristic)                                          \
    X(cublasLtMatmul)

/* The forwarding functions, declared with cuBLASLt's own types (so their
 * definitions must match <cublasLt.h>), and the names mapped to them. The
 * emulation (tests/gpu/emulate_cuda.h) maps the names to its own instead. */
#ifndef CNX_CUDA_EMULATION
#define CNX_CUBLASLT_DECLARE(name)                                             \
    extern __attribute__((visibility("hidden"))) __typeof__(name) cnx_##name;
CNX_CUBLASLT_FUNCTIONS(CNX_CUBLASLT_DECLARE)
#undef CNX_CUBLASLT_DECLARE
#define cublasLtCreate cnx_cublasLtCreate
#define cublasLtDestroy cnx_cublasLtDestroy
#define cublasLtGetStatusString cnx_cublasLtGetStatusString
#define cublasLtMatmulPreferenceCreate cnx_cublasLtMatmulPreferenceCreate
#define cublasLtMatmulPreferenceDestroy cnx_cublasLtMatmulPreferenceDestroy
#define cublasLtMatmulPreferenceSetAttribute cnx_cublasLtMatmulPreferenceSetAttribute
#define cublasLtMatmulDescCreate cnx_cublasLtMatmulDescCreate
#define cublasLtMatmulDescDestroy cnx_cublasLtMatmulDescDestroy
#define cublasLtMatmulDescSetAttribute cnx_cublasLtMatmulDescSetAttribute
#define cublasLtMatrixLayoutCreate cnx_cublasLtMatrixLayoutCreate
#define cublasLtMatrixLayoutDestroy cnx_cublasLtMatrixLayoutDestroy
#define cublasLtMatmulAlgoGetHeuristic cnx_cublasLtMatmulAlgoGetHeuristic
#define cublasLtMatmul cnx_cublasLtMatmul
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define CNX_CUBLASLT_STRINGIFY(x) #x
#define CNX_CUBLASLT_SONAME_OF(major) "libcublasLt.so." CNX_CUBLASLT_STRINGIFY(major)
/* The cuBLASLt this build's headers belong to, e.g. "libcublasLt.so.13". */
#define CNX_CUBLASLT_SONAME CNX_CUBLASLT_SONAME_OF(CUBLAS_VER_MAJOR)

/* Loads CNX_CUBLASLT_SONAME (or the file $CNX_CUBLASLT_LIBRARY names) and
 * resolves every function cnx uses, once per process; every thread may call
 * it. CNX_ERROR_NO_DEVICE, naming the library and the cause, when that
 * fails (then and on every later call). */
cnx_status cnx_cublaslt_load(void);

#ifdef __cplusplus
}
#endif

#endif
