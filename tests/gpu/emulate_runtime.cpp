// The CUDA runtime and cuBLASLt, as much of them as cnx uses (host/cuda/:
// cuda_backend.c, cuda_upload.c, host_memory.c, device.c; and the kernels'
// launchers), on the CPU (see emulate_cuda.h). Kernels run block
// after block; the threads of a block are fibers (ucontext) switched at
// __syncthreads() and at each warp shuffle, and a block whose threads do not
// all meet at the same barrier fails the test. Between barriers the threads
// run in the order CNX_EMU_THREAD_ORDER says (forward, reverse, random:SEED),
// and each block starts with its shared memory full of 0xff bytes: a missing
// barrier or a read of shared memory never written shows as a wrong result.
//
// Streams. By default (mode "sync") work runs when it is queued, as before.
// The legacy default stream (stream 0) is a stream like the others, with
// CUDA's implicit ordering: its work waits for the blocking streams' work
// queued before it, and their later work waits for its.
// emu_set_stream_mode("deferred") keeps each stream's work queued until
// something waits for it (cudaStreamSynchronize, cudaEventSynchronize, a
// cudaStreamWaitEvent'ed stream reaching that point, cudaDeviceSynchronize,
// cudaFree / cudaFreeHost, which synchronize the device; the synchronous
// cudaMemcpy, which returns before its copy has run only from pageable host
// memory (staged) and device to device, as CUDA's): the latest
// schedule CUDA allows, so that a result read before its stream was waited
// for is stale or NaN (a copy to host memory poisons its destination with
// 0xff bytes when it is queued), and a host buffer changed before the copy
// that reads it has run shows up as the changed data. "random:SEED" is
// "deferred" plus, at each call, a random amount of progress on random
// streams: other legal interleavings of the streams' work.
//
// Stream capture (ThreadLocal and Global modes, from any thread: stricter
// than CUDA's ThreadLocal) refuses what CUDA refuses: cudaMalloc, cudaFree,
// cudaHostAlloc, cudaFreeHost and cudaDeviceSynchronize
// (cudaErrorStreamCaptureUnsupported; cudaGraphExecDestroy too, to be safe), cudaStreamSynchronize and
// cudaStreamQuery on the capturing stream (the same), and any use of the
// legacy stream, the synchronous cudaMemcpy included
// (cudaErrorStreamCaptureImplicit); the capture is then invalidated and
// cudaStreamEndCapture fails, as CUDA's does.
//
// Devices: one, or emu_set_device_count(n) for n; each thread has its
// current device (cudaSetDevice), and emu_devices_touched() tells which
// devices a context was made on (allocations, streams, events, launches).
//
// Misuse that CUDA leaves undefined or that a real GPU would only show as a
// rare wrong result fails at once (die): copies whose pointers are not on
// the side their kind says or run past their allocation or into a guard
// zone (emu_device_guard; a kernel's access to one faults, or fails the
// check after the kernel), waiting on an event
// never recorded, use of a destroyed stream or event, freeing what the
// matching allocator did not return, a cycle of stream waits.
#include "emulate_cuda.h"
#include "emulate_api.h" /* its definitions below must match */

#include <pthread.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cublaslt_library.h"
extern "C" {
#include "error.h"
}

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN 1
#endif
#endif
#ifdef EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// ------------------------------------------------------------ failures

[[noreturn]] static void die(const char *what) {
    fprintf(stderr, "emulation: %s\n", what);
    fflush(stdout);
    abort();
}

// The emulated devices: all alike (sm_90), all backed by host memory.
static int device_count = 1;
static thread_local int current_device = 0; // as CUDA's: per host thread, 0 at first
static unsigned devices_touched;            // bit d: a context was made on device d

// A call that makes (or uses) a context on the current device.
static void touch_device() {
    devices_touched |= 1u << current_device;
}

// One thread at a time in the emulation (kernels run on the calling thread).
static std::recursive_mutex big_lock;
#define EMU_LOCK std::lock_guard<std::recursive_mutex> emu_guard_(big_lock)

// --------------------------------------------------------------- fibers

namespace emu {
dim3 thread_index, block_index, block_dim, grid_dim;
unsigned char *dynamic_shared;
} // namespace emu

namespace {

enum State { RUNNABLE, BLOCK_WAIT, WARP_WAIT, DONE };
constexpr int kMaxThreads = 1024;
constexpr size_t kFiberStack = 64 * 1024;

// Fibers are made once per thread index and live on: a fiber runs the
// block's body, yields DONE, and is resumed for the next block, of whatever
// kernel. Only its first start goes through makecontext/swapcontext; every
// switch after that is, on x86-64, the compiler's __builtin_setjmp/
// __builtin_longjmp: a few registers, no system call (swapcontext makes
// one), none of the unwinding of glibc's longjmp, and none of ASan's
// interceptor of it, which makes a system call and clears shadow memory at
// every switch. Each stack has an inaccessible page below it, so that an
// overflow crashes rather than corrupting the next one. Under
// AddressSanitizer every switch is announced (__sanitizer_start/
// finish_switch_fiber), so that ASan knows which stack it is on and neither
// misreads the fibers' frames nor leaves their redzones poisoned.
ucontext_t scheduler;
ucontext_t fibers[kMaxThreads];
#if defined(__x86_64__)
typedef void *jump_buffer[5]; // __builtin_setjmp's
#define EMU_SETJMP(buffer) __builtin_setjmp(buffer)
#define EMU_LONGJMP(buffer) __builtin_longjmp(buffer, 1)
// __builtin_longjmp restores only the frame and stack pointers: a function
// that calls __builtin_setjmp must save every callee-saved register itself,
// which this clobber makes the compiler do.
#define EMU_SAVE_REGISTERS() asm volatile("" ::: "rbx", "r12", "r13", "r14", "r15", "memory")
#else // elsewhere glibc's, which restore the registers themselves
typedef jmp_buf jump_buffer;
#define EMU_SETJMP(buffer) _setjmp(buffer)
#define EMU_LONGJMP(buffer) _longjmp(buffer, 1)
#define EMU_SAVE_REGISTERS() asm volatile("" ::: "memory")
#endif
jump_buffer scheduler_jump, fiber_jump[kMaxThreads];
bool started[kMaxThreads];
State state[kMaxThreads];
char *fiber_stack[kMaxThreads]; // mapped on first use, never unmapped
pthread_t fibers_thread;        // the thread whose stacks the fibers parked on
bool fibers_thread_set = false;
int current = -1;
int threads_in_block = 0;
std::function<void()> *block_body;
unsigned char slots[kMaxThreads][16]; // shuffle values
std::vector<unsigned char> shared_memory; // dynamic

uint64_t xorshift(uint64_t &state) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

// The state of a xorshift generator seeded by the decimal SEED of "random:SEED".
uint64_t seeded(const char *digits, const char *variable) {
    char *end;
    const unsigned long long seed = strtoull(digits, &end, 10);
    if (end == digits || *end) {
        fprintf(stderr, "emulation: %s: \"%s\" is not a seed\n", variable, digits);
        die("a random mode's seed is not a decimal number");
    }
    return seed * 0x9e3779b97f4a7c15ull + 1;
}

// The order of a block's threads between two barriers ($CNX_EMU_THREAD_ORDER).
enum ThreadOrder { FORWARD, REVERSE, SHUFFLED };
ThreadOrder thread_order = FORWARD;
uint64_t order_state;
bool order_read = false;
int sweep_order[kMaxThreads];

void set_thread_order(const char *m) {
    order_read = true;
    if (!m || !*m || strcmp(m, "forward") == 0) {
        thread_order = FORWARD;
    } else if (strcmp(m, "reverse") == 0) {
        thread_order = REVERSE;
    } else if (strncmp(m, "random:", 7) == 0) {
        thread_order = SHUFFLED;
        order_state = seeded(m + 7, "CNX_EMU_THREAD_ORDER");
    } else {
        die("unknown CNX_EMU_THREAD_ORDER (forward, reverse, random:SEED)");
    }
}

void read_thread_order() {
    if (!order_read)
        set_thread_order(getenv("CNX_EMU_THREAD_ORDER"));
}

// The order of the next sweep over a block's n threads: a new permutation
// at each barrier when shuffled.
void next_sweep_order(int n) {
    for (int i = 0; i < n; i++)
        sweep_order[i] = thread_order == REVERSE ? n - 1 - i : i;
    if (thread_order == SHUFFLED)
        for (int i = n - 1; i > 0; i--)
            std::swap(sweep_order[i], sweep_order[xorshift(order_state) % (uint64_t)(i + 1)]);
}

char *stack_of(int i) {
    if (!fiber_stack[i]) {
        const size_t page = (size_t)sysconf(_SC_PAGESIZE);
        void *base = mmap(nullptr, kFiberStack + page, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED)
            die("out of memory for fiber stacks");
        mprotect(base, page, PROT_NONE); // stacks grow down, into this page
        fiber_stack[i] = (char *)base + page;
    }
    return fiber_stack[i];
}

#ifdef EMU_ASAN
void *scheduler_fake_stack, *fiber_fake_stack[kMaxThreads];
const void *scheduler_stack_bottom;
size_t scheduler_stack_size;
// On the fiber, after a switch to it.
void fiber_arrived() {
    __sanitizer_finish_switch_fiber(fiber_fake_stack[current], &scheduler_stack_bottom,
                                    &scheduler_stack_size);
}
// On the fiber, before it switches to the scheduler.
void fiber_leaving() {
    __sanitizer_start_switch_fiber(&fiber_fake_stack[current], scheduler_stack_bottom,
                                   scheduler_stack_size);
}
#else
void fiber_arrived() {}
void fiber_leaving() {}
#endif

// The switching functions are not instrumented by ASan: a jump here leaves
// no frame behind for good (the fiber's frames wait for its return), so the
// stack need not be unpoisoned, and ASan knows of the switch (above).
// __builtin_longjmp may not be in the function that calls __builtin_setjmp.
// They are opaque to the optimizer too (noipa): it must not conclude from
// their bodies that a switch leaves the scheduler's state or the shuffle
// slots unchanged, for other fibers change them in between.
#if defined(__GNUC__) && !defined(__clang__)
#define EMU_SWITCH __attribute__((noinline, noipa, no_sanitize_address))
#else
#define EMU_SWITCH __attribute__((noinline, no_sanitize_address))
#endif

EMU_SWITCH void jump(jump_buffer buffer) {
    EMU_LONGJMP(buffer);
}

EMU_SWITCH void yield(State s) {
    EMU_SAVE_REGISTERS();
    state[current] = s;
    if (!EMU_SETJMP(fiber_jump[current])) {
        fiber_leaving();
        jump(scheduler_jump);
    }
    fiber_arrived();
}

EMU_SWITCH void fiber_main() {
    fiber_arrived();
    for (;;) {
        (*block_body)();
        yield(DONE); // resumed for the next block
    }
}

EMU_SWITCH void resume(int i) {
    EMU_SAVE_REGISTERS();
#ifdef EMU_ASAN
    __sanitizer_start_switch_fiber(&scheduler_fake_stack, stack_of(i), kFiberStack);
#endif
    if (EMU_SETJMP(scheduler_jump)) {
#ifdef EMU_ASAN
        __sanitizer_finish_switch_fiber(scheduler_fake_stack, nullptr, nullptr);
#endif
        return; // the fiber yielded, or finished its block
    }
    if (started[i])
        jump(fiber_jump[i]);
    started[i] = true;
    getcontext(&fibers[i]);
    fibers[i].uc_stack.ss_sp = stack_of(i);
    fibers[i].uc_stack.ss_size = kFiberStack;
    fibers[i].uc_link = nullptr; // fiber_main never returns
    makecontext(&fibers[i], fiber_main, 0);
    swapcontext(&scheduler, &fibers[i]);
    die("a fiber returned through its context");
}

unsigned long long kernel_launches, blocks_run, captures, graph_launches, matmuls, deferred_ops,
    event_waits;

} // namespace

