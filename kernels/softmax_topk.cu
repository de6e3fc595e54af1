// Softmax + top-k, one block per image.
#include "softmax_topk.cuh"

#include <climits>

namespace {

constexpr int kThreads = 256;

// a ranks above b: higher probability, then the lower index.
__device__ __forceinline__ bool ranks_above(float pa, int ia, float pb, int ib) {
    return pa > pb || (pa == pb && ia < ib);
}

__device__ __forceinline__ void warp_best(float &p, int &i) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        const float op = __shfl_xor_sync(0xffffffffu, p, offset);
        const int oi = __shfl_xor_sync(0xffffffffu, i, offset);
        if (ranks_above(op, oi, p, i)) {
            p = op;
            i = oi;
        }
    }
}

__global__ void __launch_bounds__(kThreads)
softmax_topk_kernel(cnx_prediction *top, float *probs, const float *logits, int classes, int k) {
    __shared__ float fscratch[33];
    __shared__ double dscratch[33];
    __shared__ float warp_p[32];
    __shared__ int warp_i[32];
    __shared__ float chosen_p;
    __shared__ int chosen_i;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const size_t n = blockIdx.x;
    const float *row = logits + n * (size_t)classes;
    float *prob = probs + n * (size_t)classes;
    cnx_prediction *out = top + n * (size_t)k;

    float largest = -INFINITY, bad = 0.0f;
    for (int i = threadIdx.x; i < classes; i += blockDim.x) {
        const float v = row[i];
        if (!isfinite(v))
            bad = 1.0f;
        largest = fmaxf(largest, v);
    }
    bad = cnx::block_sum(bad, fscratch);
    largest = cnx::block_max(largest, fscratch);
    if (bad > 0.0f) { // the same for every thread
        for (int j = threadIdx.x; j < k; j += blockDim.x) {
            out[j].class_index = -1;
            out[j].probability = __int_as_float(0x7fc00000);
            out[j].logit = __int_as_float(0x7fc00000);
        }
        return;
    }
    double sum = 0.0;
    for (int i = threadIdx.x; i < classes; i += blockDim.x)
        sum += exp((double)row[i] - (double)largest);
    sum = cnx::block_sum(sum, dscratch);
    for (int i = threadIdx.x; i < classes; i += blockDim.x)
        prob[i] = (float)(exp((double)row[i] - (double)largest) / sum);
    __syncthreads(); // the block's global writes are visible to the block after this

    // Pass j picks the best class ranked below pass j-1's pick.
    float prev_p = INFINITY;
    int prev_i = -1;
    for (int j = 0; j < k; j++) {
        float best_p = -1.0f; // below any probability
        int best_i = INT_MAX;
        for (int i = threadIdx.x; i < classes; i += blockDim.x) {
            const float p = prob[i];
            if (ranks_above(prev_p, prev_i, p, i) && ranks_above(p, i, best_p, best_i)) {
                best_p = p;
                best_i = i;
            }
        }
        warp_best(best_p, best_i);
        if (lane == 0) {
            warp_p[warp] = best_p;
            warp_i[warp] = best_i;
        }
        __syncthreads();
        if (warp == 0) {
            best_p = lane < warps ? warp_p[lane] : -1.0f;
            best_i = lane < warps ? warp_i[lane] : INT_MAX;
            warp_best(best_p, best_i);
            if (lane == 0) {
                chosen_p = best_p;
                chosen_i = best_i;
                out[j].class_index = best_i;
                out[j].probability = best_p;
                out[j].logit = row[best_i];
            }
        }
        __syncthreads();
        prev_p = chosen_p; // read before anyone passes the next pass's first barrier
        prev_i = chosen_i;
    }
}

} // namespace

extern "C" cudaError_t softmax_topk_forward(cnx_prediction *top, float *probs,
                                            const float *logits, int batch, int classes, int k,
                                            cudaStream_t stream) {
    if (!top || !probs || !logits || batch < 0 || classes < 1 || k < 1 || k > classes)
        return cudaErrorInvalidValue;
    if (batch == 0)
        return cudaSuccess;
    const auto kernel = softmax_topk_kernel;
    CNX_KERNEL_LAUNCH(kernel, (unsigned)batch, kThreads, 0, stream, top, probs, logits, classes, k);
    return cudaGetLastError();
}
