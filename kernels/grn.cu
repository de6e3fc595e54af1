// Global Response Normalization (ConvNeXt V2): per-image channel norms,
// reduced in a fixed order, then an elementwise update vectorized by 4.
#include "grn.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kSplitPixels = 64; // pixels per partial sum
constexpr int kRows = kThreads / 32;
constexpr int kColumns = 32 * 4; // channels per partial-sum block

int splits_for(int pixels) {
    return (pixels + kSplitPixels - 1) / kSplitPixels;
}

// partials[n, split, c] = sum of x[n, p, c]^2 over the split's pixels.
template <typename T>
__global__ void __launch_bounds__(kThreads)
grn_partial_kernel(float *partials, const T *x, int pixels, int C) {
    __shared__ float rows[kRows][kColumns];
    const int lane = threadIdx.x & 31, row = threadIdx.x >> 5;
    const int c = (blockIdx.x * 32 + lane) * 4;
    const int split = blockIdx.y, splits = gridDim.y;
    const size_t n = blockIdx.z;
    const int begin = split * kSplitPixels;
    const int end = begin + kSplitPixels < pixels ? begin + kSplitPixels : pixels;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (c < C) {
        const T *image = x + n * (size_t)pixels * (size_t)C;
        for (int p = begin + row; p < end; p += kRows) {
            float v[4];
            cnx::vec4<T>::load(image + (size_t)p * C + c, v);
#pragma unroll
            for (int j = 0; j < 4; j++)
                acc[j] += v[j] * v[j];
        }
    }
#pragma unroll
    for (int j = 0; j < 4; j++)
        rows[row][lane * 4 + j] = acc[j];
    __syncthreads();
    if (row == 0 && c < C) {
        float total[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int r = 0; r < kRows; r++) // in row order: the same sum on every run
#pragma unroll
            for (int j = 0; j < 4; j++)
                total[j] += rows[r][lane * 4 + j];
        cnx::vec4<float>::store(partials + (n * (size_t)splits + (size_t)split) * (size_t)C + c,
                                total);
    }
}

// nx[n, c] = Gx / (mean over c of Gx + eps), Gx = sqrt(the partials' sum in split order).
__global__ void __launch_bounds__(kThreads)
grn_finalize_kernel(float *nx, const float *partials, int splits, int C) {
    __shared__ float scratch[33];
    const size_t n = blockIdx.x;
    const float *image = partials + n * (size_t)splits * (size_t)C;
    float *out = nx + n * (size_t)C;
    float local = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float s = 0.0f;
        for (int k = 0; k < splits; k++)
            s += image[(size_t)k * C + c];
        const float gx = sqrtf(s);
        out[c] = gx;
        local += gx;
    }
    const float mean = cnx::block_sum(local, scratch) / (float)C;
    const float denominator = mean + CNX_KERNEL_GRN_EPS;
    for (int c = threadIdx.x; c < C; c += blockDim.x) // each thread rereads what it wrote
        out[c] = out[c] / denominator;
}

// x = x + (bias + weight * (x * nx)), torch's order of operations.
template <typename T>
__global__ void __launch_bounds__(kThreads)
grn_apply_kernel(T *x, const float *nx, const float *weight, const float *bias, size_t vecs,
                 int C, size_t image_elements) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < vecs; i += stride) {
        const size_t e = i * 4;
        const size_t n = e / image_elements;
        const int c = (int)(e % (size_t)C);
        float v[4], s[4], g[4], b[4];
        cnx::vec4<T>::load(x + e, v);
        cnx::vec4<float>::load(nx + n * (size_t)C + c, s);
        cnx::vec4<float>::load(weight + c, g);
        cnx::vec4<float>::load(bias + c, b);
#pragma unroll
        for (int j = 0; j < 4; j++)
            v[j] = v[j] + (b[j] + g[j] * (v[j] * s[j]));
        cnx::vec4<T>::store(x + e, v);
    }
}

template <typename T>
cudaError_t launch(void *x, float *scratch, const float *weight, const float *bias, int N,
                   int pixels, int C, cudaStream_t stream) {
    if (((uintptr_t)x % (4 * sizeof(T))) != 0)
        return cudaErrorMisalignedAddress;
    const int splits = splits_for(pixels);
    float *partials = scratch;
    float *nx = scratch + (size_t)N * splits * C;
    const auto partial = grn_partial_kernel<T>;
    const dim3 grid((unsigned)((C + kColumns - 1) / kColumns), (unsigned)splits, (unsigned)N);
    CNX_KERNEL_LAUNCH(partial, grid, kThreads, 0, stream, partials, static_cast<const T *>(x),
                      pixels, C);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
    CNX_KERNEL_LAUNCH(grn_finalize_kernel, (unsigned)N, kThreads, 0, stream, nx,
                      static_cast<const float *>(partials), splits, C);
    e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
    const size_t image_elements = (size_t)pixels * C;
    const size_t vecs = (size_t)N * image_elements / 4;
    const auto apply = grn_apply_kernel<T>;
    CNX_KERNEL_LAUNCH(apply, cnx::grid_for(vecs, kThreads), kThreads, 0, stream,
                      static_cast<T *>(x), static_cast<const float *>(nx), weight, bias, vecs, C,
                      image_elements);
    return cudaGetLastError();
}

} // namespace

extern "C" size_t cnx_grn_scratch_floats(int batch, int pixels, int channels) {
    if (batch <= 0 || pixels <= 0 || channels <= 0)
        return 0;
    return (size_t)batch * ((size_t)splits_for(pixels) + 1) * (size_t)channels;
}

extern "C" cudaError_t cnx_grn_forward(void *x, float *scratch, const float *weight,
                                       const float *bias, int batch, int pixels, int channels,
                                       cnx_act_dtype dtype, cudaStream_t stream) {
    if (!x || !scratch || !weight || !bias || batch < 0 || pixels < 1 || channels <= 0 ||
        channels % 4 != 0 || batch > 65535 || splits_for(pixels) > 65535)
        return cudaErrorInvalidValue;
    if (((uintptr_t)scratch % 16) != 0 || ((uintptr_t)weight % 16) != 0 ||
        ((uintptr_t)bias % 16) != 0)
        return cudaErrorMisalignedAddress;
    if (batch == 0)
        return cudaSuccess;
    switch (dtype) {
    case CNX_ACT_F32: return launch<float>(x, scratch, weight, bias, batch, pixels, channels, stream);
    case CNX_ACT_F16: return launch<__half>(x, scratch, weight, bias, batch, pixels, channels, stream);
    case CNX_ACT_BF16:
        return launch<__nv_bfloat16>(x, scratch, weight, bias, batch, pixels, channels, stream);
    }
    return cudaErrorInvalidValue;
}
