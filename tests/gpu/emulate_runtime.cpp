// The CUDA runtime and cuBLASLt, as much of them as host/cuda_backend.c
// uses, on the CPU (see emulate_cuda.h). Kernels run block after block; the
// threads of a block are fibers (ucontext) switched at __syncthreads() and at
// each warp shuffle, and a block whose threads do not all meet at the same
// barrier fails the test.
#include "emulate_cuda.h"

#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

// ------------------------------------------------------------ failures

[[noreturn]] static void die(const char *what) {
    fprintf(stderr, "emulation: %s\n", what);
    fflush(stdout);
    abort();
}

// --------------------------------------------------------------- fibers

namespace emu {
dim3 thread_index, block_index, block_dim, grid_dim;
unsigned char *dynamic_shared;
} // namespace emu

namespace {

enum State { RUNNABLE, BLOCK_WAIT, WARP_WAIT, DONE };
constexpr int kMaxThreads = 1024;
constexpr size_t kFiberStack = 64 * 1024;

// A fiber starts on its own stack through makecontext/swapcontext once;
// after that every switch is _setjmp/_longjmp, which (unlike swapcontext)
// makes no system call.
ucontext_t scheduler;
ucontext_t fibers[kMaxThreads];
jmp_buf scheduler_jump, fiber_jump[kMaxThreads];
bool started[kMaxThreads];
State state[kMaxThreads];
int current = -1;
int threads_in_block = 0;
std::function<void()> *block_body;
std::vector<char> stacks;
unsigned char slots[kMaxThreads][16]; // shuffle values
std::vector<unsigned char> shared_memory;

void fiber_main() {
    (*block_body)();
    state[current] = DONE;
    _longjmp(scheduler_jump, 1);
}

void yield(State s) {
    state[current] = s;
    if (!_setjmp(fiber_jump[current]))
        _longjmp(scheduler_jump, 1);
}

void resume(int i) {
    if (_setjmp(scheduler_jump))
        return; // the fiber yielded or finished
    if (started[i])
        _longjmp(fiber_jump[i], 1);
    started[i] = true;
    swapcontext(&scheduler, &fibers[i]);
}

unsigned long long kernel_launches, blocks_run, captures, graph_launches, matmuls;

} // namespace

/* What ran, for the log: proves the graph path was taken. */
extern "C" void emu_report(void) {
    printf("emulation: %llu kernel launches (%llu blocks), %llu cuBLASLt matmuls, %llu graphs "
           "captured, %llu graph launches\n", kernel_launches, blocks_run, matmuls, captures,
           graph_launches);
}

