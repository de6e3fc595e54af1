// Depthwise 7x7 conv + LayerNorm, fused: the conv outputs of a pixel never
// leave the multiprocessor before they are normalized.
#include "dwconv_layernorm.cuh"

namespace {

constexpr int kMaxWarps = 4;
constexpr size_t kSharedLimit = 48 * 1024; // no opt-in attribute needed below this

// A warp computes P consecutive pixels (x0 .. x0+P-1) of row y of image n.
// Lane l handles channels l, l+32, ...: loads of one input pixel are 128-byte
// coalesced across the warp. For each kernel row the P+6 input pixels are
// read once and reused by up to 7 outputs from registers. The conv results go
// to this warp's slice of shared memory, which each lane reads back only at
// its own channels, so no barrier is needed.
template <typename T, int P>
__global__ void __launch_bounds__(kMaxWarps * 32)
dwconv7_ln_kernel(T *out, const float *in, const float *weight, const float *bias, int H, int W,
                  int C, int groups_x, size_t total_warps) {
    CNX_DYNAMIC_SHARED(float, conv_out);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const size_t gw = (size_t)blockIdx.x * (blockDim.x >> 5) + (size_t)warp;
    if (gw >= total_warps)
        return; // the whole warp
    const int gx = (int)(gw % (size_t)groups_x);
    const size_t t = gw / (size_t)groups_x;
    const int y = (int)(t % (size_t)H);
    const size_t n = t / (size_t)H;
    const int x0 = gx * P;
    float *buf = conv_out + (size_t)warp * P * C;
    const float *image = in + n * (size_t)H * (size_t)W * (size_t)C;

    for (int c = lane; c < C; c += 32) {
        float acc[P];
        const float b = bias[c];
#pragma unroll
        for (int p = 0; p < P; p++)
            acc[p] = b;
        for (int ky = 0; ky < 7; ky++) {
            const int iy = y + ky - 3;
            if (iy < 0 || iy >= H)
                continue; // zero padding; the same for the whole warp
            const float *row = image + (size_t)iy * (size_t)W * (size_t)C + c;
            float wk[7];
#pragma unroll
            for (int kx = 0; kx < 7; kx++)
                wk[kx] = weight[(size_t)(ky * 7 + kx) * C + c];
#pragma unroll
            for (int ix = 0; ix < P + 6; ix++) {
                const int xx = x0 + ix - 3;
                const float v = (xx >= 0 && xx < W) ? row[(size_t)xx * C] : 0.0f;
#pragma unroll
                for (int kx = 0; kx < 7; kx++) {
                    const int p = ix - kx; // output p reads input x0 + p + kx - 3
                    if (p >= 0 && p < P)
                        acc[p] = fmaf(v, wk[kx], acc[p]);
                }
            }
        }
#pragma unroll
        for (int p = 0; p < P; p++)
            buf[p * C + c] = acc[p];
    }

    for (int p = 0; p < P; p++) {
        const int x = x0 + p;
        if (x >= W)
            break; // the same for the whole warp
        const float *v = buf + p * C;
        float mean, inv_std;
        cnx::warp_row_stats(v, C, lane, &mean, &inv_std);
        T *dst = out + ((n * (size_t)H + (size_t)y) * (size_t)W + (size_t)x) * (size_t)C;
        for (int c = lane; c < C; c += 32)
            dst[c] = cnx::from_float<T>((v[c] - mean) * inv_std);
    }
}

template <typename T, int P>
cudaError_t launch(void *out, const float *in, const float *weight, const float *bias, int N,
                   int H, int W, int C, cudaStream_t stream) {
    const size_t per_warp = (size_t)P * (size_t)C * sizeof(float);
    int warps = (int)(kSharedLimit / per_warp);
    if (warps < 1)
        return cudaErrorInvalidValue; // C too large for one warp's slice
    if (warps > kMaxWarps)
        warps = kMaxWarps;
    const int groups_x = (W + P - 1) / P;
    const size_t total_warps = (size_t)N * (size_t)H * (size_t)groups_x;
    const size_t blocks = (total_warps + (size_t)warps - 1) / (size_t)warps;
    if (blocks > 0x7fffffffu)
        return cudaErrorInvalidValue;
    const auto kernel = dwconv7_ln_kernel<T, P>;
    CNX_KERNEL_LAUNCH(kernel, (unsigned)blocks, warps * 32, (size_t)warps * per_warp, stream,
                      static_cast<T *>(out), in, weight, bias, H, W, C, groups_x, total_warps);
    return cudaGetLastError();
}

template <typename T>
cudaError_t launch_for_width(void *out, const float *in, const float *weight, const float *bias,
                             int N, int H, int W, int C, cudaStream_t stream) {
    // Fewer pixels per warp as C grows keeps each warp's slice at 6 KiB up
    // to C = 1536 (and 4 warps per block within 48 KiB up to C = 3072).
    if (C <= 192)
        return launch<T, 8>(out, in, weight, bias, N, H, W, C, stream);
    if (C <= 384)
        return launch<T, 4>(out, in, weight, bias, N, H, W, C, stream);
    if (C <= 768)
        return launch<T, 2>(out, in, weight, bias, N, H, W, C, stream);
    return launch<T, 1>(out, in, weight, bias, N, H, W, C, stream);
}

} // namespace

extern "C" cudaError_t dwconv7_layernorm_forward(void *out, const float *in, const float *weight,
                                                 const float *bias, int batch, int height,
                                                 int width, int channels, cnx_act_dtype dtype,
                                                 cudaStream_t stream) {
    if (!out || !in || !weight || !bias || batch < 0 || height < 1 || width < 1 || channels < 1 ||
        (const void *)out == (const void *)in)
        return cudaErrorInvalidValue;
    if (batch == 0)
        return cudaSuccess;
    switch (dtype) {
    case CNX_ACT_F32:
        return launch_for_width<float>(out, in, weight, bias, batch, height, width, channels, stream);
    case CNX_ACT_F16:
        return launch_for_width<__half>(out, in, weight, bias, batch, height, width, channels, stream);
    case CNX_ACT_BF16:
        return launch_for_width<__nv_bfloat16>(out, in, weight, bias, batch, height, width, channels,
                                              stream);
    }
    return cudaErrorInvalidValue;
}
