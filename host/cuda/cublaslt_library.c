/* cuBLASLt through dlopen (see cublaslt_library.h). The forwarding
 * functions below are cnx_cublasLt* (the header maps the names), declared
 * there with <cublasLt.h>'s types: a definition that differs does not
 * compile. */
#define _GNU_SOURCE /* secure_getenv */
#ifdef CNX_HAVE_CUDA

#include "cublaslt_library.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define POINTER_TO(name) __typeof__(name) *p_##name;
/* The library's functions; all NULL until a load succeeds. Written once,
 * inside pthread_once, before any caller of cnx_cublaslt_load returns. */
static struct {
    CNX_CUBLASLT_FUNCTIONS(POINTER_TO)
} lt;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[512]; /* why the load failed; empty once loaded */

static void load(void) {
    const char *path = secure_getenv("CNX_CUBLASLT_LIBRARY"); /* it picks code to run */
    if (!path || !*path)
        path = CNX_CUBLASLT_SONAME;
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const char *failed = NULL;
#define RESOLVE(name)                                                          \
    if (library && !failed && !(*(void **)&lt.p_##name = dlsym(library, #name))) \
        failed = #name;
    CNX_CUBLASLT_FUNCTIONS(RESOLVE)
#undef RESOLVE
    if (library && !failed)
        return;
    const char *why = dlerror(); /* names the file, and the function where one is missing */
    snprintf(load_error, sizeof load_error, "cuBLASLt: %s", why ? why : failed ? failed : path);
    memset(&lt, 0, sizeof lt);
    if (library)
        dlclose(library);
}

cnx_status cnx_cublaslt_load(void) {
    pthread_once(&load_once, load);
    if (load_error[0])
        return cnx_fail(CNX_ERROR_NO_DEVICE, "%s", load_error);
    return CNX_OK;
}

/* ------------------------------------------------- forwarding definitions */

#define HIDDEN __attribute__((visibility("hidden")))
#define FORWARD(name, ...)                                                     \
    return lt.p_##name ? lt.p_##name(__VA_ARGS__) : CUBLAS_STATUS_NOT_INITIALIZED

HIDDEN const char *CUBLASWINAPI cublasLtGetStatusString(cublasStatus_t status) {
    return lt.p_cublasLtGetStatusString ? lt.p_cublasLtGetStatusString(status)
                                        : "cuBLASLt is not loaded";
}

HIDDEN cublasStatus_t CUBLASWINAPI cublasLtCreate(cublasLtHandle_t *handle) {
    FORWARD(cublasLtCreate, handle);
}

HIDDEN cublasStatus_t CUBLASWINAPI cublasLtDestroy(cublasLtHandle_t handle) {
    FORWARD(cublasLtDestroy, handle);
}

HIDDEN cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
    FORWARD(cublasLtMatmulPreferenceCreate, pref);
}

HIDDEN cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    FORWARD(cublasLtMatmulPreferenceDestroy, pref);
}

HIDDEN cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceSetAttribute(
    cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
    size_t size) {
    FORWARD(cublasLtMatmulPreferenceSetAttribute, pref, attr, buf, size);
}

HIDDEN cublasStatus_t CUBLASWINAPI cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc,
                                                            cublasComputeType_t compute,
                                                            cudaDataType_t scale) {
    FORWARD(cublasLtMatmulDescCreate, desc, compute, scale);
}

HIDDEN cublasStatus_t CUBLASWINAPI cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
    FORWARD(cublasLtMatmulDescDestroy, desc);
}

HIDDEN cublasStatus_t CUBLASWINAPI cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                                                  cublasLtMatmulDescAttributes_t attr,
                                                                  const void *buf, size_t size) {
    FORWARD(cublasLtMatmulDescSetAttribute, desc, attr, buf, size);
}

HIDDEN cublasStatus_t CUBLASWINAPI cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout,
                                                              cudaDataType type, uint64_t rows,
                                                              uint64_t cols, int64_t ld) {
    FORWARD(cublasLtMatrixLayoutCreate, layout, type, rows, cols, ld);
}

HIDDEN cublasStatus_t CUBLASWINAPI cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
    FORWARD(cublasLtMatrixLayoutDestroy, layout);
}

HIDDEN cublasStatus_t CUBLASWINAPI cublasLtMatmulAlgoGetHeuristic(
    cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
    cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
    cublasLtMatmulPreference_t pref, int requested, cublasLtMatmulHeuristicResult_t results[],
    int *returned) {
    FORWARD(cublasLtMatmulAlgoGetHeuristic, handle, desc, a, b, c, d, pref, requested, results,
            returned);
}

HIDDEN cublasStatus_t CUBLASWINAPI cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                                  const void *alpha, const void *a,
                                                  cublasLtMatrixLayout_t a_layout, const void *b,
                                                  cublasLtMatrixLayout_t b_layout, const void *beta,
                                                  const void *c, cublasLtMatrixLayout_t c_layout,
                                                  void *d, cublasLtMatrixLayout_t d_layout,
                                                  const cublasLtMatmulAlgo_t *algo, void *workspace,
                                                  size_t workspace_bytes, cudaStream_t stream) {
    FORWARD(cublasLtMatmul, handle, desc, alpha, a, a_layout, b, b_layout, beta, c, c_layout, d,
            d_layout, algo, workspace, workspace_bytes, stream);
}

#else
/* Built without CUDA: nothing to load. */
typedef int cnx_cublaslt_library_unused;
#endif
