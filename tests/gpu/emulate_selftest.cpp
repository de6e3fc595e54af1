// The emulation's own test: small kernels with the bugs that a block's
// threads run in index order, static shared memory kept from block to block,
// and one guard page per allocation used to hide, each now seen
// (emulate_cuda.h):
//
// - a missing __syncthreads between a lower thread's write and a higher
//   thread's read gives the right answer in the forward order and a wrong
//   one in the reverse order and in a random order;
// - shared memory a block never wrote, static (in a function template, whose
//   statics GCC keeps out of named sections) or dynamic, reads as NaN in
//   the next block, not as the previous block's values;
// - the CUDA backend (host/cuda/cuda_backend.c) leaves a guard zone after
//   each buffer of its arenas: a kernel that writes the first float past a
//   buffer, or further into the zone, kills the process (checked in children),
//   and the last float of the buffer is its own.
//
//   emulate_selftest [WORK_DIR]
#include "emulate_cuda.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "emulate_api.h"

extern "C" {
#include "convnext_weights.h"
#include "cuda_backend.h"
#include "random_model.h"
#include "test_check.h"

}

namespace {

constexpr int kThreads = 64;

// Each thread reads the value its lower neighbour stored, without the
// barrier between the store and the load.
__global__ void missing_barrier_kernel(int *out) {
    __shared__ int stored[kThreads];
    const int t = threadIdx.x;
    stored[t] = 100 + t;
    // (the __syncthreads() that belongs here is missing)
    out[t] = t > 0 ? stored[t - 1] : 100;
}

// Block 0 fills its shared memory; the other blocks read theirs without
// writing it.
template <typename T> __global__ void unwritten_shared_kernel(T *out) {
    __shared__ T cells[kThreads];
    CNX_DYNAMIC_SHARED(T, dynamic);
    const int t = threadIdx.x;
    if (blockIdx.x == 0) {
        cells[t] = T(1);
        dynamic[t] = T(2);
    }
    __syncthreads();
    out[2 * (blockIdx.x * kThreads + t)] = cells[t];
    out[2 * (blockIdx.x * kThreads + t) + 1] = dynamic[t];
}

__global__ void store_kernel(float *at, float value) {
    if (threadIdx.x == 0)
        *at = value;
}

void *device_alloc(size_t bytes) {
    void *p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        fprintf(stderr, "FAIL: cudaMalloc of %zu bytes\n", bytes);
        exit(1);
    }
    return p;
}

// How many of the threads read their lower neighbour's value under `order`.
int neighbours_seen(const char *order) {
    emu_set_thread_order(order);
    int *out = (int *)device_alloc(kThreads * sizeof(int));
    CNX_KERNEL_LAUNCH(missing_barrier_kernel, 1, kThreads, 0, nullptr, out);
    std::vector<int> host(kThreads);
    cudaMemcpy(host.data(), out, kThreads * sizeof(int), cudaMemcpyDeviceToHost);
    cudaFree(out);
    int seen = 0;
    for (int t = 0; t < kThreads; t++)
        seen += host[t] == 100 + (t > 0 ? t - 1 : 0);
    printf("missing barrier, %-9s order: %d of %d threads read their neighbour's value\n", order,
           seen, kThreads);
    return seen;
}

void check_thread_orders() {
    CHECK(neighbours_seen("forward") == kThreads, "forward order: the race is hidden");
    CHECK(neighbours_seen("reverse") == 1, "reverse order: every read but thread 0's is early");
    const int random = neighbours_seen("random:1");
    CHECK(random > 1 && random < kThreads, "random order: some reads are early, some late");
    emu_set_thread_order("forward");
}

