/* What every mode of cnx-bench shares: the options, the report, the device
 * the run is on, the model's input, and making engines and rows. */
#ifndef CNX_BENCH_CONTEXT_H
#define CNX_BENCH_CONTEXT_H

#include <stdio.h>

#include "bench_health.h"
#include "bench_options.h"
#include "bench_report.h"
#include "cnx.h"

typedef struct bench_context {
    const bench_options *options; /* defaults applied */
    bench_report *report;
    bench_health *health;
    cnx_device device;        /* what engines are created for: CPU or CUDA once known */
    int on_cuda;              /* device is CNX_DEVICE_CUDA */
    void *stream;             /* the bench's cudaStream_t on CUDA, else NULL */
    cnx_model_info info;      /* of the first engine */
    int input_size;           /* the model's input side */
    cnx_preprocess preprocess; /* the weights', its crop input_size, resize scaled alike */
    FILE *notes;              /* stdout for text output, stderr with --json */
} bench_context;

/* An engine of the run's weights (-w, or random --arch/--seed) on ctx's
 * device and stream, planned for batch images of input_size (0: the crop). */
cnx_status bench_engine_create(const bench_context *ctx, cnx_precision precision, int batch,
                               cnx_engine **engine);

/* A new row named "cnx PRECISION VARIANT" (name_variant NULL: the variant),
 * with the run's warm-up count; NULL when the report is full. */
bench_row *bench_new_row(bench_context *ctx, const char *precision, const char *variant,
                         const char *name_variant, int batch);

/* After a row is measured (or failed): the variation check, and the text
 * output unless --json. */
void bench_finish_row(bench_context *ctx, const bench_row *row);

#endif