// The static __shared__ variables of every kernel linked in (gathered by
// emulate_shared.ld, which defines the bounds; null without it).
extern "C" unsigned char cnx_emu_shared_begin[] __attribute__((weak));
extern "C" unsigned char cnx_emu_shared_end[] __attribute__((weak));

namespace {

// Before each block: shared memory the block has not written reads as NaN,
// as garbage would on a GPU, not as the previous block's values.
void poison_shared_memory() {
    const size_t statics = (size_t)(cnx_emu_shared_end - cnx_emu_shared_begin);
#ifdef EMU_ASAN
    // ASan's redzones between the variables are shared memory here too.
    static bool unpoisoned = false;
    if (!unpoisoned)
        __asan_unpoison_memory_region(cnx_emu_shared_begin, statics);
    unpoisoned = true;
#endif
    if (statics)
        memset(cnx_emu_shared_begin, 0xff, statics);
    memset(shared_memory.data(), 0xff, shared_memory.size());
}

void run_block() {
    const int n = threads_in_block;
    // Fibers parked on another thread's run are started afresh here.
    if (!fibers_thread_set || !pthread_equal(fibers_thread, pthread_self())) {
        for (int i = 0; i < kMaxThreads; i++)
            started[i] = false;
        fibers_thread = pthread_self();
        fibers_thread_set = true;
    }
    for (int i = 0; i < n; i++)
        state[i] = RUNNABLE;
    poison_shared_memory();
    blocks_run++;
    for (;;) {
        bool ran = false;
        next_sweep_order(n);
        for (int k = 0; k < n; k++) {
            const int i = sweep_order[k];
            if (state[i] != RUNNABLE)
                continue;
            current = i;
            emu::thread_index = dim3((unsigned)i, 0, 0);
            ran = true;
            resume(i);
        }
        // Release a warp whose 32 lanes all wait at a shuffle.
        for (int w = 0; w < n; w += 32) {
            int waiting = 0, done = 0;
            for (int i = w; i < w + 32; i++) {
                waiting += state[i] == WARP_WAIT;
                done += state[i] == DONE;
            }
            if (waiting == 32) {
                for (int i = w; i < w + 32; i++)
                    state[i] = RUNNABLE;
                ran = true;
            } else if (waiting && done) {
                die("a warp shuffle with lanes that have returned");
            }
        }
        int at_barrier = 0, done = 0, runnable = 0, at_warp = 0;
        for (int i = 0; i < n; i++) {
            at_barrier += state[i] == BLOCK_WAIT;
            done += state[i] == DONE;
            runnable += state[i] == RUNNABLE;
            at_warp += state[i] == WARP_WAIT;
        }
        if (done == n)
            return;
        if (at_barrier == n) {
            for (int i = 0; i < n; i++)
                state[i] = RUNNABLE;
            continue;
        }
        if (!runnable && !ran) {
            fprintf(stderr, "emulation: block (%u, %u, %u): %d threads at __syncthreads, %d "
                    "returned, %d at a shuffle\n", emu::block_index.x, emu::block_index.y,
                    emu::block_index.z, at_barrier, done, at_warp);
            die("threads of a block split at a barrier");
        }
    }
}

int last_error = cudaSuccess;

} // namespace

void emu::syncthreads() {
    yield(BLOCK_WAIT);
}

void emu::shuffle_xor(const void *value, void *result, size_t size, int lane_mask) {
    if (size > sizeof slots[0])
        die("shuffle of a value over 16 bytes");
    const int me = current;
    memcpy(slots[me], value, size);
    yield(WARP_WAIT); // every lane has stored its value
    memcpy(result, slots[(me & ~31) | ((me & 31) ^ lane_mask)], size);
    yield(WARP_WAIT); // every lane has read before the next shuffle stores
}

// ------------------------------------------------------ streams and events

struct CUgraph_st {
    std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> ops;
};
struct CUstream_st {
    uint64_t id;
    bool blocking;        // created without cudaStreamNonBlocking
    bool dead = false;    // destroyed (kept, so that a later use is caught)
    bool capturing = false;
    cudaStreamCaptureMode capture_mode = cudaStreamCaptureModeGlobal;
    bool capture_invalidated = false; // a refused call during the capture
    bool running = false; // one of its ops is running now
    CUgraph_st *graph = nullptr;
    uint64_t submitted = 0, completed = 0; // ops queued / run, ever
    std::deque<std::function<void()>> pending;
};
struct CUevent_st {
    bool dead = false;
    bool recorded = false;
    uint64_t stream_id = 0; // 0: the legacy stream
    uint64_t target = 0;    // complete once the stream has run this many ops
};

