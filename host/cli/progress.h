/* A progress line on stderr for long runs: count, rate, ETA. Shown only
 * when stderr is a terminal, so logs and pipes stay clean. */
#ifndef CNX_CLI_PROGRESS_H
#define CNX_CLI_PROGRESS_H

#include <stddef.h>

typedef struct progress {
    int enabled;
    size_t total;
    const char *unit; /* "images" */
    double start_seconds;
    double last_print_seconds;
    int drawn; /* a line is on the terminal */
} progress;

void progress_start(progress *p, size_t total, const char *unit);

/* Redraws at most a few times a second. */
void progress_update(progress *p, size_t done);

/* Clears the line, if one is drawn (before printing results, and at the end). */
void progress_finish(progress *p);

double progress_now_seconds(void);

#endif
