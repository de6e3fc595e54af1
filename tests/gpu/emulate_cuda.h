/* The CUDA forward run on the CPU, for machines without a GPU: included
 * first (-include) by every CUDA file of the emulate_forward and
 * emulate_pipeline tests (host/cuda/: cuda_backend.c, cuda_upload.c,
 * host_memory.c, device.c; and the kernels), and by emulate_preprocess.cpp
 * and emulate_selftest.cpp.
 *
 * The CUDA runtime and cuBLASLt calls are renamed to emu_* functions
 * (tests/gpu/emulate_runtime.cpp): device and page-locked memory are host
 * memory with a guard page after each allocation, there is one device
 * (sm_90; emu_set_device_count for more), streams run synchronously or
 * (emu_set_stream_mode) as late as CUDA allows, the legacy stream with
 * CUDA's implicit ordering, events order them, stream capture records the launches into a
 * graph that replays them, and cuBLASLt
 * is a reference GEMM that checks its layouts, types, alignment and epilogue
 * the way cnx uses them. The kernels' device code is compiled by the host
 * compiler: each thread is a fiber, __syncthreads() and the warp shuffles are
 * barriers over fibers. What this cannot show is what only a GPU has:
 * nvcc's arithmetic, the real cuBLASLt's reading of the same calls, speed.
 * test_gpu_forward checks those on a GPU.
 *
 * cuBLASLt is not opened (cnx_cublaslt_load is emu_cnx_cublaslt_load).
 * emu_fail_call stands in for a machine without it, and for a device the
 * build has no kernels for: the kernels count as built for sm_80 only
 * (__CUDA_ARCH_LIST__, as CMAKE_CUDA_ARCHITECTURES=80-real would make
 * them), which the sm_90 device runs unless cudaFuncGetAttributes is made
 * to fail.
 *
 * Races it can show (tests/gpu/emulate_selftest.cpp proves each):
 * - Between two barriers a block's threads run one after the other, in the
 *   order CNX_EMU_THREAD_ORDER says (read once): "forward" (the default,
 *   thread 0 first), "reverse", or "random:SEED" (a new seeded permutation
 *   at each barrier). A missing __syncthreads between a write and a read
 *   of another thread gives a wrong result in one order or the other.
 * - Shared memory, static (__shared__, gathered into the section
 *   cnx_emu_shared by emulate_shared.ld) and dynamic, is filled with 0xff
 *   bytes (NaN) before each block: a read of what the block never wrote is
 *   NaN, not the previous block's value.
 * - The CUDA backend leaves a guard zone after each buffer of its arenas
 *   (CNX_DEVICE_GUARD, in Debug builds and here); the emulation makes the
 *   zone's whole pages inaccessible and checks the rest (0xff bytes) after
 *   each kernel and GEMM, so that a kernel running past its buffer fails
 *   instead of using its neighbour's data. */
#ifndef CNX_TESTS_GPU_EMULATE_CUDA_H
#define CNX_TESTS_GPU_EMULATE_CUDA_H

/* For the host files (C and C++) that change their layout under the emulation. */
#define CNX_CUDA_EMULATION 1

