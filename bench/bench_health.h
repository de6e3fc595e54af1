/* Whether the figures can be trusted: the GPU's state through NVML (loaded
 * with dlopen, so cnx-bench runs where it is missing), the CPU's load, and
 * how much the latencies vary. Each doubt becomes a warning in the report. */
#ifndef CNX_BENCH_HEALTH_H
#define CNX_BENCH_HEALTH_H

#include "bench_report.h"

typedef struct bench_health bench_health;

/* Before anything runs. On CUDA: opens NVML for the GPU with this PCI bus id
 * (NULL: NVML's device 0), warns when it is busy already (utilization, other
 * processes) or, without NVML, that nothing was checked. On the CPU: warns
 * when the 1-minute load average is over half the cores, and returns NULL
 * (nothing more to check). The other calls take NULL. */
bench_health *bench_health_begin(bench_report *report, int on_cuda, const char *pci_bus_id);

/* Right after a timed loop, while the GPU is still warm: the SM clock, the
 * clock-throttle reasons and the other processes on the GPU. */
void bench_health_sample(bench_health *health);

/* After the runs: warns of what the samples showed; frees health. */
void bench_health_end(bench_health *health, bench_report *report);

/* Warns when a row's latencies vary by more than 10% (their coefficient of
 * variation). */
void bench_check_variation(bench_report *report, const bench_row *row);

#endif
