/* What the emulated tests call of the CUDA emulation (emulate_runtime.cpp)
 * directly: runtime functions under their emulated names, for the test's
 * own "device" buffers, streams and captures, and the emulation's controls.
 * The test files themselves are not compiled with emulate_cuda.h. */
#ifndef CNX_TESTS_GPU_EMULATE_API_H
#define CNX_TESTS_GPU_EMULATE_API_H

#include <stddef.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The runtime. */
cudaError_t emu_cudaMalloc(void **p, size_t bytes);
cudaError_t emu_cudaFree(void *p);
cudaError_t emu_cudaHostAlloc(void **p, size_t bytes, unsigned flags);
cudaError_t emu_cudaFreeHost(void *p);
cudaError_t emu_cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind);
cudaError_t emu_cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                                cudaStream_t stream);
cudaError_t emu_cudaGetLastError(void);
cudaError_t emu_cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned flags);
cudaError_t emu_cudaStreamDestroy(cudaStream_t stream);
cudaError_t emu_cudaStreamSynchronize(cudaStream_t stream);
cudaError_t emu_cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags);
cudaError_t emu_cudaEventCreateWithFlags(cudaEvent_t *event, unsigned flags);
cudaError_t emu_cudaEventRecord(cudaEvent_t event, cudaStream_t stream);
cudaError_t emu_cudaEventSynchronize(cudaEvent_t event);
cudaError_t emu_cudaEventDestroy(cudaEvent_t event);
cudaError_t emu_cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode);
cudaError_t emu_cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph);
cudaError_t emu_cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus *status);
cudaError_t emu_cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph,
                                     unsigned long long flags);
cudaError_t emu_cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t emu_cudaGraphDestroy(cudaGraph_t graph);
cudaError_t emu_cudaGraphExecDestroy(cudaGraphExec_t exec);

/* The emulation's controls and reports (each documented where it is
 * defined, in emulate_runtime.cpp). */
void emu_report(void);
void emu_set_stream_mode(const char *mode);
void emu_set_thread_order(const char *order);
void emu_fail_call(const char *call, long after, int error);
void emu_live(long *device_allocations, long *host_allocations, long *streams, long *events,
              long *graphs);
void emu_set_device_count(int count);
unsigned emu_devices_touched(void);
long emu_guard_zones(void **first, size_t *first_bytes);

/* Its cuBLASLt (GEMMs selected by m, n, k; 0: any). */
void emu_lt_offer(int count);
void emu_lt_reject_bias_epilogue(int reject);
void emu_lt_no_results(long m, long n, long k, int status);
void emu_lt_fail_algorithms(long m, long n, long k, int ranks, int status);
void emu_lt_spoil_first_result(int how);
void emu_lt_reset(void);
void emu_lt_algorithm_uses(int rank, long *ran, long *refused);
long emu_lt_live(void);
long emu_lt_heuristic_calls(void);

#ifdef __cplusplus
}
#endif

#endif
