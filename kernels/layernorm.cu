// LayerNorm over NHWC rows, and the downsampling LayerNorm + 2x2 gather.
#include "layernorm.cuh"

namespace {

constexpr int kThreads = 256; // 8 warps, one row each

// One warp per row. Every lane reads and writes only its own channels
// (c = lane, lane + 32, ...), and all reads of a channel come before its
// write, so out may alias in.
template <typename T, bool AFFINE, bool PATCHES>
__global__ void __launch_bounds__(kThreads)
layernorm_kernel(T *out, const float *in, const float *gain, const float *bias, size_t rows,
                 int C, int height, int width) {
    const size_t row = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (row >= rows)
        return; // the whole warp: row is per warp
    size_t out_offset = row * (size_t)C;
    if (PATCHES) {
        const int x = (int)(row % (size_t)width);
        const size_t t = row / (size_t)width;
        const int y = (int)(t % (size_t)height);
        const size_t b = t / (size_t)height;
        const int oh = height / 2, ow = width / 2;
        if (y >= 2 * oh || x >= 2 * ow)
            return; // an odd last row or column: the stride-2 conv never reads it
        const size_t out_row = (b * (size_t)oh + (size_t)(y >> 1)) * (size_t)ow + (size_t)(x >> 1);
        out_offset = (out_row * 4 + (size_t)((y & 1) * 2 + (x & 1))) * (size_t)C;
    }
    const float *src = in + row * (size_t)C;
    float mean, inv_std;
    cnx::warp_row_stats(src, C, lane, &mean, &inv_std);
    T *dst = out + out_offset;
    for (int c = lane; c < C; c += 32) {
        float v = (src[c] - mean) * inv_std;
        if (AFFINE)
            v = v * gain[c] + bias[c];
        dst[c] = cnx::from_float<T>(v);
    }
}

template <typename T>
cudaError_t launch(void *out, const float *in, const float *gain, const float *bias, size_t rows,
                   int C, int height, int width, bool patches, cudaStream_t stream) {
    const size_t blocks = (rows + kThreads / 32 - 1) / (kThreads / 32);
    if (blocks > 0x7fffffffu)
        return cudaErrorInvalidValue;
    T *o = static_cast<T *>(out);
    const float *no_affine = nullptr;
    if (patches) {
        const auto kernel = layernorm_kernel<T, false, true>;
        CNX_KERNEL_LAUNCH(kernel, (unsigned)blocks, kThreads, 0, stream, o, in, no_affine,
                          no_affine, rows, C, height, width);
    } else if (gain) {
        const auto kernel = layernorm_kernel<T, true, false>;
        CNX_KERNEL_LAUNCH(kernel, (unsigned)blocks, kThreads, 0, stream, o, in, gain, bias, rows,
                          C, 1, 1);
    } else {
        const auto kernel = layernorm_kernel<T, false, false>;
        CNX_KERNEL_LAUNCH(kernel, (unsigned)blocks, kThreads, 0, stream, o, in, no_affine,
                          no_affine, rows, C, 1, 1);
    }
    return cudaGetLastError();
}

cudaError_t dispatch(void *out, const float *in, const float *gain, const float *bias,
                     size_t rows, int C, int height, int width, bool patches,
                     cnx_act_dtype dtype, cudaStream_t stream) {
    if (!out || !in || C <= 0 || (!gain) != (!bias))
        return cudaErrorInvalidValue;
    if (rows == 0)
        return cudaSuccess;
    switch (dtype) {
    case CNX_ACT_F32: return launch<float>(out, in, gain, bias, rows, C, height, width, patches, stream);
    case CNX_ACT_F16: return launch<__half>(out, in, gain, bias, rows, C, height, width, patches, stream);
    case CNX_ACT_BF16:
        return launch<__nv_bfloat16>(out, in, gain, bias, rows, C, height, width, patches, stream);
    }
    return cudaErrorInvalidValue;
}

} // namespace

extern "C" cudaError_t layernorm_forward(void *out, const float *in, const float *gain,
                                         const float *bias, size_t rows, int channels,
                                         cnx_act_dtype dtype, cudaStream_t stream) {
    return dispatch(out, in, gain, bias, rows, channels, 1, 1, false, dtype, stream);
}

extern "C" cudaError_t layernorm_patches_forward(void *out, const float *in, int batch,
                                                 int height, int width, int channels,
                                                 cnx_act_dtype dtype, cudaStream_t stream) {
    if (batch < 0 || height < 2 || width < 2)
        return cudaErrorInvalidValue;
    const size_t rows = (size_t)batch * (size_t)height * (size_t)width;
    return dispatch(out, in, nullptr, nullptr, rows, channels, height, width, true, dtype, stream);
}
