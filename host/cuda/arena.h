/* Internal: how the CUDA backend lays out its device arenas (the weights,
 * the activations). Every buffer starts on a 256-byte boundary, the
 * alignment cuBLASLt's heuristic assumes by default. Debug builds and the
 * CUDA emulation leave a guard zone after each buffer, which the emulation
 * makes inaccessible (CNX_DEVICE_GUARD): a kernel that runs past its buffer
 * then fails instead of quietly using its neighbour's data. Two pages, so
 * that a whole page lies in every zone. */
#ifndef CNX_HOST_CUDA_ARENA_H
#define CNX_HOST_CUDA_ARENA_H

#include <stddef.h>

#define ARENA_ALIGN ((size_t)256)

#if !defined(NDEBUG) || defined(CNX_CUDA_EMULATION)
#define ARENA_GUARD_BYTES ((size_t)8192)
#else
#define ARENA_GUARD_BYTES ((size_t)0)
#endif
#ifndef CNX_DEVICE_GUARD
#define CNX_DEVICE_GUARD(zone, bytes) ((void)(zone), (void)(bytes))
#endif

static inline size_t arena_align_up(size_t x) {
    return (x + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

#endif
