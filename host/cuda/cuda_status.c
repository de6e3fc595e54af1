/* CUDA and cuBLASLt errors as cnx statuses (see cuda_status.h). */
#ifdef CNX_HAVE_CUDA

#include "cuda_status.h"

#include <string.h>

#include "cublaslt_library.h"

#include "error.h"

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

cnx_status cuda_status_failed(cudaError_t e, const char *call, const char *file, int line) {
    cudaGetLastError();
    const cnx_status status =
        e == cudaErrorMemoryAllocation ? CNX_ERROR_OUT_OF_MEMORY : CNX_ERROR_DEVICE;
    return cnx_fail(status, "%s:%d: %s: %s (%s)", base_name(file), line, call,
                    cudaGetErrorString(e), cudaGetErrorName(e));
}

cnx_status cuda_status_cublas_failed(cublasStatus_t s, const char *call, const char *file, int line) {
    const cnx_status status =
        s == CUBLAS_STATUS_ALLOC_FAILED ? CNX_ERROR_OUT_OF_MEMORY : CNX_ERROR_DEVICE;
    return cnx_fail(status, "%s:%d: %s: %s", base_name(file), line, call,
                    cublasLtGetStatusString(s));
}

#else
typedef int cnx_cuda_status_unused;
#endif
