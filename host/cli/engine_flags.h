/* The engine flags shared by classify and eval: --device, --precision,
 * --batch, --threads, parsed into cnx_options; and what they came to. */
#ifndef CNX_CLI_ENGINE_FLAGS_H
#define CNX_CLI_ENGINE_FLAGS_H

#include <getopt.h>

#include "cnx.h"

enum {
    OPTION_DEVICE = 1100,
    OPTION_PRECISION,
    OPTION_BATCH,
    OPTION_THREADS,
};

/* Entries for a getopt_long option table. */
#define ENGINE_LONG_OPTIONS                                                     \
    {"device", required_argument, NULL, OPTION_DEVICE},                        \
    {"precision", required_argument, NULL, OPTION_PRECISION},                  \
    {"batch", required_argument, NULL, OPTION_BATCH},                          \
    {"threads", required_argument, NULL, OPTION_THREADS}

#define ENGINE_FLAGS_HELP                                                                  \
    "  --device D         auto, cpu or cuda (default auto: the GPU when usable)\n"         \
    "  --precision P      fp32, tf32, fp16 or bf16 (GPU only; the CPU computes fp32)\n"   \
    "  --batch N          images per forward pass (default 32)\n"                          \
    "  --threads N        CPU threads (default: all cores)\n"

/* Handles one getopt_long result. Returns 1 if it was an engine flag, 0 if
 * not, -1 for a bad value (after printing "cnx COMMAND: --flag: ..."). */
int engine_options_parse(cnx_options *options, int option, const char *value, const char *command);

/* Says on stderr what the engine runs on ("cnx: ARCH on DEVICE") and, when
 * --device auto left a GPU that is there for the CPU, why, on one line. */
void engine_report(const cnx_engine *engine, const cnx_model_info *info);

#endif
