/* The timed loop every mode shares: warm-up iterations, then a fixed count
 * or a duration (--iterations / --duration), and the wall clock. */
#ifndef CNX_BENCH_LOOP_H
#define CNX_BENCH_LOOP_H

#include "bench_options.h"
#include "error.h" /* CNX_PRINTF */

/* Seconds on a monotonic clock. */
double bench_now(void);

typedef struct bench_loop {
    int iterations; /* fixed count; ignored when duration > 0 */
    double duration;
    int done;       /* timed iterations so far */
    double started; /* bench_now() at the first bench_loop_next */
} bench_loop;

bench_loop bench_loop_start(const bench_options *options);

/* 1 while another timed iteration is due (at least one always is). */
int bench_loop_next(bench_loop *loop);

/* Seconds since the first bench_loop_next. */
double bench_loop_elapsed(const bench_loop *loop);

/* "cnx-bench: ..." on stderr, only when stderr is a terminal. */
void bench_progress(const char *format, ...) CNX_PRINTF(1, 2);

#endif
