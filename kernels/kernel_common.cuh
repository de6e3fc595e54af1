/* What every forward kernel shares: the activation dtype the C launchers take,
 * and (for nvcc only) conversions, vector loads and warp/block reductions.
 *
 * Launchers are C functions, llm.c style: op_forward(out, in..., shape...,
 * dtype, stream). They check their arguments, launch, and return
 * cudaGetLastError(); the caller (host/cuda/cuda_backend.c) wraps each call in a
 * macro that records file:line. Kernels are templated on the activation type
 * T (float, __half, __nv_bfloat16); statistics and accumulation are fp32. */
#ifndef CNX_KERNELS_KERNEL_COMMON_CUH
#define CNX_KERNELS_KERNEL_COMMON_CUH

#include <cuda_runtime.h>

/* The type of the activations the GEMMs read (normalized, hidden, patches,
 * pooled). The residual stream is always fp32. */
typedef enum cnx_act_dtype {
    CNX_ACT_F32 = 0,
    CNX_ACT_F16 = 1,
    CNX_ACT_BF16 = 2
} cnx_act_dtype;

/* ConvNeXt's LayerNorm epsilon (as CNX_LAYERNORM_EPS in host/cpu/cpu_ops.h). */
#define CNX_KERNEL_LN_EPS 1e-6f

/* Kernel launches and dynamic shared memory go through these, so that
 * tests/gpu/emulate_forward.cpp can run the device code on the CPU. */
#ifndef CNX_KERNEL_LAUNCH
#define CNX_KERNEL_LAUNCH(kernel, grid, block, shared, stream, ...) \
    kernel<<<(grid), (block), (shared), (stream)>>>(__VA_ARGS__)
#endif
#ifndef CNX_DYNAMIC_SHARED
#define CNX_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

#if defined(__CUDACC__) || defined(CNX_KERNEL_EMULATION)
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace cnx {

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

/* Four consecutive elements, p aligned to 4 * sizeof(T). */
template <typename T> struct vec4;
template <> struct vec4<float> {
    static __device__ __forceinline__ void load(const float *p, float v[4]) {
        const float4 q = *reinterpret_cast<const float4 *>(p);
        v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
    }
    static __device__ __forceinline__ void store(float *p, const float v[4]) {
        *reinterpret_cast<float4 *>(p) = make_float4(v[0], v[1], v[2], v[3]);
    }
};
/* 16-bit types: one 8-byte access, the halves unpacked in registers. */
template <> struct vec4<__half> {
    static __device__ __forceinline__ void load(const __half *p, float v[4]) {
        const uint2 q = *reinterpret_cast<const uint2 *>(p);
        v[0] = __half2float(__ushort_as_half((unsigned short)(q.x & 0xffffu)));
        v[1] = __half2float(__ushort_as_half((unsigned short)(q.x >> 16)));
        v[2] = __half2float(__ushort_as_half((unsigned short)(q.y & 0xffffu)));
        v[3] = __half2float(__ushort_as_half((unsigned short)(q.y >> 16)));
    }
    static __device__ __forceinline__ void store(__half *p, const float v[4]) {
        uint2 q;
        q.x = (unsigned)__half_as_ushort(__float2half_rn(v[0])) |
              ((unsigned)__half_as_ushort(__float2half_rn(v[1])) << 16);
        q.y = (unsigned)__half_as_ushort(__float2half_rn(v[2])) |
              ((unsigned)__half_as_ushort(__float2half_rn(v[3])) << 16);
        *reinterpret_cast<uint2 *>(p) = q;
    }
};
template <> struct vec4<__nv_bfloat16> {
    static __device__ __forceinline__ void load(const __nv_bfloat16 *p, float v[4]) {
        const uint2 q = *reinterpret_cast<const uint2 *>(p);
        v[0] = __bfloat162float(__ushort_as_bfloat16((unsigned short)(q.x & 0xffffu)));
        v[1] = __bfloat162float(__ushort_as_bfloat16((unsigned short)(q.x >> 16)));
        v[2] = __bfloat162float(__ushort_as_bfloat16((unsigned short)(q.y & 0xffffu)));
        v[3] = __bfloat162float(__ushort_as_bfloat16((unsigned short)(q.y >> 16)));
    }
    static __device__ __forceinline__ void store(__nv_bfloat16 *p, const float v[4]) {
        uint2 q;
        q.x = (unsigned)__bfloat16_as_ushort(__float2bfloat16_rn(v[0])) |
              ((unsigned)__bfloat16_as_ushort(__float2bfloat16_rn(v[1])) << 16);
        q.y = (unsigned)__bfloat16_as_ushort(__float2bfloat16_rn(v[2])) |
              ((unsigned)__bfloat16_as_ushort(__float2bfloat16_rn(v[3])) << 16);
        *reinterpret_cast<uint2 *>(p) = q;
    }
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

/* LayerNorm statistics of one row of C floats, computed by a whole warp: two
 * passes in fp32 (the mean first keeps the variance accurate). */
__device__ __forceinline__ void warp_row_stats(const float *row, int C, int lane, float *mean,
                                               float *inv_std) {
    float sum = 0.0f;
    for (int c = lane; c < C; c += 32)
        sum += row[c];
    const float m = warp_sum(sum) / (float)C;
    float squares = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float d = row[c] - m;
        squares += d * d;
    }
    *mean = m;
    *inv_std = 1.0f / sqrtf(warp_sum(squares) / (float)C + CNX_KERNEL_LN_EPS);
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

/* Sum over the block; every thread gets the result. scratch holds 33
 * values; blockDim.x is a multiple of 32 (at most 1024). The order of the
 * additions is fixed, so the result is the same on every run. */
template <typename S>
__device__ __forceinline__ S block_sum(S v, S *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        S t = lane < warps ? scratch[lane] : S(0);
        t = warp_sum(t);
        if (lane == 0)
            scratch[32] = t;
    }
    __syncthreads();
    const S result = scratch[32];
    __syncthreads(); /* scratch may be reused by the next call */
    return result;
}

__device__ __forceinline__ float block_max(float v, float *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    v = warp_max(v);
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float t = lane < warps ? scratch[lane] : -INFINITY;
        t = warp_max(t);
        if (lane == 0)
            scratch[32] = t;
    }
    __syncthreads();
    const float result = scratch[32];
    __syncthreads();
    return result;
}

/* Grid size for a grid-stride loop over `count` items, `threads` per block. */
static inline unsigned grid_for(size_t count, int threads) {
    size_t blocks = (count + (size_t)threads - 1) / (size_t)threads;
    const size_t cap = (size_t)1 << 20; /* the loops stride past this */
    if (blocks > cap)
        blocks = cap;
    return blocks ? (unsigned)blocks : 1u;
}

} // namespace cnx

#endif /* __CUDACC__ || CNX_KERNEL_EMULATION */

#endif
