// Global average pool + LayerNorm, one block per image.
#include "avgpool_layernorm.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kScratch = 33; // cnx::block_sum's
// Without cudaFuncSetAttribute, static plus dynamic shared memory must fit 48 KiB.
static_assert((CNX_AVGPOOL_LAYERNORM_MAX_CHANNELS + kScratch) * sizeof(float) <= 48 * 1024,
              "the documented channel limit must fit the shared memory of a block");

template <typename T>
__global__ void __launch_bounds__(kThreads)
avgpool_ln_kernel(T *out, const float *in, int pixels, int C, float eps) {
    CNX_DYNAMIC_SHARED(float, means); // [C]
    __shared__ float scratch[kScratch];
    const size_t n = blockIdx.x;
    const float *image = in + n * (size_t)pixels * (size_t)C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float s = 0.0f;
        for (int p = 0; p < pixels; p++)
            s += image[(size_t)p * C + c]; // consecutive threads: consecutive channels
        means[c] = s / (float)pixels;
    }
    __syncthreads();
    float sum = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        sum += means[c];
    const float mean = cnx::block_sum(sum, scratch) / (float)C;
    float squares = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        const float d = means[c] - mean;
        squares += d * d;
    }
    const float inv_std = 1.0f / sqrtf(cnx::block_sum(squares, scratch) / (float)C + eps);
    T *dst = out + n * (size_t)C;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        dst[c] = cnx::from_float<T>((means[c] - mean) * inv_std);
}

template <typename T>
cudaError_t launch(void *out, const float *in, int N, int pixels, int C, float eps,
                   cudaStream_t stream) {
    const auto kernel = avgpool_ln_kernel<T>;
    CNX_KERNEL_LAUNCH(kernel, (unsigned)N, kThreads, (size_t)C * sizeof(float), stream,
                      static_cast<T *>(out), in, pixels, C, eps);
    return cudaGetLastError();
}

} // namespace

extern "C" cudaError_t avgpool_layernorm_forward(void *out, const float *in, int batch,
                                                 int pixels, int channels, float eps,
                                                 cnx_act_dtype dtype, cudaStream_t stream) {
    if (!out || !in || batch < 0 || pixels < 1 || channels < 1 || !(eps >= 0.0f) ||
        channels > CNX_AVGPOOL_LAYERNORM_MAX_CHANNELS)
        return cudaErrorInvalidValue;
    if (batch == 0)
        return cudaSuccess;
    switch (dtype) {
    case CNX_ACT_F32: return launch<float>(out, in, batch, pixels, channels, eps, stream);
    case CNX_ACT_F16: return launch<__half>(out, in, batch, pixels, channels, eps, stream);
    case CNX_ACT_BF16: return launch<__nv_bfloat16>(out, in, batch, pixels, channels, eps, stream);
    }
    return cudaErrorInvalidValue;
}
