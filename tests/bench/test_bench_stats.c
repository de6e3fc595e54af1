/* cnx-bench's statistics (bench/bench_stats.c): nearest-rank percentiles,
 * the summary, and the growable series. */
#include <math.h>
#include <stdio.h>

#include "bench_stats.h"
#include "test_check.h"

int main(void) {
    /* 1..10: p50 is the 5th value, p90 the 9th (not the 10th: the rank is
     * exactly 9), p95 and p99 the 10th. */
    const double ten[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    CHECK(bench_percentile(ten, 10, 50) == 5, "p50 of 1..10: %g", bench_percentile(ten, 10, 50));
    CHECK(bench_percentile(ten, 10, 90) == 9, "p90 of 1..10: %g", bench_percentile(ten, 10, 90));
    CHECK(bench_percentile(ten, 10, 95) == 10, "p95 of 1..10: %g", bench_percentile(ten, 10, 95));
    CHECK(bench_percentile(ten, 10, 99) == 10, "p99 of 1..10: %g", bench_percentile(ten, 10, 99));
    CHECK(bench_percentile(ten, 10, 100) == 10, "p100 of 1..10");
    CHECK(bench_percentile(ten, 10, 0.001) == 1, "p0.001 of 1..10 is the minimum");
    const double one[] = {42};
    CHECK(bench_percentile(one, 1, 50) == 42 && bench_percentile(one, 1, 99) == 42, "n = 1");
    const double two[] = {1, 2};
    CHECK(bench_percentile(two, 2, 50) == 1 && bench_percentile(two, 2, 51) == 2, "n = 2");

    /* 1..100 in reverse: every whole percentile is its own rank. */
    bench_series s = {0};
    for (int i = 100; i >= 1; i--) CHECK(bench_series_push(&s, i) == 0, "push %d", i);
    CHECK(s.count == 100 && s.capacity >= 100, "series grew: %d of %d", s.count, s.capacity);
    bench_summary sum;
    CHECK(bench_summarize(s.values, s.count, &sum) == 0, "summarize 100 values");
    CHECK(sum.count == 100 && sum.min == 1 && sum.max == 100 && sum.median == 50 &&
              sum.p90 == 90 && sum.p95 == 95 && sum.p99 == 99 && fabs(sum.mean - 50.5) < 1e-12,
          "1..100: min %g median %g p90 %g p95 %g p99 %g max %g mean %g", sum.min, sum.median,
          sum.p90, sum.p95, sum.p99, sum.max, sum.mean);
    CHECK(s.values[0] == 100, "summarize leaves the values unsorted");
    /* Population stddev of 1..100 is sqrt((100^2 - 1) / 12). */
    CHECK(fabs(sum.cv - sqrt(9999.0 / 12) / 50.5) < 1e-12, "cv %g", sum.cv);
    bench_series_free(&s);
    CHECK(s.values == NULL && s.count == 0, "series freed");

    const double same[] = {3, 3, 3};
    CHECK(bench_summarize(same, 3, &sum) == 0 && sum.cv == 0 && sum.min == 3 && sum.p99 == 3,
          "constant values: cv %g", sum.cv);
    CHECK(bench_summarize(NULL, 0, &sum) != 0 && isnan(sum.mean) && isnan(sum.p99),
          "no values: NaN statistics");

    return test_summary();
}