void check_unwritten_shared() {
    const int blocks = 3;
    const size_t count = (size_t)2 * blocks * kThreads;
    float *out = (float *)device_alloc(count * sizeof(float));
    CNX_KERNEL_LAUNCH(unwritten_shared_kernel<float>, blocks, kThreads, kThreads * sizeof(float),
                      nullptr, out);
    std::vector<float> host(count);
    cudaMemcpy(host.data(), out, count * sizeof(float), cudaMemcpyDeviceToHost);
    cudaFree(out);
    int written = 0, poisoned = 0;
    for (int t = 0; t < kThreads; t++)
        written += host[2 * t] == 1.0f && host[2 * t + 1] == 2.0f;
    for (size_t i = 2 * kThreads; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &host[i], sizeof bits);
        poisoned += bits == 0xffffffffu;
    }
    printf("unwritten shared memory: block 0 read %d of %d values it wrote; blocks 1..%d read "
           "%d of %zu values as 0xff bytes (NaN)\n",
           written, kThreads, blocks - 1, poisoned, count - 2 * kThreads);
    CHECK(written == kThreads, "block 0 reads what it wrote");
    CHECK(poisoned == (int)(count - 2 * kThreads),
          "the blocks that wrote nothing read NaN, not block 0's values");
}

// Whether a child that stores a float at `at` dies by a signal (the guard
// zone's page fault, or the emulation's abort on a changed guard byte).
bool store_kills(float *at) {
    fflush(stdout);
    fflush(stderr);
    const pid_t child = fork();
    if (child == 0) {
        const struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        CNX_KERNEL_LAUNCH(store_kernel, 1, 32, 0, nullptr, at, 1.0f);
        _exit(0);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child)
        return false;
    return WIFSIGNALED(status);
}

void check_guard_zones(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/emulate_selftest.safetensors", dir);
    const int depths[4] = {1, 1, 1, 1}, widths[4] = {8, 16, 24, 32};
    const convnext_spec spec = random_spec(CNX_NAMING_TIMM, depths, widths, 10);
    cnx_convnext_weights w;
    if (write_random_model(&spec, 3, path) != 0 || cnx_convnext_weights_load(path, &w) != CNX_OK) {
        CHECK(0, "a random model: %s", cnx_last_error());
        return;
    }
    unlink(path);
    cuda_backend *backend = nullptr;
    const cnx_status status =
        cuda_backend_create(&w, CNX_PRECISION_FP32, 2, 32, 0, nullptr, &backend);
    cnx_convnext_weights_free(&w);
    CHECK(status == CNX_OK, "cuda_backend_create: %s", cnx_last_error());
    if (status != CNX_OK)
        return;
    void *zone = nullptr;
    size_t zone_bytes = 0;
    const long zones = emu_guard_zones(&zone, &zone_bytes);
    // The activations' 11 buffers, and the weights' (at least 2 per block).
    printf("guard zones: %ld in the backend's arenas, the first of %zu bytes\n", zones,
           zone_bytes);
    CHECK(zones > 11 + 2 * 4, "a guard zone after every buffer (%ld zones)", zones);
    float *first = (float *)zone;
    CHECK(!store_kills(first - 1), "the last float of a buffer is the buffer's");
    CHECK(store_kills(first), "a store to the first float past a buffer is caught");
    CHECK(store_kills(first + zone_bytes / sizeof(float) / 2),
          "a store into the middle of a guard zone is caught");
    cuda_backend_destroy(backend);
    CHECK(emu_guard_zones(nullptr, nullptr) == 0, "cudaFree releases the guard zones");
}

} // namespace

int main(int argc, char **argv) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "/tmp/cnx_selftest_XXXXXX");
    if (argc > 1 ? test_make_dir(dir) != 0 : mkdtemp(dir) == nullptr) {
        fprintf(stderr, "cannot make %s\n", dir);
        return 1;
    }
    check_thread_orders();
    check_unwritten_shared();
    printf("(two children must die below, by an emulation error or a fault)\n");
    check_guard_zones(dir);
    if (argc <= 1)
        rmdir(dir);
    printf("%d checks passed, %d failed\n", checks_passed, checks_failed);
    return checks_failed ? 1 : 0;
}
