/* cnx-bench's command line: parsing, checking, and the defaults that depend
 * on the device. */
#ifndef CNX_BENCH_OPTIONS_H
#define CNX_BENCH_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "cnx.h"

typedef enum bench_mode {
    BENCH_MODE_MODEL = 0,   /* the forward on input already on the device */
    BENCH_MODE_PREPROCESS,  /* decoded RGB8 images to the model's input */
    BENCH_MODE_END_TO_END   /* files to predictions: cnx_engine_classify_files */
} bench_mode;

#define BENCH_MAX_LIST 16

typedef struct bench_options {
    const char *weights; /* -w, or NULL for --arch */
    const char *arch;    /* --arch (default convnext_tiny) */
    uint64_t seed;
    bench_mode mode;
    cnx_device device;   /* as asked: AUTO, CPU or CUDA */
    cnx_precision precisions[BENCH_MAX_LIST];
    int num_precisions;  /* 0 until defaulted */
    int batches[BENCH_MAX_LIST];
    int num_batches;     /* 0 until defaulted */
    int input_size;      /* 0: the weights' crop */
    int warmup;          /* -1 until defaulted */
    int iterations;      /* -1 until defaulted; unused with duration */
    double duration;     /* seconds; > 0 replaces iterations */
    int graphs;          /* 0 with --no-graphs */
    const char *images;  /* --images DIR */
    int image_width, image_height;
    int threads;         /* CPU engine and decode threads; 0: one per core */
    int k;
    int json;
} bench_options;

void bench_print_usage(FILE *out);

/* 0: parsed; 1: --help was printed (exit 0); 2: a one-line usage error
 * naming the flag was printed to stderr (exit 2). */
int bench_parse_options(int argc, char **argv, bench_options *options);

/* Fills what the command line left open, for a run on CUDA or the CPU. */
void bench_apply_defaults(bench_options *options, int on_cuda);

const char *bench_precision_name(cnx_precision precision);
const char *bench_mode_name(bench_mode mode);

#endif
