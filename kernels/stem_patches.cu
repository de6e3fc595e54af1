// NCHW fp32 input -> 4x4 patch rows for the stem GEMM.
#include "stem_patches.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kPatch = 4 * 4 * 3;

template <typename T>
__global__ void __launch_bounds__(kThreads)
stem_patches_kernel(T *out, const float *in, int H, int W, int oh, int ow, size_t count) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
        const int col = (int)(i % kPatch);
        const size_t row = i / kPatch;
        const int ox = (int)(row % (size_t)ow);
        const size_t t = row / (size_t)ow;
        const int oy = (int)(t % (size_t)oh);
        const size_t n = t / (size_t)oh;
        const int ky = col / 12, kx = (col / 3) % 4, c = col % 3;
        const size_t src = ((n * 3 + (size_t)c) * (size_t)H + (size_t)(oy * 4 + ky)) * (size_t)W +
                           (size_t)(ox * 4 + kx);
        out[i] = cnx::from_float<T>(in[src]);
    }
}

template <typename T>
cudaError_t launch(void *out, const float *in, int N, int H, int W, cudaStream_t stream) {
    const int oh = H / 4, ow = W / 4;
    const size_t count = (size_t)N * (size_t)oh * (size_t)ow * kPatch;
    if (count == 0)
        return cudaSuccess;
    const auto kernel = stem_patches_kernel<T>;
    CNX_KERNEL_LAUNCH(kernel, cnx::grid_for(count, kThreads), kThreads, 0, stream,
                      static_cast<T *>(out), in, H, W, oh, ow, count);
    return cudaGetLastError();
}

} // namespace

extern "C" cudaError_t stem_patches_forward(void *out, const float *in, int batch, int height,
                                            int width, cnx_act_dtype dtype, cudaStream_t stream) {
    if (!out || !in || batch < 0 || height < 4 || width < 4)
        return cudaErrorInvalidValue;
    switch (dtype) {
    case CNX_ACT_F32: return launch<float>(out, in, batch, height, width, stream);
    case CNX_ACT_F16: return launch<__half>(out, in, batch, height, width, stream);
    case CNX_ACT_BF16: return launch<__nv_bfloat16>(out, in, batch, height, width, stream);
    }
    return cudaErrorInvalidValue;
}
