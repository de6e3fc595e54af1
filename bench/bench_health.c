#define _GNU_SOURCE /* dlopen's RTLD_* on older glibc */

#include "bench_health.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------- NVML, declared here
 * (no header is installed where the bench builds). The ABI is stable:
 * these are the documented signatures of libnvidia-ml.so.1. */
typedef int nvml_return;                 /* nvmlReturn_t: 0 is success */
typedef struct nvml_device_st *nvml_device; /* nvmlDevice_t */
enum { NVML_SUCCESS = 0, NVML_CLOCK_SM = 1, NVML_TEMPERATURE_GPU = 0 };

typedef struct nvml_utilization { /* nvmlUtilization_t */
    unsigned int gpu, memory;
} nvml_utilization;

typedef struct nvml_process_v1 { /* nvmlProcessInfo_v1_t */
    unsigned int pid;
    unsigned long long used_memory;
} nvml_process_v1;

typedef struct nvml_process_v2 { /* nvmlProcessInfo_t of the _v2 and _v3 calls */
    unsigned int pid;
    unsigned long long used_memory;
    unsigned int gpu_instance, compute_instance;
} nvml_process_v2;

/* Clock-throttle reasons (nvmlClocksThrottleReason*) that slow a run down. */
static const struct {
    unsigned long long bit;
    const char *name;
} throttle_reasons[] = {
    {0x4, "software power cap"},          {0x8, "hardware slowdown"},
    {0x20, "software thermal slowdown"},  {0x40, "hardware thermal slowdown"},
    {0x80, "hardware power brake"},
};

struct bench_health {
    int on_cuda;
    void *library;
    nvml_device device;
    nvml_return (*shutdown)(void);
    nvml_return (*clock)(nvml_device, int, unsigned int *);
    nvml_return (*max_clock)(nvml_device, int, unsigned int *);
    nvml_return (*throttle)(nvml_device, unsigned long long *);
    nvml_return (*processes)(nvml_device, unsigned int *, void *);
    int processes_v2; /* the _v2/_v3 struct, else v1 */
    nvml_return (*utilization)(nvml_device, nvml_utilization *);
    nvml_return (*temperature)(nvml_device, int, unsigned int *);

    unsigned int max_sm_clock;
    int samples;
    unsigned int lowest_clock, temperature_then; /* at the slowest sample */
    unsigned long long reasons;                  /* seen in any sample */
    int most_others;                             /* other processes, at most */
};

static void *symbol(bench_health *h, const char *name) { return dlsym(h->library, name); }

static int open_nvml(bench_health *h, const char *pci_bus_id) {
    h->library = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h->library) return -1;
    nvml_return (*init)(void) = (nvml_return(*)(void))symbol(h, "nvmlInit_v2");
    nvml_return (*by_index)(unsigned int, nvml_device *) =
        (nvml_return(*)(unsigned int, nvml_device *))symbol(h, "nvmlDeviceGetHandleByIndex_v2");
    nvml_return (*by_bus)(const char *, nvml_device *) =
        (nvml_return(*)(const char *, nvml_device *))symbol(h, "nvmlDeviceGetHandleByPciBusId_v2");
    h->shutdown = (nvml_return(*)(void))symbol(h, "nvmlShutdown");
    if (!init || !by_index || !h->shutdown || init() != NVML_SUCCESS) {
        dlclose(h->library);
        h->library = NULL;
        return -1;
    }
    if (!(pci_bus_id && by_bus && by_bus(pci_bus_id, &h->device) == NVML_SUCCESS) &&
        by_index(0, &h->device) != NVML_SUCCESS) {
        h->shutdown();
        dlclose(h->library);
        h->library = NULL;
        return -1;
    }
    typedef nvml_return (*clock_fn)(nvml_device, int, unsigned int *);
    h->clock = (clock_fn)symbol(h, "nvmlDeviceGetClockInfo");
    h->max_clock = (clock_fn)symbol(h, "nvmlDeviceGetMaxClockInfo");
    h->temperature = (clock_fn)symbol(h, "nvmlDeviceGetTemperature");
    typedef nvml_return (*reasons_fn)(nvml_device, unsigned long long *);
    h->throttle = (reasons_fn)symbol(h, "nvmlDeviceGetCurrentClocksEventReasons");
    if (!h->throttle) h->throttle = (reasons_fn)symbol(h, "nvmlDeviceGetCurrentClocksThrottleReasons");
    typedef nvml_return (*processes_fn)(nvml_device, unsigned int *, void *);
    static const char *const process_calls[] = {"nvmlDeviceGetComputeRunningProcesses_v3",
                                                "nvmlDeviceGetComputeRunningProcesses_v2",
                                                "nvmlDeviceGetComputeRunningProcesses"};
    for (int i = 0; i < 3 && !h->processes; i++) {
        h->processes = (processes_fn)symbol(h, process_calls[i]);
        h->processes_v2 = i < 2;
    }
    h->utilization = (nvml_return(*)(nvml_device, nvml_utilization *))symbol(
        h, "nvmlDeviceGetUtilizationRates");
    if (!h->max_clock || h->max_clock(h->device, NVML_CLOCK_SM, &h->max_sm_clock) != NVML_SUCCESS)
        h->max_sm_clock = 0;
    return 0;
}

