// Which devices this build's kernels run on: every .cu is compiled for the
// same architectures, so one kernel answers for all.
#include "kernel_image.cuh"

#include <cstdio>

namespace {

__global__ void kernel_image_marker() {}

// nvcc lists the virtual architectures it compiles for, e.g. 800,900.
const int kArchitectures[] = {__CUDA_ARCH_LIST__};

} // namespace

extern "C" cudaError_t cnx_kernel_image_probe(void) {
    cudaFuncAttributes attributes;
    const cudaError_t e =
        cudaFuncGetAttributes(&attributes, reinterpret_cast<const void *>(kernel_image_marker));
    if (e != cudaSuccess)
        cudaGetLastError(); // answered here: the next launcher's check must not see it
    return e;
}

extern "C" void cnx_kernel_image_archs(char *text, size_t size) {
    size_t used = 0;
    if (size)
        text[0] = '\0';
    for (size_t i = 0; i < sizeof kArchitectures / sizeof kArchitectures[0] && used < size; i++) {
        const int arch = kArchitectures[i];
        const int n = snprintf(text + used, size - used, "%s%d.%d", i ? ", " : "", arch / 100,
                               arch / 10 % 10);
        used += n > 0 ? (size_t)n : 0;
    }
}