namespace {

enum Mode { SYNC, DEFERRED, RANDOM };
Mode mode = SYNC;
uint64_t random_state = 1;
bool mode_read = false;

CUstream_st make_legacy_stream() {
    CUstream_st s;
    s.id = 0;
    s.blocking = true;
    return s;
}

uint64_t next_stream_id = 1;
std::map<uint64_t, CUstream_st *> streams; // live ones, by id; 0 is the legacy stream
CUstream_st legacy_stream = make_legacy_stream();
std::vector<std::unique_ptr<CUstream_st>> dead_streams;
std::set<CUevent_st *> events; // live ones
std::vector<std::unique_ptr<CUevent_st>> dead_events;
long live_graphs, live_execs;

void set_mode(const char *m) {
    if (!m || !*m || strcmp(m, "sync") == 0) {
        mode = SYNC;
    } else if (strcmp(m, "deferred") == 0) {
        mode = DEFERRED;
    } else if (strncmp(m, "random:", 7) == 0) {
        mode = RANDOM;
        random_state = seeded(m + 7, "the stream mode");
    } else {
        die("unknown stream mode (sync, deferred, random:SEED)");
    }
    mode_read = true;
}

void read_mode() {
    if (!mode_read)
        set_mode(getenv("CNX_EMULATE_STREAMS"));
}

uint64_t next_random() {
    return xorshift(random_state);
}

void check_stream(cudaStream_t s, const char *call) {
    if (s && s->dead) {
        fprintf(stderr, "emulation: %s on a destroyed stream\n", call);
        die("use of a destroyed stream");
    }
}

void check_event(cudaEvent_t e, const char *call) {
    if (!e || e->dead || !events.count(e)) {
        fprintf(stderr, "emulation: %s on a %s event\n", call, !e ? "NULL" : "destroyed or unknown");
        die("use of a bad event");
    }
}

int ops_depth = 0; // > 0 while a stream op runs

CUstream_st *legacy() {
    streams[0] = &legacy_stream;
    return &legacy_stream;
}

// Whether a capture that refuses unsafe calls is under way.
bool strict_capture() {
    for (auto &kv : streams)
        if (kv.second->capturing && kv.second->capture_mode != cudaStreamCaptureModeRelaxed)
            return true;
    return false;
}

// A call that stream capture refuses: every strict capture is invalidated,
// and the call fails with `error`.
cudaError_t refused_in_capture(cudaError_t error) {
    for (auto &kv : streams)
        if (kv.second->capturing && kv.second->capture_mode != cudaStreamCaptureModeRelaxed)
            kv.second->capture_invalidated = true;
    last_error = error;
    return error;
}

void run_one(CUstream_st *s) {
    std::function<void()> op = std::move(s->pending.front());
    s->pending.pop_front();
    s->running = true;
    ops_depth++;
    op();
    ops_depth--;
    s->running = false;
    s->completed++;
    deferred_ops++;
}

// Runs stream `id`'s work until `target` ops have run. A destroyed stream
// ran all of its work when it was destroyed.
void run_until(uint64_t id, uint64_t target) {
    auto it = streams.find(id);
    if (it == streams.end())
        return;
    CUstream_st *s = it->second;
    while (s->completed < target) {
        if (s->running)
            die("a cycle of stream waits (two streams each waiting for the other's later work)");
        if (s->pending.empty())
            die("internal: a stream's queue is shorter than its count");
        run_one(s);
    }
}

void flush(CUstream_st *s) {
    run_until(s->id, s->submitted);
}

void flush_all() {
    std::vector<uint64_t> ids;
    for (auto &kv : streams)
        ids.push_back(kv.first);
    for (uint64_t id : ids) {
        auto it = streams.find(id);
        if (it != streams.end())
            flush(it->second);
    }
}

// "random": some progress on some stream, as a GPU makes while the host works.
void maybe_progress() {
    if (mode != RANDOM || ops_depth > 0 || streams.empty())
        return;
    if (next_random() % 3 != 0)
        return;
    std::vector<CUstream_st *> busy;
    for (auto &kv : streams)
        if (!kv.second->pending.empty() && !kv.second->capturing)
            busy.push_back(kv.second);
    if (busy.empty())
        return;
    CUstream_st *s = busy[next_random() % busy.size()];
    const uint64_t steps = 1 + next_random() % s->pending.size();
    run_until(s->id, s->completed + steps);
}

// A fault injected by emu_fail_call: the named call fails once, after
// `fail_after` more calls of it have gone through.
std::string fail_name;
long fail_after;
cudaError_t fail_error;

bool inject(const char *call, cudaError_t *error) {
    if (fail_name.empty() || fail_name != call)
        return false;
    if (fail_after-- > 0)
        return false;
    fail_name.clear();
    *error = fail_error;
    last_error = fail_error;
    return true;
}

#define EMU_INJECT(call)                                                       \
    do {                                                                       \
        cudaError_t injected_;                                                 \
        if (inject(call, &injected_))                                          \
            return injected_;                                                  \
    } while (0)

void enqueue(CUstream_st *s, std::function<void()> op) {
    s->pending.push_back(std::move(op));
    s->submitted++;
}

// CUDA's implicit ordering around the legacy stream, as a wait queued before
// an op of s: legacy work waits for the blocking streams' work queued so
// far; a blocking stream's work waits for the legacy stream's.
void enqueue_implicit_waits(CUstream_st *s) {
    if (s->id == 0) {
        std::vector<std::pair<uint64_t, uint64_t>> targets;
        for (auto &kv : streams)
            if (kv.first != 0 && kv.second->blocking && kv.second->completed < kv.second->submitted)
                targets.emplace_back(kv.first, kv.second->submitted);
        if (!targets.empty())
            enqueue(s, [targets]() {
                for (const auto &t : targets)
                    run_until(t.first, t.second);
            });
    } else if (s->blocking) {
        CUstream_st *l = legacy();
        if (l->completed < l->submitted) {
            const uint64_t target = l->submitted;
            enqueue(s, [target]() { run_until(0, target); });
        }
    }
}

// Runs op now, queues it on the stream, or records it when the stream is
// being captured. An op for the legacy stream during a strict capture is
// refused (last_error), as CUDA refuses it.
void submit(cudaStream_t stream, std::function<void()> op) {
    read_mode();
    if (stream && stream->capturing) {
        stream->graph->ops.push_back(std::move(op));
        return;
    }
    if (!stream && strict_capture()) {
        refused_in_capture(cudaErrorStreamCaptureImplicit);
        return;
    }
    CUstream_st *s = stream ? stream : legacy();
    if (mode != SYNC)
        enqueue_implicit_waits(s);
    enqueue(s, std::move(op));
    if (mode == SYNC)
        flush(s);
    else
        maybe_progress();
}

// ---------------------------------------------------------------- memory

struct Mapping {
    void *base;
    size_t length;
    size_t bytes; // what was asked for
};
std::map<uintptr_t, Mapping> allocations;      // device: user pointer -> mapping
std::map<uintptr_t, Mapping> host_allocations; // page-locked host memory

size_t page_size() {
    static const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

// The mapping of map that holds p, or nullptr.
const std::pair<const uintptr_t, Mapping> *find(const std::map<uintptr_t, Mapping> &map,
                                                const void *p) {
    const uintptr_t a = (uintptr_t)p;
    auto it = map.upper_bound(a);
    if (it == map.begin())
        return nullptr;
    --it;
    const uintptr_t end = (uintptr_t)it->second.base + it->second.length - page_size();
    return a >= it->first && a < end ? &*it : nullptr;
}

// Whether [p, p + bytes) lies inside what was asked for (not only inside
// the rounded-up allocation).
bool in_mapping(const std::map<uintptr_t, Mapping> &map, const void *p, size_t bytes) {
    const auto *m = find(map, p);
    return m && (uintptr_t)p - m->first <= m->second.bytes &&
           bytes <= m->second.bytes - ((uintptr_t)p - m->first);
}

bool is_device(const void *p, size_t bytes) {
    return in_mapping(allocations, p, bytes);
}

// user bytes, `round`-byte aligned, ending at an inaccessible page.
void *map_guarded(std::map<uintptr_t, Mapping> &map, size_t bytes, size_t round, int fill) {
    const size_t page = page_size();
    const size_t rounded = (bytes + round - 1) / round * round;
    const size_t length = (rounded + page - 1) / page * page + page;
    void *base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return nullptr;
    unsigned char *guard = (unsigned char *)base + length - page;
    mprotect(guard, page, PROT_NONE);
    unsigned char *user = guard - rounded;
    memset(user, fill, rounded);
    map[(uintptr_t)user] = {base, length, bytes};
    return user;
}

// A host pointer of a copy: page-locked (then the range must lie inside its
// allocation) or pageable. Returns whether it is page-locked.
bool check_host(const void *p, size_t bytes, const char *what) {
    if (find(allocations, p)) {
        fprintf(stderr, "emulation: cudaMemcpy: the %s is device memory, the kind says host\n", what);
        die("cudaMemcpy: a pointer is not on the side its kind says");
    }
    const auto *m = find(host_allocations, p);
    if (!m)
        return false;
    if (!in_mapping(host_allocations, p, bytes)) {
        fprintf(stderr, "emulation: cudaMemcpy: the %s (%zu bytes at offset %zu) runs past its "
                "page-locked allocation of %zu bytes\n", what, bytes,
                (size_t)((uintptr_t)p - m->first), m->second.bytes);
        die("cudaMemcpy: a host range runs past its page-locked allocation");
    }
    return true;
}

// Guard zones (emu_device_guard): start -> bytes, inside device
// allocations. Their whole pages are inaccessible; the bytes around those
// (a zone need not start or end on a page) hold kGuardFill, checked after
// each kernel and GEMM.
std::map<uintptr_t, size_t> guard_zones;
constexpr unsigned char kGuardFill = 0xff;

// The guard zone that [p, p + bytes) overlaps, or nullptr.
const std::pair<const uintptr_t, size_t> *guard_overlap(const void *p, size_t bytes) {
    const uintptr_t a = (uintptr_t)p;
    auto it = guard_zones.lower_bound(a + bytes); // zones do not overlap: only the last
    if (it == guard_zones.begin())                // one that starts before the end can
        return nullptr;
    --it;
    return it->first + it->second > a ? &*it : nullptr;
}

// The whole pages of [a, a + bytes): [*lo, *hi), empty when there are none.
void whole_pages(uintptr_t a, size_t bytes, uintptr_t *lo, uintptr_t *hi) {
    const size_t page = page_size();
    *lo = (a + page - 1) / page * page;
    *hi = std::max(*lo, (a + bytes) / page * page);
}

// Whether [p, p + bytes) is all kGuardFill; else *changed is the first byte that is not.
bool filled(const unsigned char *p, size_t bytes, const unsigned char **changed) {
    for (size_t i = 0; i < bytes; i++)
        if (p[i] != kGuardFill) {
            *changed = p + i;
            return false;
        }
    return true;
}

// Dies when something wrote into the accessible bytes of a guard zone.
void check_guard_zones(const char *what) {
    for (const auto &z : guard_zones) {
        uintptr_t lo, hi;
        whole_pages(z.first, z.second, &lo, &hi);
        const unsigned char *start = (const unsigned char *)z.first, *changed = nullptr;
        const uintptr_t end = z.first + z.second;
        const bool intact = hi > lo ? filled(start, lo - z.first, &changed) &&
                                          filled((const unsigned char *)hi, end - hi, &changed)
                                    : filled(start, z.second, &changed);
        if (intact)
            continue;
        const auto *m = find(allocations, start);
        fprintf(stderr, "emulation: %s wrote byte %zu of the %zu-byte guard zone after the "
                "buffer that ends at offset %zu of a device allocation\n", what,
                (size_t)(changed - start), z.second, (size_t)(z.first - m->first));
        die("a write past an arena buffer, into its guard zone");
    }
}

void check_device(const void *p, size_t bytes, const char *what) {
    if (const auto *z = guard_overlap(p, bytes)) {
        fprintf(stderr, "emulation: cudaMemcpy: the %s (%zu bytes) runs into the guard zone at "
                "offset %zu of its allocation\n", what, bytes,
                (size_t)(z->first - find(allocations, p)->first));
        die("cudaMemcpy: a device range runs into a guard zone");
    }
    if (is_device(p, bytes))
        return;
    const auto *m = find(allocations, p);
    if (m)
        fprintf(stderr, "emulation: cudaMemcpy: the %s (%zu bytes at offset %zu) runs past its "
                "allocation of %zu bytes\n", what, bytes, (size_t)((uintptr_t)p - m->first),
                m->second.bytes);
    else
        fprintf(stderr, "emulation: cudaMemcpy: the %s (%p) is not device memory, the kind says "
                "device\n", what, p);
    die("cudaMemcpy: a pointer is not on the side its kind says");
}

} // namespace

/* What ran, for the log: proves the graph path was taken. */
extern "C" void emu_report(void) {
    printf("emulation: %llu kernel launches (%llu blocks), %llu cuBLASLt matmuls, %llu graphs "
           "captured, %llu graph launches, %llu stream ops run, %llu event waits\n",
           kernel_launches, blocks_run, matmuls, captures, graph_launches, deferred_ops,
           event_waits);
}

/* sync (the default, or $CNX_EMULATE_STREAMS), deferred, or random:SEED. */
extern "C" void emu_set_stream_mode(const char *m) {
    EMU_LOCK;
    flush_all();
    set_mode(m);
}

/* forward (the default, or $CNX_EMU_THREAD_ORDER), reverse, or random:SEED. */
extern "C" void emu_set_thread_order(const char *order) {
    EMU_LOCK;
    set_thread_order(order);
}

/* How many guard zones there are; the lowest-addressed one in *first and
 * *first_bytes (either may be NULL). */
extern "C" long emu_guard_zones(void **first, size_t *first_bytes) {
    EMU_LOCK;
    if (first)
        *first = guard_zones.empty() ? nullptr : (void *)guard_zones.begin()->first;
    if (first_bytes)
        *first_bytes = guard_zones.empty() ? 0 : guard_zones.begin()->second;
    return (long)guard_zones.size();
}

/* Makes `call` ("cudaMemcpyAsync", "cudaEventRecord", "cudaEventSynchronize",
 * "cudaStreamWaitEvent", "cudaStreamSynchronize", "cudaMalloc",
 * "cudaHostAlloc", "cudaFuncGetAttributes", "kernel launch", "cublasLtMatmul",
 * "cnx_cublaslt_load") fail once with `error` after `after` more calls of it
 * have succeeded, as a device fault would (but not sticky). NULL: no fault. */
extern "C" void emu_fail_call(const char *call, long after, int error) {
    EMU_LOCK;
    fail_name = call ? call : "";
    fail_after = after;
    fail_error = (cudaError_t)error;
}

/* How many devices the emulation has (1 to 8; 1 at first). */
extern "C" void emu_set_device_count(int count) {
    EMU_LOCK;
    if (count < 1 || count > 8)
        die("emu_set_device_count: 1 to 8 devices");
    device_count = count;
}

/* The devices that a context was made on since the last call (bit d for
 * device d): allocations, streams, events and launches make one. */
extern "C" unsigned emu_devices_touched(void) {
    EMU_LOCK;
    const unsigned touched = devices_touched;
    devices_touched = 0;
    return touched;
}

/* What is still allocated or alive in the emulated runtime: for leak checks.
 * Any pointer may be NULL. */
extern "C" void emu_live(long *device_allocations, long *host_allocations_out, long *streams_out,
                         long *events_out, long *graphs_out) {
    EMU_LOCK;
    if (device_allocations)
        *device_allocations = (long)allocations.size();
    if (host_allocations_out)
        *host_allocations_out = (long)host_allocations.size();
    if (streams_out)
        *streams_out = (long)(streams.size() - streams.count(0)); // not the legacy stream
    if (events_out)
        *events_out = (long)events.size();
    if (graphs_out)
        *graphs_out = live_graphs + live_execs;
}

void emu::launch(dim3 grid, dim3 block, size_t shared, cudaStream_t stream,
                 std::function<void()> body) {
    EMU_LOCK;
    read_thread_order();
    check_stream(stream, "kernel launch");
    touch_device();
    if (block.y != 1 || block.z != 1)
        die("a 2D or 3D block (not emulated: the kernels use 1D blocks)");
    if (block.x < 1 || block.x > 1024 || grid.x < 1 || grid.x > 0x7fffffffu || grid.y < 1 ||
        grid.y > 65535 || grid.z < 1 || grid.z > 65535 || shared > 48 * 1024) {
        last_error = cudaErrorInvalidConfiguration;
        return;
    }
    if (block.x % 32)
        die("a block that is not whole warps (the kernels assume whole warps)");
    cudaError_t injected;
    if (inject("kernel launch", &injected))
        return;
    submit(stream, [grid, block, shared, body]() {
        kernel_launches++;
        std::function<void()> run = body;
        block_body = &run;
        emu::grid_dim = grid;
        emu::block_dim = block;
        threads_in_block = (int)block.x;
        shared_memory.assign(shared ? shared : 1, 0xff); // uninitialized: NaN
        emu::dynamic_shared = shared_memory.data();
        for (unsigned z = 0; z < grid.z; z++)
            for (unsigned y = 0; y < grid.y; y++)
                for (unsigned x = 0; x < grid.x; x++) {
                    emu::block_index = dim3(x, y, z);
                    run_block();
                }
        check_guard_zones("a kernel");
    });
}

extern "C" {

const char *emu_cudaGetErrorString(cudaError_t e) {
    return e == cudaSuccess ? "no error" : "emulated CUDA error";
}
const char *emu_cudaGetErrorName(cudaError_t e) {
    static char name[32];
    snprintf(name, sizeof name, "cudaError %d", (int)e);
    return name;
}

// ------------------------------------------------- the emulated device

cudaError_t emu_cudaGetDeviceCount(int *count) {
    *count = device_count;
    return cudaSuccess;
}
cudaError_t emu_cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    if (device < 0 || device >= device_count)
        return last_error = cudaErrorInvalidDevice, cudaErrorInvalidDevice;
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "Emulated CUDA device (CPU)");
    prop->major = 9;
    prop->minor = 0;
    prop->totalGlobalMem = (size_t)80 << 30;
    prop->sharedMemPerBlock = 48 * 1024;
    prop->sharedMemPerBlockOptin = 227 * 1024;
    prop->regsPerBlock = 65536;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 0x7fffffff;
    prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
    prop->multiProcessorCount = 132;
    prop->maxThreadsPerMultiProcessor = 2048;
    prop->unifiedAddressing = 1;
    return cudaSuccess;
}
cudaError_t emu_cudaSetDevice(int device) {
    if (device < 0 || device >= device_count)
        return last_error = cudaErrorInvalidDevice, cudaErrorInvalidDevice;
    current_device = device;
    return cudaSuccess;
}
cudaError_t emu_cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
    if (device < 0 || device >= device_count)
        return last_error = cudaErrorInvalidDevice, cudaErrorInvalidDevice;
    *value = attr == cudaDevAttrComputeCapabilityMajor ? 9 : 0;
    return cudaSuccess;
}
// Every kernel has an image for the emulated device, unless a fault says
// otherwise (cudaErrorNoKernelImageForDevice: a build without sm_90).
cudaError_t emu_cudaFuncGetAttributes(cudaFuncAttributes *attributes, const void *func) {
    EMU_LOCK;
    if (!func)
        return last_error = cudaErrorInvalidDeviceFunction, cudaErrorInvalidDeviceFunction;
    EMU_INJECT("cudaFuncGetAttributes");
    memset(attributes, 0, sizeof *attributes);
    attributes->maxThreadsPerBlock = 1024;
    attributes->ptxVersion = attributes->binaryVersion = 90;
    return cudaSuccess;
}