namespace {

void run_block() {
    const int n = threads_in_block;
    if (stacks.size() < (size_t)n * kFiberStack)
        stacks.resize((size_t)n * kFiberStack);
    for (int i = 0; i < n; i++) {
        getcontext(&fibers[i]);
        fibers[i].uc_stack.ss_sp = stacks.data() + (size_t)i * kFiberStack;
        fibers[i].uc_stack.ss_size = kFiberStack;
        fibers[i].uc_link = &scheduler;
        makecontext(&fibers[i], fiber_main, 0);
        state[i] = RUNNABLE;
        started[i] = false;
    }
    blocks_run++;
    for (;;) {
        bool ran = false;
        for (int i = 0; i < n; i++) {
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
            fprintf(stderr, "emulation: block %u: %d threads at __syncthreads, %d returned, %d at a "
                    "shuffle\n", emu::block_index.x, at_barrier, done, at_warp);
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

// ---------------------------------------------------- streams and graphs

struct CUgraph_st {
    std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> ops;
};
struct CUstream_st {
    bool capturing = false;
    CUgraph_st *graph = nullptr;
};

namespace {

// Runs op now, or records it when the stream is being captured.
void submit(cudaStream_t stream, std::function<void()> op) {
    if (stream && stream->capturing)
        stream->graph->ops.push_back(std::move(op));
    else
        op();
}

std::map<uintptr_t, std::pair<void *, size_t>> allocations; // user pointer -> mapping

bool is_device(const void *p, size_t bytes) {
    const uintptr_t a = (uintptr_t)p;
    auto it = allocations.upper_bound(a);
    if (it == allocations.begin())
        return false;
    --it;
    const uintptr_t base = (uintptr_t)it->second.first;
    const size_t length = it->second.second;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return a >= it->first && a + bytes <= base + length - page;
}

} // namespace

void emu::launch(dim3 grid, dim3 block, size_t shared, cudaStream_t stream,
                 std::function<void()> body) {
    if (block.x < 1 || block.x > 1024 || block.y != 1 || block.z != 1 || grid.x < 1 ||
        grid.y != 1 || grid.z != 1 || shared > 48 * 1024) {
        last_error = cudaErrorInvalidConfiguration;
        return;
    }
    if (block.x % 32)
        die("a block that is not whole warps (the kernels assume whole warps)");
    submit(stream, [grid, block, shared, body]() {
        kernel_launches++;
        std::function<void()> run = body;
        block_body = &run;
        emu::grid_dim = grid;
        emu::block_dim = block;
        threads_in_block = (int)block.x;
        shared_memory.assign(shared ? shared : 1, 0xff); // uninitialized: NaN
        emu::dynamic_shared = shared_memory.data();
        for (unsigned b = 0; b < grid.x; b++) {
            emu::block_index = dim3(b, 0, 0);
            run_block();
        }
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
cudaError_t emu_cudaSetDevice(int) { return cudaSuccess; }
cudaError_t emu_cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int) {
    *value = attr == cudaDevAttrComputeCapabilityMajor ? 9 : 0;
    return cudaSuccess;
}
cudaError_t emu_cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned) {
    *stream = new CUstream_st;
    return cudaSuccess;
}
cudaError_t emu_cudaStreamDestroy(cudaStream_t stream) {
    if (!stream || stream->capturing)
        die("destroying a NULL or capturing stream");
    delete stream;
    return cudaSuccess;
}
cudaError_t emu_cudaStreamSynchronize(cudaStream_t stream) {
    return stream && stream->capturing ? cudaErrorStreamCaptureUnsupported : cudaSuccess;
}
cudaError_t emu_cudaDeviceSynchronize(void) { return cudaSuccess; } /* work runs at launch */
cudaError_t emu_cudaMalloc(void **p, size_t bytes) {
    // 256-byte aligned, ending at an inaccessible page, filled with NaN bytes.
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t rounded = (bytes + 255) / 256 * 256;
    const size_t length = (rounded + page - 1) / page * page + page;
    void *base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return cudaErrorMemoryAllocation;
    unsigned char *guard = (unsigned char *)base + length - page;
    mprotect(guard, page, PROT_NONE);
    unsigned char *user = guard - rounded;
    memset(user, 0xff, rounded);
    allocations[(uintptr_t)user] = {base, length};
    *p = user;
    return cudaSuccess;
}
cudaError_t emu_cudaFree(void *p) {
    auto it = allocations.find((uintptr_t)p);
    if (it == allocations.end())
        die("cudaFree of a pointer cudaMalloc did not return");
    munmap(it->second.first, it->second.second);
    allocations.erase(it);
    return cudaSuccess;
}
cudaError_t emu_cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                                cudaStream_t stream) {
    const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (is_device(dst, bytes) != dst_device || is_device(src, bytes) != src_device)
        die("cudaMemcpy: a pointer is not on the side its kind says");
    submit(stream, [=]() { memcpy(dst, src, bytes); });
    return cudaSuccess;
}
cudaError_t emu_cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    return emu_cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}
cudaError_t emu_cudaGetLastError(void) {
    const cudaError_t e = (cudaError_t)last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t emu_cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
    if (!stream || stream->capturing)
        return cudaErrorIllegalState;
    stream->capturing = true;
    stream->graph = new CUgraph_st;
    return cudaSuccess;
}
cudaError_t emu_cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
    if (!stream || !stream->capturing)
        return cudaErrorIllegalState;
    stream->capturing = false;
    captures++;
    *graph = stream->graph;
    stream->graph = nullptr;
    return cudaSuccess;
}
cudaError_t emu_cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status) {
    *status = stream && stream->capturing ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}
cudaError_t emu_cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long) {
    *exec = new CUgraphExec_st{graph->ops};
    return cudaSuccess;
}
cudaError_t emu_cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}
cudaError_t emu_cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}
cudaError_t emu_cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    if (stream && stream->capturing)
        die("graph launch into a capturing stream");
    graph_launches++;
    for (auto &op : exec->ops)
        op();
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

} // namespace

