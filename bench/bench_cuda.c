#include "bench_cuda.h"

#ifdef CNX_HAVE_CUDA
double bench_event_ms(cudaEvent_t start, cudaEvent_t stop) {
    float ms = 0.0f;
    return cudaEventElapsedTime(&ms, start, stop) == cudaSuccess ? (double)ms : 0.0;
}

int bench_time_h2d(cudaStream_t stream, size_t bytes, int repeats, bench_series *ms,
                   bench_row *row) {
    int result = -1;
    void *host = NULL, *device = NULL;
    cudaEvent_t start = NULL, stop = NULL;
    BENCH_CUDA(row, cudaMallocHost(&host, bytes));
    BENCH_CUDA(row, cudaMalloc(&device, bytes));
    BENCH_CUDA(row, cudaEventCreate(&start));
    BENCH_CUDA(row, cudaEventCreate(&stop));
    for (int i = 0; i <= repeats; i++) { /* the first is a warm-up */
        BENCH_CUDA(row, cudaEventRecord(start, stream));
        BENCH_CUDA(row, cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream));
        BENCH_CUDA(row, cudaEventRecord(stop, stream));
        BENCH_CUDA(row, cudaEventSynchronize(stop));
        if (i > 0 && bench_series_push(ms, bench_event_ms(start, stop)) != 0) {
            bench_row_fail(row, "out of memory");
            goto done;
        }
    }
    result = 0;
done:
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    cudaFree(device);
    cudaFreeHost(host);
    return result;
}
#else
typedef int bench_cuda_unused; /* ISO C wants something in a translation unit */
#endif