// ------------------------------------------------------------- streams

cudaError_t emu_cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned flags) {
    EMU_LOCK;
    if (flags & ~(unsigned)cudaStreamNonBlocking)
        return last_error = cudaErrorInvalidValue, cudaErrorInvalidValue;
    touch_device();
    CUstream_st *s = new CUstream_st;
    s->id = next_stream_id++;
    s->blocking = !(flags & cudaStreamNonBlocking);
    streams[s->id] = s;
    *stream = s;
    return cudaSuccess;
}
cudaError_t emu_cudaStreamCreate(cudaStream_t *stream) {
    return emu_cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}
cudaError_t emu_cudaStreamDestroy(cudaStream_t stream) {
    EMU_LOCK;
    if (!stream || stream->capturing)
        die("destroying a NULL or capturing stream");
    check_stream(stream, "cudaStreamDestroy");
    if (stream->running)
        die("destroying a stream from its own work");
    // CUDA finishes the work already queued, then releases the stream.
    flush(stream);
    stream->dead = true;
    streams.erase(stream->id);
    dead_streams.emplace_back(stream);
    return cudaSuccess;
}
cudaError_t emu_cudaStreamSynchronize(cudaStream_t stream) {
    EMU_LOCK;
    check_stream(stream, "cudaStreamSynchronize");
    if (stream && stream->capturing)
        return refused_in_capture(cudaErrorStreamCaptureUnsupported);
    if (!stream && strict_capture())
        return refused_in_capture(cudaErrorStreamCaptureImplicit);
    EMU_INJECT("cudaStreamSynchronize");
    if (!stream)
        submit(nullptr, []() {}); // the legacy stream's point includes the blocking streams' work
    flush(stream ? stream : legacy());
    return cudaSuccess;
}
cudaError_t emu_cudaStreamQuery(cudaStream_t stream) {
    EMU_LOCK;
    check_stream(stream, "cudaStreamQuery");
    if (stream && stream->capturing)
        return refused_in_capture(cudaErrorStreamCaptureUnsupported);
    maybe_progress();
    return (stream ? stream : legacy())->pending.empty() ? cudaSuccess : cudaErrorNotReady;
}
cudaError_t emu_cudaDeviceSynchronize(void) {
    EMU_LOCK;
    if (strict_capture())
        return refused_in_capture(cudaErrorStreamCaptureUnsupported);
    flush_all();
    return cudaSuccess;
}

