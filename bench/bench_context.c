#include "bench_context.h"

#include <string.h>

cnx_status bench_engine_create(const bench_context *ctx, cnx_precision precision, int batch,
                               cnx_engine **engine) {
    const bench_options *o = ctx->options;
    cnx_options options = cnx_default_options();
    options.device = ctx->device;
    options.precision = precision;
    options.max_batch = batch;
    options.input_size = ctx->input_size;
    options.cuda_stream = ctx->stream;
    options.num_threads = o->threads; /* the CPU's; CUDA ignores it */
    return o->weights ? cnx_engine_create(o->weights, &options, engine)
                      : cnx_engine_create_random(o->arch, o->seed, &options, engine);
}

bench_row *bench_new_row(bench_context *ctx, const char *precision, const char *variant,
                         const char *name_variant, int batch) {
    bench_row *row = bench_report_add_row(ctx->report);
    if (!row) return NULL;
    snprintf(row->name, sizeof row->name, "cnx %s %s", precision,
             name_variant ? name_variant : variant);
    snprintf(row->precision, sizeof row->precision, "%s", precision);
    snprintf(row->variant, sizeof row->variant, "%s", variant);
    row->batch = batch;
    row->warmup = ctx->options->warmup;
    return row;
}

void bench_finish_row(bench_context *ctx, const bench_row *row) {
    bench_check_variation(ctx->report, row);
    if (!ctx->options->json) bench_print_row(stdout, row);
}
