/* Internal: cuBLASLt, loaded when the first CUDA engine is made.
 *
 * libcnx does not link cuBLASLt: a program that runs on the CPU must start
 * on a machine that has no CUDA libraries. cublaslt_library.c defines the
 * cuBLASLt functions cnx calls (hidden: they never stand in for an
 * application's own cuBLASLt); each forwards to the library's function once
 * cnx_cublaslt_load has succeeded, and returns CUBLAS_STATUS_NOT_INITIALIZED
 * before. */
#ifndef CNX_HOST_CUDA_CUBLASLT_LIBRARY_H
#define CNX_HOST_CUDA_CUBLASLT_LIBRARY_H

#include <cublas_api.h>

#include "cnx.h"

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
