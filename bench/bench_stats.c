#include "bench_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int bench_series_push(bench_series *s, double value) {
    if (s->count == s->capacity) {
        const int capacity = s->capacity ? 2 * s->capacity : 256;
        double *grown = realloc(s->values, (size_t)capacity * sizeof *grown);
        if (!grown) return -1;
        s->values = grown;
        s->capacity = capacity;
    }
    s->values[s->count++] = value;
    return 0;
}

void bench_series_free(bench_series *s) {
    free(s->values);
    memset(s, 0, sizeof *s);
}

double bench_percentile(const double *sorted, int n, double p) {
    /* p * n is exact for whole p and any real n; the division is then exact
     * whenever the rank is whole, so ceil() does not round 9.0 up to 10. */
    int rank = (int)ceil(p * n / 100.0);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

static int compare_doubles(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int bench_summarize(const double *values, int n, bench_summary *s) {
    const double nan = NAN;
    *s = (bench_summary){.count = n < 0 ? 0 : n, .min = nan, .mean = nan, .median = nan,
                         .p90 = nan, .p95 = nan, .p99 = nan, .max = nan, .cv = nan};
    double *sorted = n >= 1 ? malloc((size_t)n * sizeof *sorted) : NULL;
    if (!sorted) return -1;
    memcpy(sorted, values, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_doubles);
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += sorted[i];
    const double mean = sum / n;
    double squares = 0.0;
    for (int i = 0; i < n; i++) squares += (sorted[i] - mean) * (sorted[i] - mean);
    s->min = sorted[0];
    s->max = sorted[n - 1];
    s->mean = mean;
    s->median = bench_percentile(sorted, n, 50);
    s->p90 = bench_percentile(sorted, n, 90);
    s->p95 = bench_percentile(sorted, n, 95);
    s->p99 = bench_percentile(sorted, n, 99);
    s->cv = n >= 2 && mean > 0 ? sqrt(squares / n) / mean : 0.0;
    free(sorted);
    return 0;
}
