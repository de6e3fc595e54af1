// Bias + exact GELU on the hidden activations, vectorized by 4.
#include "bias_gelu.cuh"

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float gelu_erf(float u) {
    return 0.5f * u * (1.0f + erff(u * 0.70710678118654752f));
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
bias_gelu_kernel(T *x, const float *bias, size_t vecs, int cols) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < vecs; i += stride) {
        const size_t e = i * 4;
        float v[4];
        cnx::vec4<T>::load(x + e, v);
        if (bias) {
            const float4 b = *reinterpret_cast<const float4 *>(bias + (int)(e % (size_t)cols));
            v[0] += b.x; v[1] += b.y; v[2] += b.z; v[3] += b.w;
        }
#pragma unroll
        for (int j = 0; j < 4; j++)
            v[j] = gelu_erf(v[j]);
        cnx::vec4<T>::store(x + e, v);
    }
}

template <typename T>
cudaError_t launch(void *x, const float *bias, size_t rows, int cols, cudaStream_t stream) {
    if (((uintptr_t)x % (4 * sizeof(T))) != 0)
        return cudaErrorMisalignedAddress;
    const size_t vecs = rows * (size_t)cols / 4;
    const auto kernel = bias_gelu_kernel<T>;
    CNX_KERNEL_LAUNCH(kernel, cnx::grid_for(vecs, kThreads), kThreads, 0, stream,
                      static_cast<T *>(x), bias, vecs, cols);
    return cudaGetLastError();
}

} // namespace

extern "C" cudaError_t bias_gelu_forward(void *x, const float *bias, size_t rows, int cols,
                                         cnx_act_dtype dtype, cudaStream_t stream) {
    if (!x || cols <= 0 || cols % 4 != 0)
        return cudaErrorInvalidValue;
    if (bias && ((uintptr_t)bias % 16) != 0)
        return cudaErrorMisalignedAddress;
    if (rows == 0)
        return cudaSuccess;
    switch (dtype) {
    case CNX_ACT_F32: return launch<float>(x, bias, rows, cols, stream);
    case CNX_ACT_F16: return launch<__half>(x, bias, rows, cols, stream);
    case CNX_ACT_BF16: return launch<__nv_bfloat16>(x, bias, rows, cols, stream);
    }
    return cudaErrorInvalidValue;
}