// -------------------------------------------------------------- events

cudaError_t emu_cudaEventCreateWithFlags(cudaEvent_t *event, unsigned flags) {
    EMU_LOCK;
    const unsigned known = cudaEventBlockingSync | cudaEventDisableTiming | cudaEventInterprocess;
    if ((flags & ~known) ||
        ((flags & cudaEventInterprocess) && !(flags & cudaEventDisableTiming)))
        return last_error = cudaErrorInvalidValue, cudaErrorInvalidValue;
    touch_device();
    CUevent_st *e = new CUevent_st;
    events.insert(e);
    *event = e;
    return cudaSuccess;
}
cudaError_t emu_cudaEventCreate(cudaEvent_t *event) {
    return emu_cudaEventCreateWithFlags(event, cudaEventDefault);
}
cudaError_t emu_cudaEventDestroy(cudaEvent_t event) {
    EMU_LOCK;
    check_event(event, "cudaEventDestroy");
    // CUDA releases a recorded event once its work is done; a wait already
    // queued keeps its own copy of where the event stood.
    event->dead = true;
    events.erase(event);
    dead_events.emplace_back(event);
    return cudaSuccess;
}
cudaError_t emu_cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    EMU_LOCK;
    read_mode();
    check_event(event, "cudaEventRecord");
    check_stream(stream, "cudaEventRecord");
    if (stream && stream->capturing)
        die("cudaEventRecord into a capturing stream (not emulated; cnx does not do it)");
    if (!stream && strict_capture())
        return refused_in_capture(cudaErrorStreamCaptureImplicit);
    EMU_INJECT("cudaEventRecord");
    if (!stream)
        submit(nullptr, []() {}); // the legacy stream's point includes the blocking streams' work
    const CUstream_st *s = stream ? stream : legacy();
    event->recorded = true;
    event->stream_id = s->id;
    event->target = s->submitted;
    maybe_progress();
    return cudaSuccess;
}
cudaError_t emu_cudaEventSynchronize(cudaEvent_t event) {
    EMU_LOCK;
    check_event(event, "cudaEventSynchronize");
    if (!event->recorded)
        die("cudaEventSynchronize on an event never recorded (CUDA returns at once: a missing "
            "cudaEventRecord would go unnoticed)");
    EMU_INJECT("cudaEventSynchronize");
    event_waits++;
    run_until(event->stream_id, event->target);
    return cudaSuccess;
}
cudaError_t emu_cudaEventQuery(cudaEvent_t event) {
    EMU_LOCK;
    check_event(event, "cudaEventQuery");
    maybe_progress();
    if (!event->recorded)
        return cudaSuccess;
    auto it = streams.find(event->stream_id);
    return it == streams.end() || it->second->completed >= event->target ? cudaSuccess
                                                                          : cudaErrorNotReady;
}
cudaError_t emu_cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags) {
    EMU_LOCK;
    check_stream(stream, "cudaStreamWaitEvent");
    check_event(event, "cudaStreamWaitEvent");
    if (flags != 0)
        return last_error = cudaErrorInvalidValue, cudaErrorInvalidValue;
    if (!event->recorded)
        die("cudaStreamWaitEvent on an event never recorded (CUDA does not wait at all: a missing "
            "cudaEventRecord would go unnoticed)");
    if (stream && stream->capturing)
        die("cudaStreamWaitEvent in a capturing stream (not emulated; cnx does not do it)");
    EMU_INJECT("cudaStreamWaitEvent");
    if (stream && event->stream_id == stream->id)
        return cudaSuccess; // a stream is ordered with itself
    const uint64_t id = event->stream_id, target = event->target;
    event_waits++;
    submit(stream, [id, target]() { run_until(id, target); });
    return cudaSuccess;
}

// -------------------------------------------------------------- memory

cudaError_t emu_cudaMalloc(void **p, size_t bytes) {
    EMU_LOCK;
    if (strict_capture())
        return refused_in_capture(cudaErrorStreamCaptureUnsupported);
    touch_device();
    EMU_INJECT("cudaMalloc");
    // 256-byte aligned, ending at an inaccessible page, filled with NaN bytes.
    *p = map_guarded(allocations, bytes, 256, 0xff);
    if (!*p)
        return last_error = cudaErrorMemoryAllocation, cudaErrorMemoryAllocation;
    return cudaSuccess;
}
cudaError_t emu_cudaFree(void *p) {
    EMU_LOCK;
    if (!p)
        return cudaSuccess;
    if (strict_capture())
        return refused_in_capture(cudaErrorStreamCaptureUnsupported);
    auto it = allocations.find((uintptr_t)p);
    if (it == allocations.end())
        die(host_allocations.count((uintptr_t)p) ? "cudaFree of page-locked host memory (use cudaFreeHost)"
                                                 : "cudaFree of a pointer cudaMalloc did not return");
    flush_all(); // cudaFree synchronizes the device
    munmap(it->second.base, it->second.length); // and with it the zones' protection
    guard_zones.erase(guard_zones.lower_bound(it->first),
                      guard_zones.lower_bound(it->first + it->second.bytes));
    allocations.erase(it);
    return cudaSuccess;
}

