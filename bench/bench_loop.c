#define _POSIX_C_SOURCE 200809L

#include "bench_loop.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

double bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

bench_loop bench_loop_start(const bench_options *o) {
    return (bench_loop){.iterations = o->iterations, .duration = o->duration};
}

int bench_loop_next(bench_loop *loop) {
    if (loop->done == 0) {
        loop->started = bench_now();
        loop->done = 1;
        return 1;
    }
    const int more = loop->duration > 0 ? bench_now() - loop->started < loop->duration
                                        : loop->done < loop->iterations;
    loop->done += more;
    return more;
}

double bench_loop_elapsed(const bench_loop *loop) { return bench_now() - loop->started; }

void bench_progress(const char *format, ...) {
    if (!isatty(STDERR_FILENO)) return;
    va_list args;
    va_start(args, format);
    fputs("cnx-bench: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
}