/* Compute processes on the GPU other than this one, or -1 if unknown. In a
 * PID namespace NVML reports host PIDs and ours is not found: then, once we
 * hold a context (after_start), one of them is taken to be ours. */
static int other_processes(bench_health *h, int after_start) {
    enum { MAX_PROCESSES = 256 };
    static nvml_process_v2 v2[MAX_PROCESSES];
    static nvml_process_v1 v1[MAX_PROCESSES];
    unsigned int count = MAX_PROCESSES;
    if (!h->processes ||
        h->processes(h->device, &count, h->processes_v2 ? (void *)v2 : (void *)v1) != NVML_SUCCESS)
        return -1;
    const unsigned int self = (unsigned int)getpid();
    int others = 0, found_self = 0;
    for (unsigned int i = 0; i < count && i < MAX_PROCESSES; i++) {
        const unsigned int pid = h->processes_v2 ? v2[i].pid : v1[i].pid;
        if (pid == self)
            found_self = 1;
        else
            others++;
    }
    if (after_start && !found_self && others > 0) others--;
    return others;
}

static void check_load(bench_report *report) {
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    double load = 0.0;
    const int read = fscanf(f, "%lf", &load);
    fclose(f);
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (read == 1 && cores > 0 && load > cores / 2.0)
        bench_warn(report, "the CPU is busy before the run: 1-minute load average %.2f on %ld "
                   "cores (over half of them); the figures may be low", load, cores);
}

bench_health *bench_health_begin(bench_report *report, int on_cuda, const char *pci_bus_id) {
    if (!on_cuda) {
        check_load(report);
        return NULL;
    }
    bench_health *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->on_cuda = 1;
    h->lowest_clock = ~0u;
    if (open_nvml(h, pci_bus_id) != 0) {
        bench_warn(report, "NVML not available: GPU clocks and other processes were not checked");
        return h;
    }
    nvml_utilization use;
    const int busy = h->utilization && h->utilization(h->device, &use) == NVML_SUCCESS &&
                     use.gpu > 10;
    const int others = other_processes(h, 0);
    if (busy || others > 0)
        bench_warn(report, "the GPU was already busy before the run: utilization %u%%, %d other "
                   "compute process(es)", busy ? use.gpu : 0, others > 0 ? others : 0);
    return h;
}

void bench_health_sample(bench_health *h) {
    if (!h || !h->library) return;
    unsigned int clock = 0, temperature = 0;
    unsigned long long reasons = 0;
    if (h->clock && h->clock(h->device, NVML_CLOCK_SM, &clock) == NVML_SUCCESS &&
        clock < h->lowest_clock) {
        h->lowest_clock = clock;
        if (!h->temperature ||
            h->temperature(h->device, NVML_TEMPERATURE_GPU, &temperature) != NVML_SUCCESS)
            temperature = 0;
        h->temperature_then = temperature;
    }
    if (h->throttle && h->throttle(h->device, &reasons) == NVML_SUCCESS) h->reasons |= reasons;
    const int others = other_processes(h, 1);
    if (others > h->most_others) h->most_others = others;
    h->samples++;
}

void bench_health_end(bench_health *h, bench_report *report) {
    if (!h) return;
    if (h->library && h->samples > 0) {
        if (h->max_sm_clock && h->lowest_clock != ~0u && h->lowest_clock < 0.9 * h->max_sm_clock)
            bench_warn(report, "the SM clock was %u MHz after a timed run, %.0f%% of its maximum "
                       "%u MHz (GPU at %u C): the GPU ran slower than it can",
                       h->lowest_clock, 100.0 * h->lowest_clock / h->max_sm_clock,
                       h->max_sm_clock, h->temperature_then);
        char seen[256] = "";
        for (size_t i = 0; i < sizeof throttle_reasons / sizeof throttle_reasons[0]; i++)
            if (h->reasons & throttle_reasons[i].bit) {
                if (seen[0]) strncat(seen, ", ", sizeof seen - strlen(seen) - 1);
                strncat(seen, throttle_reasons[i].name, sizeof seen - strlen(seen) - 1);
            }
        if (seen[0]) bench_warn(report, "the GPU throttled its clocks during the run: %s", seen);
        if (h->most_others > 0)
            bench_warn(report, "%d other process(es) used the GPU during the run",
                       h->most_others);
    }
    if (h->library) {
        h->shutdown();
        dlclose(h->library);
    }
    free(h);
}

void bench_check_variation(bench_report *report, const bench_row *row) {
    if (!row->error[0] && row->latency.count >= 2 && row->latency.cv > 0.10)
        bench_warn(report, "%s, batch %d: the latencies vary by %.1f%% (coefficient of "
                   "variation over 10%%): the figures are noisy", row->name, row->batch,
                   100.0 * row->latency.cv);
}