void emu_device_guard(void *zone, size_t bytes) {
    EMU_LOCK;
    if (!bytes || !is_device(zone, bytes) || guard_overlap(zone, bytes))
        die("a guard zone outside the device allocations, or over another one");
    memset(zone, kGuardFill, bytes);
    uintptr_t lo, hi;
    whole_pages((uintptr_t)zone, bytes, &lo, &hi);
    if (hi > lo && mprotect((void *)lo, hi - lo, PROT_NONE) != 0)
        die("mprotect of a guard zone failed");
    guard_zones[(uintptr_t)zone] = bytes;
}
cudaError_t emu_cudaHostAlloc(void **p, size_t bytes, unsigned flags) {
    EMU_LOCK;
    const unsigned known = cudaHostAllocPortable | cudaHostAllocMapped | cudaHostAllocWriteCombined;
    if (flags & ~known)
        return last_error = cudaErrorInvalidValue, cudaErrorInvalidValue;
    if (strict_capture())
        return refused_in_capture(cudaErrorStreamCaptureUnsupported);
    touch_device();
    if (bytes == 0) { // cnx never asks for 0 bytes (host_memory_alloc makes it 1)
        *p = nullptr;
        return last_error = cudaErrorInvalidValue, cudaErrorInvalidValue;
    }
    EMU_INJECT("cudaHostAlloc");
    // Filled with 0xbe: memory nobody wrote is not quietly zero.
    *p = map_guarded(host_allocations, bytes, 16, 0xbe);
    if (!*p)
        return last_error = cudaErrorMemoryAllocation, cudaErrorMemoryAllocation;
    return cudaSuccess;
}
cudaError_t emu_cudaMallocHost(void **p, size_t bytes) {
    return emu_cudaHostAlloc(p, bytes, cudaHostAllocDefault);
}
cudaError_t emu_cudaFreeHost(void *p) {
    EMU_LOCK;
    if (!p)
        return cudaSuccess;
    if (strict_capture())
        return refused_in_capture(cudaErrorStreamCaptureUnsupported);
    auto it = host_allocations.find((uintptr_t)p);
    if (it == host_allocations.end())
        die(allocations.count((uintptr_t)p) ? "cudaFreeHost of device memory (use cudaFree)"
                                            : "cudaFreeHost of a pointer cudaHostAlloc did not return");
    flush_all(); // as cudaFree: the copies that use it are done first
    munmap(it->second.base, it->second.length);
    host_allocations.erase(it);
    return cudaSuccess;
}
cudaError_t emu_cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                                cudaStream_t stream) {
    EMU_LOCK;
    read_mode();
    check_stream(stream, "cudaMemcpyAsync");
    if (!stream && strict_capture())
        return refused_in_capture(cudaErrorStreamCaptureImplicit);
    EMU_INJECT("cudaMemcpyAsync");
    if (bytes == 0)
        return cudaSuccess; // CUDA copies nothing and checks no pointer
    if (kind == cudaMemcpyDefault) // unified addressing: the pointers say
        kind = is_device(dst, 1) ? (is_device(src, 1) ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                 : (is_device(src, 1) ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
    const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (dst_device)
        check_device(dst, bytes, "destination");
    if (src_device)
        check_device(src, bytes, "source");
    const bool dst_pinned = !dst_device && check_host(dst, bytes, "destination");
    const bool src_pinned = !src_device && check_host(src, bytes, "source");
    const bool capturing = stream && stream->capturing;
    if (capturing && ((!dst_device && !dst_pinned) || (!src_device && !src_pinned)))
        die("cudaMemcpyAsync with pageable host memory in a stream capture (CUDA refuses it)");
    if (mode != SYNC && !capturing) {
        if (!src_device && !src_pinned) {
            // Pageable source: CUDA stages it before the call returns.
            auto staged = std::make_shared<std::vector<unsigned char>>(
                (const unsigned char *)src, (const unsigned char *)src + bytes);
            submit(stream, [=]() { memcpy(dst, staged->data(), bytes); });
            return cudaSuccess;
        }
        if (!dst_device)
            memset(dst, 0xff, bytes); // not there until the stream is waited for
    }
    submit(stream, [=]() { memcpy(dst, src, bytes); });
    return cudaSuccess;
}
// On the legacy stream; returns once the copy is done, except from pageable
// host memory to the device (staged, the DMA still to come) and from device
// to device (no host synchronization), as CUDA's synchronous cudaMemcpy.
cudaError_t emu_cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    EMU_LOCK;
    const cudaError_t queued = emu_cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
    if (queued != cudaSuccess || bytes == 0)
        return queued;
    const bool src_device = kind == cudaMemcpyDefault ? is_device(src, 1)
                            : kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    const bool dst_device = kind == cudaMemcpyDefault ? is_device(dst, 1)
                            : kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool staged = !src_device && dst_device && !find(host_allocations, src);
    if (!staged && !(src_device && dst_device))
        flush(legacy());
    return cudaSuccess;
}
cudaError_t emu_cudaGetLastError(void) {
    const cudaError_t e = (cudaError_t)last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t emu_cudaPeekAtLastError(void) {
    return (cudaError_t)last_error;
}

// ------------------------------------------------------------- graphs

cudaError_t emu_cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode capture_mode) {
    EMU_LOCK;
    check_stream(stream, "cudaStreamBeginCapture");
    if (!stream)
        return last_error = cudaErrorStreamCaptureUnsupported, cudaErrorStreamCaptureUnsupported;
    if (stream->capturing)
        return last_error = cudaErrorIllegalState, cudaErrorIllegalState;
    stream->capturing = true;
    stream->capture_mode = capture_mode;
    stream->capture_invalidated = false;
    stream->graph = new CUgraph_st;
    live_graphs++;
    return cudaSuccess;
}
cudaError_t emu_cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
    EMU_LOCK;
    check_stream(stream, "cudaStreamEndCapture");
    if (!stream || !stream->capturing)
        return cudaErrorIllegalState;
    stream->capturing = false;
    if (stream->capture_invalidated) { // CUDA gives no graph for an invalidated capture
        delete stream->graph;
        live_graphs--;
        stream->graph = nullptr;
        *graph = nullptr;
        return last_error = cudaErrorStreamCaptureInvalidated, cudaErrorStreamCaptureInvalidated;
    }
    captures++;
    *graph = stream->graph;
    stream->graph = nullptr;
    return cudaSuccess;
}
cudaError_t emu_cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status) {
    EMU_LOCK;
    check_stream(stream, "cudaStreamIsCapturing");
    *status = !stream || !stream->capturing ? cudaStreamCaptureStatusNone
              : stream->capture_invalidated ? cudaStreamCaptureStatusInvalidated
                                            : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}
cudaError_t emu_cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long) {
    EMU_LOCK;
    *exec = new CUgraphExec_st{graph->ops};
    live_execs++;
    return cudaSuccess;
}
cudaError_t emu_cudaGraphDestroy(cudaGraph_t graph) {
    EMU_LOCK;
    delete graph;
    live_graphs--;
    return cudaSuccess;
}
cudaError_t emu_cudaGraphExecDestroy(cudaGraphExec_t exec) {
    EMU_LOCK;
    // CUDA does not say a destroy is safe during a capture (it may wait for
    // the graph's launches): refused here, so cnx never relies on it.
    if (strict_capture())
        return refused_in_capture(cudaErrorStreamCaptureUnsupported);
    delete exec; // a launch already queued holds its own copy of the ops
    live_execs--;
    return cudaSuccess;
}
cudaError_t emu_cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    EMU_LOCK;
    check_stream(stream, "cudaGraphLaunch");
    if (stream && stream->capturing) // CUDA refuses it
        return refused_in_capture(cudaErrorStreamCaptureUnsupported);
    graph_launches++;
    std::vector<std::function<void()>> ops = exec->ops;
    submit(stream, [ops]() {
        for (auto &op : ops)
            op();
    });
    return cudaSuccess;
}

} // extern "C"

// ------------------------------------------------------------- cuBLASLt

namespace {

struct Desc {
    int32_t compute, scale, trans_a = CUBLAS_OP_N, trans_b = CUBLAS_OP_N;
    uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    const void *bias = nullptr;
};
struct Layout {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
};
struct Pref {
    uint64_t workspace = 0;
};

int handles;
long heuristic_calls; // one or two per GEMM a plan holds: counts plans built

size_t type_size(cudaDataType t) {
    return t == CUDA_R_32F ? 4 : 2;
}

float load(const void *p, cudaDataType t, size_t i) {
    switch (t) {
    case CUDA_R_32F: return ((const float *)p)[i];
    case CUDA_R_16F: return __half2float(((const __half *)p)[i]);
    case CUDA_R_16BF: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    default: die("unsupported matrix type");
    }
}

void store(void *p, cudaDataType t, size_t i, float v) {
    switch (t) {
    case CUDA_R_32F: ((float *)p)[i] = v; return;
    case CUDA_R_16F: ((__half *)p)[i] = __float2half_rn(v); return;
    case CUDA_R_16BF: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v); return;
    default: die("unsupported matrix type");
    }
}

