/* Running many inputs through the model in input order: the core that cnx
 * classify and cnx eval share. Image files go through the library's file
 * pipeline (cnx_engine_classify_files: decode threads, preprocessing and
 * top-k on the GPU when the engine runs there); .npy tensors are batched
 * here and taken as they are. A batch of tensors the engine refuses is
 * retried one at a time, so one bad input costs only its own result. A
 * progress line goes to stderr on a terminal. */
#ifndef CNX_CLI_BATCH_RUNNER_H
#define CNX_CLI_BATCH_RUNNER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cnx.h"
#include "inputs.h"

/* One thing to run: an image file, or one image of a .npy tensor. */
typedef struct batch_input {
    const char *path;
    int is_tensor;     /* a .npy file (found by its magic bytes) */
    int64_t npy_index; /* -1: an image file or a [3,H,W] tensor */
} batch_input;

/* One input per image file; one per image of an [N,3,H,W] .npy tensor. A
 * .npy whose header is unreadable is one input, so that its error is reported
 * in place. *inputs_out borrows the paths of `paths`. Returns 0, or -1 on
 * out-of-memory. */
int batch_inputs_from_paths(const input_list *paths, batch_input **inputs_out, size_t *count_out);

/* "PATH", or "PATH[i]" for image i of a .npy tensor. */
void batch_input_name(const batch_input *input, char *name, size_t size);

/* Called once per input, in input order. On success top holds the k best
 * classes (when k > 0) and logits the num_classes logits (when asked for,
 * else NULL); on failure both are NULL and error is a one-line message
 * naming the file. Returns 0 when the result was used, -1 when the caller
 * counts the input as failed after all (its --dump-logits row is then NaN). */
typedef int (*batch_result_fn)(void *user, size_t index, const char *name, const float *logits,
                               const cnx_prediction *top, const char *error);

typedef struct batch_runner_params {
    cnx_engine *engine;
    int num_classes;
    cnx_preprocess preprocess; /* for image files */
    int max_batch;             /* inputs per forward */
    int k;                     /* predictions per input, 1..num_classes */
    int want_logits;           /* hand logits to on_result */
    int decode_threads;        /* for image files; 0: the library's default */
    FILE *dump_logits;         /* optional: float32 rows in input order, NaN for failures */
    batch_result_fn on_result;
    void *user;
} batch_runner_params;

/* Runs every input and calls on_result for each. Returns 0, or -1 when
 * memory for the batch could not be had (message printed). */
int batch_run(const batch_runner_params *params, const batch_input *inputs, size_t count);

#endif
