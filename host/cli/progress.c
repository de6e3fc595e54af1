#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double progress_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_start(progress *p, size_t total, const char *unit) {
    p->enabled = isatty(fileno(stderr)) && total > 1;
    p->total = total;
    p->unit = unit;
    p->start_seconds = p->last_print_seconds = progress_now_seconds();
    p->drawn = 0;
}

void progress_update(progress *p, size_t done) {
    if (!p->enabled)
        return;
    const double now = progress_now_seconds();
    if (now - p->last_print_seconds < 0.25 && done < p->total)
        return;
    p->last_print_seconds = now;
    const double elapsed = now - p->start_seconds;
    const double rate = elapsed > 0 ? done / elapsed : 0;
    const double eta = rate > 0 ? (p->total - done) / rate : 0;
    fprintf(stderr, "\r%zu/%zu %s, %.1f %s/s, ETA %.0f s   ", done, p->total, p->unit, rate,
            p->unit, eta);
    fflush(stderr);
    p->drawn = 1;
}

void progress_finish(progress *p) {
    if (p->enabled && p->drawn)
        fprintf(stderr, "\r\033[K");
    p->drawn = 0;
}
