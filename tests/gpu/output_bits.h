/* Test helper for the preprocessing kernel's outputs, shared by the emulated
 * test (emulate_preprocess.cpp) and the GPU one (test_preprocess_gpu.cu):
 * element sizes and the exact bits an output of each dtype must hold. */
#ifndef CNX_TESTS_GPU_OUTPUT_BITS_H
#define CNX_TESTS_GPU_OUTPUT_BITS_H

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

#include "kernel_common.cuh"

static inline size_t dtype_size(cnx_act_dtype dtype) { return dtype == CNX_ACT_F32 ? 4 : 2; }

/* The bits an output of `dtype` must hold for the CPU's fp32 value v: the
 * value itself, or it rounded to nearest even. */
static inline uint32_t expected_bits(float v, cnx_act_dtype dtype) {
    uint32_t u = 0;
    if (dtype == CNX_ACT_F32) {
        memcpy(&u, &v, 4);
    } else if (dtype == CNX_ACT_F16) {
        const __half h = __float2half_rn(v);
        memcpy(&u, &h, 2);
    } else {
        const __nv_bfloat16 h = __float2bfloat16_rn(v);
        memcpy(&u, &h, 2);
    }
    return u;
}

#endif
