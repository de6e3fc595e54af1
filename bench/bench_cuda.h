/* CUDA helpers of cnx-bench: checked calls that fail a row, event timing,
 * pinned-memory uploads. Only in builds with CUDA. */
#ifndef CNX_BENCH_CUDA_H
#define CNX_BENCH_CUDA_H

#ifdef CNX_HAVE_CUDA
#include <stddef.h>

#include <cuda_runtime.h>

#include "bench_report.h"
#include "bench_stats.h"

/* Runs a CUDA call; on failure marks row failed with the call and the
 * cause, and jumps to `done` (the caller's cleanup). */
#define BENCH_CUDA(row, call)                                                             \
    do {                                                                                  \
        const cudaError_t bench_error_ = (call);                                          \
        if (bench_error_ != cudaSuccess) {                                                \
            bench_row_fail((row), "%s: %s", #call, cudaGetErrorString(bench_error_));     \
            goto done;                                                                    \
        }                                                                                 \
    } while (0)

/* Milliseconds between two recorded events (the stop one complete). */
double bench_event_ms(cudaEvent_t start, cudaEvent_t stop);

/* Times `repeats` uploads of `bytes` from page-locked host memory on
 * stream with events, one sample each into ms. 0, or -1 with row failed. */
int bench_time_h2d(cudaStream_t stream, size_t bytes, int repeats, bench_series *ms,
                   bench_row *row);
#endif

#endif