#define cudaGetErrorString emu_cudaGetErrorString
#define cudaGetDeviceCount emu_cudaGetDeviceCount
#define cudaGetDeviceProperties emu_cudaGetDeviceProperties
#define cudaStreamCreate emu_cudaStreamCreate
#define cudaStreamQuery emu_cudaStreamQuery
#define cudaEventCreate emu_cudaEventCreate
#define cudaEventCreateWithFlags emu_cudaEventCreateWithFlags
#define cudaEventDestroy emu_cudaEventDestroy
#define cudaEventRecord emu_cudaEventRecord
#define cudaEventSynchronize emu_cudaEventSynchronize
#define cudaEventQuery emu_cudaEventQuery
#define cudaStreamWaitEvent emu_cudaStreamWaitEvent
#define cudaHostAlloc emu_cudaHostAlloc
#define cudaMallocHost emu_cudaMallocHost
#define cudaFreeHost emu_cudaFreeHost
#define cudaPeekAtLastError emu_cudaPeekAtLastError
#define cudaGetErrorName emu_cudaGetErrorName
#define cudaSetDevice emu_cudaSetDevice
#define cudaDeviceGetAttribute emu_cudaDeviceGetAttribute
#define cudaStreamCreateWithFlags emu_cudaStreamCreateWithFlags
#define cudaStreamDestroy emu_cudaStreamDestroy
#define cudaStreamSynchronize emu_cudaStreamSynchronize
#define cudaDeviceSynchronize emu_cudaDeviceSynchronize
#define cudaMalloc emu_cudaMalloc
#define cudaFree emu_cudaFree
#define cudaMemcpy emu_cudaMemcpy
#define cudaMemcpyAsync emu_cudaMemcpyAsync
#define cudaGetLastError emu_cudaGetLastError
#define cudaStreamBeginCapture emu_cudaStreamBeginCapture
#define cudaStreamEndCapture emu_cudaStreamEndCapture
#define cudaStreamIsCapturing emu_cudaStreamIsCapturing
#define cudaGraphInstantiate emu_cudaGraphInstantiate
#define cudaGraphDestroy emu_cudaGraphDestroy
#define cudaGraphExecDestroy emu_cudaGraphExecDestroy
#define cudaGraphLaunch emu_cudaGraphLaunch
#define cudaFuncGetAttributes emu_cudaFuncGetAttributes
#define cnx_cublaslt_load emu_cnx_cublaslt_load
#ifndef __CUDA_ARCH_LIST__
#define __CUDA_ARCH_LIST__ 800
#endif
#define cublasLtCreate emu_cublasLtCreate
#define cublasLtDestroy emu_cublasLtDestroy
#define cublasLtGetStatusString emu_cublasLtGetStatusString
#define cublasLtMatmulPreferenceCreate emu_cublasLtMatmulPreferenceCreate
#define cublasLtMatmulPreferenceDestroy emu_cublasLtMatmulPreferenceDestroy
#define cublasLtMatmulPreferenceSetAttribute emu_cublasLtMatmulPreferenceSetAttribute
#define cublasLtMatmulDescCreate emu_cublasLtMatmulDescCreate
#define cublasLtMatmulDescDestroy emu_cublasLtMatmulDescDestroy
#define cublasLtMatmulDescSetAttribute emu_cublasLtMatmulDescSetAttribute
#define cublasLtMatrixLayoutCreate emu_cublasLtMatrixLayoutCreate
#define cublasLtMatrixLayoutDestroy emu_cublasLtMatrixLayoutDestroy
#define cublasLtMatmulAlgoGetHeuristic emu_cublasLtMatmulAlgoGetHeuristic
#define cublasLtMatmul emu_cublasLtMatmul

#include <cublasLt.h>
#include <cuda_runtime.h>

/* [zone, zone + bytes), inside a cudaMalloc'ed arena, is nobody's: an access
 * to it fails the test. Released by the arena's cudaFree. */
#ifdef __cplusplus
extern "C" {
#endif
void emu_device_guard(void *zone, size_t bytes);
#ifdef __cplusplus
}
#endif
#define CNX_DEVICE_GUARD(zone, bytes) emu_device_guard((zone), (bytes))

#ifdef __cplusplus
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory> /* before __noinline__ below: libstdc++ spells the attribute so */

#define CNX_KERNEL_EMULATION 1

namespace emu {
extern dim3 thread_index, block_index, block_dim, grid_dim;
extern unsigned char *dynamic_shared;
void syncthreads();
void shuffle_xor(const void *value, void *result, size_t size, int lane_mask);
void launch(dim3 grid, dim3 block, size_t shared, cudaStream_t stream, std::function<void()> body);
} // namespace emu

/* What nvcc provides in device code and the host compiler does not. */
#ifndef __noinline__
#define __noinline__ __attribute__((noinline))
#endif
using std::max;
using std::min;

/* Static: one block runs at a time. emulate_shared.ld gathers them into one
 * section, which the emulation fills with 0xff bytes before each block. */
#undef __shared__
#define __shared__ static
#define __launch_bounds__(...)
#define threadIdx emu::thread_index
#define blockIdx emu::block_index
#define blockDim emu::block_dim
#define gridDim emu::grid_dim
#define __syncthreads emu::syncthreads

template <typename T> static inline T __shfl_xor_sync(unsigned mask, T value, int lane_mask) {
    (void)mask;
    T result;
    emu::shuffle_xor(&value, &result, sizeof(T), lane_mask);
    return result;
}

static inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

#define CNX_KERNEL_LAUNCH(kernel, grid, block, shared, stream, ...) \
    emu::launch(dim3(grid), dim3(block), (shared), (stream), [=]() { kernel(__VA_ARGS__); })
#define CNX_DYNAMIC_SHARED(type, name) type *name = reinterpret_cast<type *>(emu::dynamic_shared)
#endif

#endif
