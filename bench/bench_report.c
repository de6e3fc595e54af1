#define _POSIX_C_SOURCE 200809L /* gmtime_r, strdup */

#include "bench_report.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_output.h"

int bench_report_init(bench_report *r, int argc, char **argv) {
    memset(r, 0, sizeof *r);
    const time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(r->date, sizeof r->date, "%Y-%m-%dT%H:%M:%SZ", &utc);
    size_t length = 1;
    for (int i = 0; i < argc; i++) length += strlen(argv[i]) + 1;
    r->command = malloc(length);
    r->rows = calloc(BENCH_MAX_ROWS, sizeof *r->rows);
    if (!r->command || !r->rows) return -1;
    r->command[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (i) strcat(r->command, " ");
        strcat(r->command, argv[i]);
    }
    return 0;
}

void bench_report_free(bench_report *r) {
    for (int i = 0; i < r->num_warnings; i++) free(r->warnings[i]);
    free(r->warnings);
    free(r->rows);
    free(r->command);
    memset(r, 0, sizeof *r);
}

bench_row *bench_report_add_row(bench_report *r) {
    if (r->num_rows == BENCH_MAX_ROWS) return NULL;
    bench_row *row = &r->rows[r->num_rows++];
    memset(row, 0, sizeof *row);
    bench_summarize(NULL, 0, &row->latency); /* NaNs: nothing measured yet */
    row->gpu = row->h2d = row->host = row->latency;
    return row;
}

void bench_row_fail(bench_row *row, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(row->error, sizeof row->error, format, args);
    va_end(args);
    if (!row->error[0]) snprintf(row->error, sizeof row->error, "failed");
    row->throughput = 0.0;
}

void bench_warn(bench_report *r, const char *format, ...) {
    char text[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    fprintf(stderr, "cnx-bench: warning: %s\n", text);
    char **warnings = realloc(r->warnings, (size_t)(r->num_warnings + 1) * sizeof *warnings);
    if (!warnings) return;
    r->warnings = warnings;
    if ((r->warnings[r->num_warnings] = strdup(text))) r->num_warnings++;
}

/* ------------------------------------------------------------------ text */

void bench_print_header(FILE *out, const bench_report *r) {
    fprintf(out, "=== cnx-bench\n");
    fprintf(out, "Device: %s\n", r->device);
    fprintf(out, "Model: %s, weights %s\n", r->model, r->weights);
    fprintf(out, "Input: %dx%d, mode %s\n", r->input_size, r->input_size, r->mode);
    fprintf(out, "Date: %s\n", r->date);
    fflush(out);
}

/* "mean 1.234 ms, median 1.200 ms", or "n/a" when not measured. */
static void print_mean_median(FILE *out, const char *label, const bench_summary *s, int present,
                              const char *absent) {
    if (present)
        fprintf(out, "%s: mean %.3f ms, median %.3f ms\n", label, s->mean, s->median);
    else
        fprintf(out, "%s: n/a (%s)\n", label, absent);
}

void bench_print_row(FILE *out, const bench_row *row) {
    fprintf(out, "\n=== %s, batch %d (%d warm-up, %d timed iterations)\n", row->name, row->batch,
            row->warmup, row->iterations);
    if (row->error[0]) {
        fprintf(out, "Error: %s\n", row->error);
        fflush(out);
        return;
    }
    const bench_summary *l = &row->latency;
    fprintf(out, "Throughput: %.1f images/s\n", row->throughput);
    if (row->images_per_iteration > 0 && row->images_per_iteration != row->batch)
        fprintf(out, "Latency (per iteration of %d images): ", row->images_per_iteration);
    else
        fprintf(out, "Latency (per batch of %d): ", row->batch);
    fprintf(out, "min %.3f ms, mean %.3f, median %.3f, p90 %.3f, p95 %.3f, p99 %.3f, max %.3f\n",
            l->min, l->mean, l->median, l->p90, l->p95, l->p99, l->max);
    print_mean_median(out, "GPU compute", &row->gpu, row->has_gpu, "no GPU work timed");
    print_mean_median(out, "H2D", &row->h2d, row->has_h2d, "no upload timed");
    print_mean_median(out, "Host", &row->host, 1, "");
    fflush(out);
}

void bench_print_warnings(FILE *out, const bench_report *r) {
    if (r->num_warnings) fputc('\n', out);
    for (int i = 0; i < r->num_warnings; i++) fprintf(out, "[W] %s\n", r->warnings[i]);
    fflush(out);
}

/* ------------------------------------------------------------------ JSON */

/* ,"key":"value" (no comma first when first). */
static void json_string_field(FILE *out, const char *key, const char *value, int first) {
    if (!first) fputc(',', out);
    json_write_string(out, key);
    fputc(':', out);
    json_write_string(out, value);
}

static void json_mean_median(FILE *out, const bench_summary *s, int present) {
    if (!present) {
        fputs("null", out);
        return;
    }
    fputs("{\"mean\":", out);
    json_write_float(out, s->mean);
    fputs(",\"median\":", out);
    json_write_float(out, s->median);
    fputc('}', out);
}

static void json_row(FILE *out, const bench_row *row) {
    const int ok = !row->error[0];
    fputc('{', out);
    json_string_field(out, "name", row->name, 1);
    json_string_field(out, "engine", "cnx", 0);
    json_string_field(out, "precision", row->precision, 0);
    json_string_field(out, "variant", row->variant, 0);
    fprintf(out, ",\"batch\":%d,\"warmup\":%d,\"iterations\":%d,\"throughput\":", row->batch,
            row->warmup, row->iterations);
    json_write_float(out, row->throughput);
    fputs(",\"latency_ms\":", out);
    if (ok) {
        const struct { const char *key; double value; } fields[] = {
            {"min", row->latency.min}, {"mean", row->latency.mean},
            {"median", row->latency.median}, {"p90", row->latency.p90},
            {"p95", row->latency.p95}, {"p99", row->latency.p99}};
        fputc('{', out);
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            fprintf(out, "%s\"%s\":", f ? "," : "", fields[f].key);
            json_write_float(out, fields[f].value);
        }
        fputc('}', out);
    } else {
        fputs("null", out);
    }
    fputs(",\"gpu_ms\":", out);
    json_mean_median(out, &row->gpu, ok && row->has_gpu);
    fputs(",\"h2d_ms\":", out);
    json_mean_median(out, &row->h2d, ok && row->has_h2d);
    fputs(",\"host_ms\":", out);
    json_mean_median(out, &row->host, ok);
    if (ok)
        fputs(",\"error\":null", out);
    else
        json_string_field(out, "error", row->error, 0);
    fputc('}', out);
}

void bench_print_json(FILE *out, const bench_report *r) {
    fputc('{', out);
    json_string_field(out, "tool", "cnx-bench", 1);
    json_string_field(out, "date", r->date, 0);
    json_string_field(out, "device", r->device, 0);
    json_string_field(out, "model", r->model, 0);
    json_string_field(out, "weights", r->weights, 0);
    fprintf(out, ",\"input_size\":%d", r->input_size);
    json_string_field(out, "mode", r->mode, 0);
    json_string_field(out, "command", r->command, 0);
    fputs(",\"warnings\":[", out);
    for (int i = 0; i < r->num_warnings; i++) {
        if (i) fputc(',', out);
        json_write_string(out, r->warnings[i]);
    }
    fputs("],\"results\":[", out);
    for (int i = 0; i < r->num_rows; i++) {
        fputs(i ? ",\n" : "\n", out);
        json_row(out, &r->rows[i]);
    }
    fputs("]}\n", out);
    fflush(out);
}
