/* What a run found: the header, one row per configuration, the warnings;
 * printed trtexec-style as text, or as the one JSON object that
 * bench/torch_baseline.py also writes and bench/compare.py merges. */
#ifndef CNX_BENCH_REPORT_H
#define CNX_BENCH_REPORT_H

#include <stdio.h>

#include "bench_stats.h"
#include "error.h" /* CNX_PRINTF */

typedef struct bench_row {
    char name[64];      /* "cnx fp16 graphs" */
    char precision[8];
    char variant[24];   /* graphs, no-graphs, cpu, preprocess, preprocess+h2d, end-to-end */
    int batch, warmup, iterations;
    int images_per_iteration; /* 0: batch (an end-to-end iteration is every file) */
    double throughput;  /* images/s; 0 on error */
    bench_summary latency; /* ms per iteration */
    bench_summary gpu, h2d, host; /* ms; only mean and median are reported */
    int has_gpu, has_h2d;
    char error[512];    /* "" when the row ran */
} bench_row;

typedef struct bench_report {
    char date[32];        /* 2026-11-26T05:40:00Z */
    char device[128];
    char model[64];
    char weights[1024];   /* a path, or "random (seed N)" */
    int input_size;
    const char *mode;
    char *command;        /* argv joined by spaces */
    char **warnings;
    int num_warnings;
    bench_row *rows;      /* BENCH_MAX_ROWS, allocated once: row pointers stay valid */
    int num_rows;
} bench_report;

/* 0, or -1 when out of memory. */
int bench_report_init(bench_report *report, int argc, char **argv);
void bench_report_free(bench_report *report);

#define BENCH_MAX_ROWS 512 /* 16 precisions x 16 batches x 2 rows at most */

/* A new row, zeroed, with NaN statistics; NULL past BENCH_MAX_ROWS. */
bench_row *bench_report_add_row(bench_report *report);

/* Marks a row failed: the message, zero throughput. */
void bench_row_fail(bench_row *row, const char *format, ...)
    CNX_PRINTF(2, 3);

/* Prints "cnx-bench: warning: ..." to stderr and keeps it for the JSON. */
void bench_warn(bench_report *report, const char *format, ...)
    CNX_PRINTF(2, 3);

void bench_print_header(FILE *out, const bench_report *report);
void bench_print_row(FILE *out, const bench_row *row);
/* The warnings again, at the end of the text output ("[W] ..."). */
void bench_print_warnings(FILE *out, const bench_report *report);
void bench_print_json(FILE *out, const bench_report *report);

#endif
