/* The bench's seeded synthetic data (inputs, pixels): xorshift64. */
#ifndef CNX_BENCH_RANDOM_H
#define CNX_BENCH_RANDOM_H

#include <stdint.h>

/* A nonzero state from a seed; salt tells apart the streams of one seed. */
static inline uint64_t bench_random_state(uint64_t seed, uint64_t salt) {
    const uint64_t state = seed * 0x9e3779b97f4a7c15ull + salt;
    return state ? state : 0x9e3779b97f4a7c15ull;
}

/* The next 64 random bits. */
static inline uint64_t bench_random_next(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

#endif
