// x += bias, per row.
#include "add_bias.cuh"

namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
add_bias_kernel(float *x, const float *bias, size_t count, int cols) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride)
        x[i] += bias[i % (size_t)cols];
}

} // namespace

extern "C" cudaError_t add_bias_forward(float *x, const float *bias, size_t rows, int cols,
                                        cudaStream_t stream) {
    if (!x || !bias || cols <= 0)
        return cudaErrorInvalidValue;
    const size_t count = rows * (size_t)cols;
    if (count == 0)
        return cudaSuccess;
    const auto kernel = add_bias_kernel;
    CNX_KERNEL_LAUNCH(kernel, cnx::grid_for(count, kThreads), kThreads, 0, stream, x, bias, count,
                      cols);
    return cudaGetLastError();
}
