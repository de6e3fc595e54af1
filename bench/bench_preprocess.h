/* --mode preprocess: decoded RGB8 images to the model's input tensor. */
#ifndef CNX_BENCH_PREPROCESS_H
#define CNX_BENCH_PREPROCESS_H

#include "bench_context.h"

/* Per batch: on CUDA two rows, "preprocess" (the kernel alone, from pixels
 * already on the GPU) and "preprocess + H2D" (with their upload from
 * page-locked memory); on the CPU one, cnx_preprocess_image on one thread. */
void bench_run_preprocess(bench_context *ctx);

#endif
