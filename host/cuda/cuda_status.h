/* Internal: CUDA and cuBLASLt errors as cnx statuses, naming the call and
 * where it was made. CUDA builds only. */
#ifndef CNX_HOST_CUDA_STATUS_H
#define CNX_HOST_CUDA_STATUS_H

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "cnx.h"

/* CNX_ERROR_OUT_OF_MEMORY for memory, else CNX_ERROR_DEVICE, with "file:line:
 * call: message (name)". Clears the error first: the next launcher's check
 * must not see it again. */
cnx_status cuda_status_failed(cudaError_t e, const char *call, const char *file, int line);

/* The same for a cuBLASLt status. */
cnx_status cuda_status_cublas_failed(cublasStatus_t s, const char *call, const char *file, int line);

/* Each CUDA or cuBLASLt call, and each kernel launcher (which returns
 * cudaGetLastError() after its launch), goes through one of these. */
#define CUDA_TRY(call)                                                         \
    do {                                                                       \
        const cudaError_t e_ = (call);                                         \
        if (e_ != cudaSuccess)                                                 \
            return cuda_status_failed(e_, #call, __FILE__, __LINE__);          \
    } while (0)

#define CUBLAS_TRY(call)                                                       \
    do {                                                                       \
        const cublasStatus_t s_ = (call);                                      \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                       \
            return cuda_status_cublas_failed(s_, #call, __FILE__, __LINE__);   \
    } while (0)

#endif