// TF32: 10 mantissa bits, round to nearest even.
float to_tf32(float v) {
    uint32_t x;
    memcpy(&x, &v, 4);
    if ((x & 0x7f800000u) != 0x7f800000u)
        x = (x + 0xfffu + ((x >> 13) & 1u)) & ~0x1fffu;
    memcpy(&v, &x, 4);
    return v;
}

// The checks cuBLASLt makes (or that cnx relies on): shapes consistent with
// the operations, a supported type combination, the bias where the epilogue
// needs it. Fills m, n, k.
cublasStatus_t check(const Desc *d, const Layout *a, const Layout *b, const Layout *c,
                     const Layout *dd, uint64_t *m, uint64_t *n, uint64_t *k) {
    *m = dd->rows;
    *n = dd->cols;
    *k = d->trans_b == CUBLAS_OP_N ? b->rows : b->cols;
    const uint64_t a_rows = d->trans_a == CUBLAS_OP_N ? *m : *k;
    const uint64_t a_cols = d->trans_a == CUBLAS_OP_N ? *k : *m;
    const uint64_t b_cols = d->trans_b == CUBLAS_OP_N ? b->cols : b->rows;
    if (a->rows != a_rows || a->cols != a_cols || b_cols != *n || c->rows != *m || c->cols != *n)
        return CUBLAS_STATUS_INVALID_VALUE;
    for (const Layout *l : {a, b, c, dd})
        if (l->ld < (int64_t)l->rows)
            return CUBLAS_STATUS_INVALID_VALUE;
    if (a->type != b->type || c->type != dd->type || d->scale != CUDA_R_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const bool fp32 = a->type == CUDA_R_32F;
    if (d->compute == CUBLAS_COMPUTE_32F_FAST_TF32 && !fp32)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (d->compute != CUBLAS_COMPUTE_32F && d->compute != CUBLAS_COMPUTE_32F_FAST_TF32)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (fp32 ? dd->type != CUDA_R_32F : (dd->type != CUDA_R_32F && dd->type != a->type))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (d->epilogue != CUBLASLT_EPILOGUE_DEFAULT && d->epilogue != CUBLASLT_EPILOGUE_BIAS)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (d->epilogue == CUBLASLT_EPILOGUE_BIAS && (!d->bias || (uintptr_t)d->bias % 16))
        return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}

// The heuristic ranks `offered` distinct algorithms for every problem it
// accepts. Each is marked (an opaque cublasLtMatmulAlgo_t is 8 uint64s):
// the word ALGO_MARK, its rank, the problem it was ranked for (m, n, k and
// epilogue: a matmul given it for another problem dies) and the workspace it
// needs (rank MiB; a matmul given less refuses it, as cuBLASLt does).
enum { MAX_OFFERED = 8 };
const uint64_t ALGO_MARK = 0x636e78616c676f31ull; // "cnxalgo1"
int offered = 3;

// A GEMM the faults below apply to: m, n, k each 0 (any) or equal.
struct Gemms {
    bool on = false;
    uint64_t m = 0, n = 0, k = 0;
    bool match(uint64_t gm, uint64_t gn, uint64_t gk) const {
        return on && (!m || m == gm) && (!n || n == gn) && (!k || k == gk);
    }
};
// emu_lt_* (below): the faults of a cuBLASLt without some algorithms.
bool reject_bias;                 // no algorithm has the bias epilogue
Gemms no_results;                 // the heuristic ranks nothing for these
cublasStatus_t no_results_status; // ... and returns this
Gemms failing;                    // the `failing_ranks` best algorithms fail at run time
int failing_ranks;
cublasStatus_t failing_status;
int spoiled_first; // 1: the best result's state is not SUCCESS; 2: it needs too much workspace
long ran_by_rank[MAX_OFFERED], refused_by_rank[MAX_OFFERED];
long live_lt_objects; // preferences, descriptors, layouts

const uint64_t SPOILED_WORKSPACE = (uint64_t)1 << 40;

uint64_t algo_workspace(int rank) {
    return (uint64_t)rank << 20;
}

} // namespace

