/* --mode end-to-end: image files to predictions, cnx_engine_classify_files. */
#ifndef CNX_BENCH_FILES_H
#define CNX_BENCH_FILES_H

#include <stddef.h>

#include "bench_context.h"

/* The *.jpg, *.jpeg and *.png files in dir (not recursive), sorted by name.
 * 0, or -1 after printing a one-line error (unreadable, or no such file). */
int bench_files_list(const char *dir, char ***paths, size_t *count);
void bench_files_free(char **paths, size_t count);

/* One row per (precision, batch): an iteration classifies every file. Then
 * the last iteration's cnx_files_stats and what bounds the run. */
void bench_run_files(bench_context *ctx, char **paths, size_t count);

#endif