extern "C" {

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
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
    delete (Pref *)p;
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
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    delete (Desc *)d;
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
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    delete (Layout *)l;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t d,
                                                  cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                  cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t dd,
                                                  cublasLtMatmulPreference_t, int requested,
                                                  cublasLtMatmulHeuristicResult_t *results,
                                                  int *returned) {
    uint64_t m, n, k;
    const cublasStatus_t s = check((Desc *)d, (Layout *)a, (Layout *)b, (Layout *)c, (Layout *)dd, &m, &n, &k);
    *returned = 0;
    if (s != CUBLAS_STATUS_SUCCESS)
        return s;
    if (requested < 1)
        return CUBLAS_STATUS_INVALID_VALUE;
    memset(&results[0], 0, sizeof results[0]);
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t emu_cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t dsc, const void *alpha,
                                  const void *A, cublasLtMatrixLayout_t al, const void *B,
                                  cublasLtMatrixLayout_t bl, const void *beta, const void *C,
                                  cublasLtMatrixLayout_t cl, void *D, cublasLtMatrixLayout_t dl,
                                  const cublasLtMatmulAlgo_t *algo, void *workspace,
                                  size_t workspace_size, cudaStream_t stream) {
    const Desc *d = (const Desc *)dsc;
    const Layout *a = (const Layout *)al, *b = (const Layout *)bl, *c = (const Layout *)cl,
                 *dd = (const Layout *)dl;
    uint64_t m, n, k;
    const cublasStatus_t s = check(d, a, b, c, dd, &m, &n, &k);
    if (s != CUBLAS_STATUS_SUCCESS)
        return s;
    if (!algo || (workspace_size && !is_device(workspace, workspace_size)))
        return CUBLAS_STATUS_INVALID_VALUE;
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
    const float al_v = *(const float *)alpha, be_v = *(const float *)beta;
    const Desc desc = *d;
    const Layout la = *a, lb = *b, lc = *c, ld = *dd;
    submit(stream, [=]() {
        matmuls++;
        const bool tf32 = desc.compute == CUBLAS_COMPUTE_32F_FAST_TF32;
        std::vector<float> row_a(k);
        for (uint64_t i = 0; i < m; i++) {
            for (uint64_t kk = 0; kk < k; kk++) {
                const size_t at = desc.trans_a == CUBLAS_OP_N ? i + kk * la.ld : kk + i * la.ld;
                const float v = load(A, la.type, at);
                row_a[kk] = tf32 ? to_tf32(v) : v;
            }
            const float bias = desc.epilogue == CUBLASLT_EPILOGUE_BIAS ? load(desc.bias, ld.type, i) : 0.0f;
            for (uint64_t j = 0; j < n; j++) {
                double acc = 0.0;
                for (uint64_t kk = 0; kk < k; kk++) {
                    const size_t bt = desc.trans_b == CUBLAS_OP_N ? kk + j * lb.ld : j + kk * lb.ld;
                    float v = load(B, lb.type, bt);
                    acc += (double)row_a[kk] * (tf32 ? to_tf32(v) : v);
                }
                float out = al_v * (float)acc;
                if (be_v != 0.0f)
                    out += be_v * load(C, lc.type, i + j * lc.ld);
                store(D, ld.type, i + j * ld.ld, out + bias);
            }
        }
    });
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
