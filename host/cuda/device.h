/* Internal: finding a usable CUDA device. */
#ifndef CNX_HOST_CUDA_DEVICE_H
#define CNX_HOST_CUDA_DEVICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when CUDA device `ordinal` can be used; its name goes to name. Otherwise
 * 0, with the reason in why ("no usable CUDA device", "built without CUDA",
 * ...). Having no GPU is an ordinary answer, never an error. */
int cnx_cuda_usable(int ordinal, char *name, size_t name_size, char *why, size_t why_size);

#ifdef __cplusplus
}
#endif

#endif