extern "C" {

// cuBLASLt is the emulation's own: nothing to open, unless a fault stands
// for a machine without the library.
cnx_status emu_cnx_cublaslt_load(void) {
    EMU_LOCK;
    cudaError_t injected;
    if (inject("cnx_cublaslt_load", &injected)) {
        last_error = cudaSuccess; // a library missing is no CUDA error
        return cnx_fail(CNX_ERROR_NO_DEVICE,
                        "cuBLASLt: %s: cannot open shared object file (emulated)",
                        CNX_CUBLASLT_SONAME);
    }
    return CNX_OK;
}

const char *emu_cublasLtGetStatusString(cublasStatus_t s) {
    static char text[48];
    snprintf(text, sizeof text, "cublasStatus %d", (int)s);
    return text;
}
cublasStatus_t emu_cublasLtCreate(cublasLtHandle_t *h) {
    *h = (cublasLtHandle_t)(uintptr_t)(0x1000 + ++handles);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtDestroy(cublasLtHandle_t) {
    handles--;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    *p = (cublasLtMatmulPreference_t) new Pref;
    live_lt_objects++;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
    delete (Pref *)p;
    live_lt_objects--;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                        cublasLtMatmulPreferenceAttributes_t attr,
                                                        const void *buf, size_t size) {
    if (attr != CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES || size != sizeof(uint64_t))
        return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(&((Pref *)p)->workspace, buf, size);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute,
                                            cudaDataType_t scale) {
    Desc *desc = new Desc;
    desc->compute = compute;
    desc->scale = scale;
    *d = (cublasLtMatmulDesc_t)desc;
    live_lt_objects++;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    delete (Desc *)d;
    live_lt_objects--;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d,
                                                  cublasLtMatmulDescAttributes_t attr,
                                                  const void *buf, size_t size) {
    Desc *desc = (Desc *)d;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
        if (size != 4) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&desc->trans_a, buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_TRANSB:
        if (size != 4) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&desc->trans_b, buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        if (size != 4) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&desc->epilogue, buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        if (size != sizeof(void *)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&desc->bias, buf, size);
        return CUBLAS_STATUS_SUCCESS;
    default:
        return CUBLAS_STATUS_INVALID_VALUE; // not one cnx sets: look again
    }
}
cublasStatus_t emu_cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType type,
                                              uint64_t rows, uint64_t cols, int64_t ld) {
    *l = (cublasLtMatrixLayout_t) new Layout{type, rows, cols, ld};
    live_lt_objects++;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    delete (Layout *)l;
    live_lt_objects--;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t d,
                                                  cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                  cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t dd,
                                                  cublasLtMatmulPreference_t pref, int requested,
                                                  cublasLtMatmulHeuristicResult_t *results,
                                                  int *returned) {
    EMU_LOCK;
    heuristic_calls++;
    const Desc *desc = (const Desc *)d;
    uint64_t m, n, k;
    const cublasStatus_t s = check(desc, (Layout *)a, (Layout *)b, (Layout *)c, (Layout *)dd, &m, &n, &k);
    *returned = 0;
    if (s != CUBLAS_STATUS_SUCCESS)
        return s;
    if (requested < 1)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (reject_bias && desc->epilogue == CUBLASLT_EPILOGUE_BIAS)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (no_results.match(m, n, k))
        return no_results_status;
    const uint64_t workspace = ((const Pref *)pref)->workspace;
    for (int rank = 0; rank < offered && *returned < requested; rank++) {
        if (algo_workspace(rank) > workspace)
            break; // the ranking only holds algorithms the preference allows
        cublasLtMatmulHeuristicResult_t *r = &results[(*returned)++];
        memset(r, 0, sizeof *r);
        const uint64_t mark[] = {ALGO_MARK, (uint64_t)rank, m, n, k, desc->epilogue,
                                 algo_workspace(rank)};
        memcpy(r->algo.data, mark, sizeof mark);
        r->workspaceSize = algo_workspace(rank);
        r->state = CUBLAS_STATUS_SUCCESS;
        r->wavesCount = 1.0f;
    }
    if (*returned && spoiled_first == 1)
        results[0].state = CUBLAS_STATUS_NOT_SUPPORTED;
    if (*returned && spoiled_first == 2)
        results[0].workspaceSize = results[0].algo.data[6] = SPOILED_WORKSPACE;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t dsc, const void *alpha,
                                  const void *A, cublasLtMatrixLayout_t al, const void *B,
                                  cublasLtMatrixLayout_t bl, const void *beta, const void *C,
                                  cublasLtMatrixLayout_t cl, void *D, cublasLtMatrixLayout_t dl,
                                  const cublasLtMatmulAlgo_t *algo, void *workspace,
                                  size_t workspace_size, cudaStream_t stream) {
    EMU_LOCK;
    check_stream(stream, "cublasLtMatmul");
    cudaError_t injected;
    if (inject("cublasLtMatmul", &injected))
        return CUBLAS_STATUS_EXECUTION_FAILED;
    const Desc *d = (const Desc *)dsc;
    const Layout *a = (const Layout *)al, *b = (const Layout *)bl, *c = (const Layout *)cl,
                 *dd = (const Layout *)dl;
    uint64_t m, n, k;
    const cublasStatus_t s = check(d, a, b, c, dd, &m, &n, &k);
    if (s != CUBLAS_STATUS_SUCCESS)
        return s;
    if (!algo || (workspace_size && !is_device(workspace, workspace_size)))
        return CUBLAS_STATUS_INVALID_VALUE;
    const uint64_t *mark = algo->data;
    if (mark[0] != ALGO_MARK || mark[1] >= MAX_OFFERED)
        die("cublasLtMatmul: an algorithm the heuristic did not return");
    if (mark[2] != m || mark[3] != n || mark[4] != k || mark[5] != d->epilogue)
        die("cublasLtMatmul: an algorithm the heuristic ranked for another problem");
    const int rank = (int)mark[1];
    const bool spoiled = rank == 0 && spoiled_first == 1;
    const bool fails = failing.match(m, n, k) && rank < failing_ranks;
    const bool no_bias = reject_bias && d->epilogue == CUBLASLT_EPILOGUE_BIAS;
    if (spoiled || fails || no_bias || mark[6] > workspace_size) {
        refused_by_rank[rank]++;
        const cublasStatus_t why = fails ? failing_status : CUBLAS_STATUS_NOT_SUPPORTED;
        // A kernel that failed to launch leaves the runtime's last error set
        // (whether cuBLASLt clears it is not documented): the caller must.
        if (why == CUBLAS_STATUS_EXECUTION_FAILED)
            last_error = cudaErrorLaunchOutOfResources;
        return why;
    }
    // The heuristic assumed 256-byte aligned matrices (its default).
    for (const void *p : {A, B, C, (const void *)D})
        if ((uintptr_t)p % 256)
            return CUBLAS_STATUS_INVALID_VALUE;
    if (C == D && (c->type != dd->type || c->ld != dd->ld))
        return CUBLAS_STATUS_INVALID_VALUE; // in place needs the same layout
    const size_t a_extent = (size_t)(a->cols - 1) * a->ld + a->rows;
    const size_t b_extent = (size_t)(b->cols - 1) * b->ld + b->rows;
    const size_t d_extent = (size_t)(dd->cols - 1) * dd->ld + dd->rows;
    if (!is_device(A, a_extent * type_size(a->type)) || !is_device(B, b_extent * type_size(b->type)) ||
        !is_device(D, d_extent * type_size(dd->type)) || !is_device(C, d_extent * type_size(c->type)))
        die("cublasLtMatmul: a matrix runs past its allocation");
    if (d->epilogue == CUBLASLT_EPILOGUE_BIAS && !is_device(d->bias, m * type_size(dd->type)))
        die("cublasLtMatmul: the bias runs past its allocation");
    if (guard_overlap(A, a_extent * type_size(a->type)) ||
        guard_overlap(B, b_extent * type_size(b->type)) ||
        guard_overlap(C, d_extent * type_size(c->type)) ||
        guard_overlap(D, d_extent * type_size(dd->type)) ||
        (d->epilogue == CUBLASLT_EPILOGUE_BIAS && guard_overlap(d->bias, m * type_size(dd->type))))
        die("cublasLtMatmul: a matrix or the bias runs into the guard zone after its arena buffer");
    const float al_v = *(const float *)alpha, be_v = *(const float *)beta;
    const Desc desc = *d;
    const Layout la = *a, lb = *b, lc = *c, ld = *dd;
    submit(stream, [=]() {
        matmuls++;
        ran_by_rank[rank]++;
        const bool tf32 = desc.compute == CUBLAS_COMPUTE_32F_FAST_TF32;
        // op(A) by rows and B by columns, as rounded floats: the dot products
        // below then read two contiguous arrays.
        std::vector<float> a_rows(m * k), b_cols(n * k);
        float *ar = a_rows.data(), *bc = b_cols.data();
        for (uint64_t i = 0; i < m; i++)
            for (uint64_t kk = 0; kk < k; kk++) {
                const size_t at = desc.trans_a == CUBLAS_OP_N ? i + kk * la.ld : kk + i * la.ld;
                const float v = load(A, la.type, at);
                ar[i * k + kk] = tf32 ? to_tf32(v) : v;
            }
        for (uint64_t j = 0; j < n; j++)
            for (uint64_t kk = 0; kk < k; kk++) {
                const size_t bt = desc.trans_b == CUBLAS_OP_N ? kk + j * lb.ld : j + kk * lb.ld;
                const float v = load(B, lb.type, bt);
                bc[j * k + kk] = tf32 ? to_tf32(v) : v;
            }
        for (uint64_t i = 0; i < m; i++) {
            const float bias = desc.epilogue == CUBLASLT_EPILOGUE_BIAS ? load(desc.bias, ld.type, i) : 0.0f;
            const float *row = ar + i * k;
            for (uint64_t j = 0; j < n; j++) {
                const float *col = bc + j * k;
                double acc[4] = {0.0, 0.0, 0.0, 0.0}; // four chains: no wait on each add
                uint64_t kk = 0;
                for (; kk + 4 <= k; kk += 4)
                    for (int q = 0; q < 4; q++)
                        acc[q] += (double)row[kk + q] * col[kk + q];
                for (; kk < k; kk++)
                    acc[0] += (double)row[kk] * col[kk];
                float out = al_v * (float)((acc[0] + acc[1]) + (acc[2] + acc[3]));
                if (be_v != 0.0f)
                    out += be_v * load(C, lc.type, i + j * lc.ld);
                store(D, ld.type, i + j * ld.ld, out + bias);
            }
        }
    });
    return CUBLAS_STATUS_SUCCESS;
}

// A cuBLASLt short of algorithms, for the tests of cnx's fallbacks. A GEMM
// is selected by its m, n, k (each 0: any).

/* How many times the heuristic was asked, ever. */
long emu_lt_heuristic_calls(void) {
    EMU_LOCK;
    return heuristic_calls;
}

/* The heuristic ranks `count` (1..8) distinct algorithms per problem; 3 by default. */

void emu_lt_offer(int count) {
    EMU_LOCK;
    if (count < 1 || count > MAX_OFFERED)
        die("emu_lt_offer: 1..8 algorithms");
    offered = count;
}

/* No algorithm with CUBLASLT_EPILOGUE_BIAS: the heuristic answers
 * CUBLAS_STATUS_NOT_SUPPORTED for such descriptors, a matmul refuses them. */
void emu_lt_reject_bias_epilogue(int reject) {
    EMU_LOCK;
    reject_bias = reject != 0;
}

/* The heuristic returns `status` and no result for the selected GEMMs
 * (CUBLAS_STATUS_SUCCESS: an empty ranking). */
void emu_lt_no_results(long m, long n, long k, int status) {
    EMU_LOCK;
    no_results = Gemms{true, (uint64_t)m, (uint64_t)n, (uint64_t)k};
    no_results_status = (cublasStatus_t)status;
}

/* cublasLtMatmul of the selected GEMMs with one of the `ranks` best-ranked
 * algorithms returns `status` and runs nothing. */
void emu_lt_fail_algorithms(long m, long n, long k, int ranks, int status) {
    EMU_LOCK;
    failing = Gemms{true, (uint64_t)m, (uint64_t)n, (uint64_t)k};
    failing_ranks = ranks;
    failing_status = (cublasStatus_t)status;
}

/* The best result is unusable: how 1, its state is not SUCCESS; how 2, it
 * needs more workspace than the preference allows; 0, neither. */
void emu_lt_spoil_first_result(int how) {
    EMU_LOCK;
    spoiled_first = how;
}

/* Back to a cuBLASLt with every algorithm, 3 ranked, and the counts at 0. */
void emu_lt_reset(void) {
    EMU_LOCK;
    offered = 3;
    reject_bias = false;
    no_results = failing = Gemms{};
    spoiled_first = 0;
    memset(ran_by_rank, 0, sizeof ran_by_rank);
    memset(refused_by_rank, 0, sizeof refused_by_rank);
}

/* Matmuls with the algorithm of `rank` that ran (graph replays included)
 * and that were refused, since the last reset. */
void emu_lt_algorithm_uses(int rank, long *ran, long *refused) {
    EMU_LOCK;
    if (rank < 0 || rank >= MAX_OFFERED)
        die("emu_lt_algorithm_uses: rank out of range");
    *ran = ran_by_rank[rank];
    *refused = refused_by_rank[rank];
}

/* cuBLASLt handles, preferences, descriptors and layouts alive: for leak checks. */
long emu_lt_live(void) {
    EMU_LOCK;
    return handles + live_lt_objects;
}

} // extern "C"
