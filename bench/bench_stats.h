/* Latency statistics: nearest-rank percentiles over a growable series. */
#ifndef CNX_BENCH_STATS_H
#define CNX_BENCH_STATS_H

/* Values appended one at a time (the count is open with --duration). */
typedef struct bench_series {
    double *values;
    int count, capacity;
} bench_series;

/* 0, or -1 when out of memory (the series is unchanged). */
int bench_series_push(bench_series *series, double value);
void bench_series_free(bench_series *series);

typedef struct bench_summary {
    int count;
    double min, mean, median, p90, p95, p99, max;
    double cv; /* coefficient of variation: population stddev / mean; 0 for n < 2 */
} bench_summary;

/* The nearest-rank percentile of n sorted values (n >= 1, 0 < p <= 100):
 * the smallest value with at least p% of the values at or below it,
 * sorted[ceil(p/100 * n) - 1]. The median is the 50th percentile. */
double bench_percentile(const double *sorted, int n, double p);

/* Summarizes n values (not changed); 0, or -1 when n < 1 or out of memory
 * (*summary then holds NaNs, which the JSON writer prints as null). */
int bench_summarize(const double *values, int n, bench_summary *summary);

#endif
