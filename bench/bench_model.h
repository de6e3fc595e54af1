/* --mode model: the forward alone, on input already where the engine runs. */
#ifndef CNX_BENCH_MODEL_H
#define CNX_BENCH_MODEL_H

#include "bench_context.h"

/* One row per (precision, batch). */
void bench_run_model(bench_context *ctx);

#endif
