/* The flags of the commands that run a model over images (classify, eval):
 * -w, the engine and preprocessing flags, --labels, --json, --dump-logits. */
#ifndef CNX_CLI_RUN_FLAGS_H
#define CNX_CLI_RUN_FLAGS_H

#include "cnx.h"
#include "engine_flags.h"
#include "preprocess_flags.h"

enum { OPTION_LABELS = 1200, OPTION_JSON, OPTION_DUMP_LOGITS, OPTION_DECODE_THREADS };

/* The help lines of the flags above that the engine and preprocessing
 * flags' own help does not cover (each command words -w, --labels, --json
 * and --dump-logits itself). */
#define WEIGHTS_FLAG_HELP                                                                  \
    "  -w, --weights W    safetensors weights (torchvision, timm or transformers\n"      \
    "                     names), or a timm / Hugging Face checkpoint folder\n"          \
    "                     (model.safetensors, config.json, preprocessor_config.json)\n"

#define RUN_FLAGS_HELP                                                                     \
    "  --decode-threads N threads decoding image files while the model runs\n"           \
    "                     (default: one per core)\n"

/* Entries for a getopt_long option table (with "w:" in the short options). */
#define RUN_LONG_OPTIONS                                                        \
    {"weights", required_argument, NULL, 'w'},                                 \
    {"labels", required_argument, NULL, OPTION_LABELS},                        \
    {"json", no_argument, NULL, OPTION_JSON},                                  \
    {"dump-logits", required_argument, NULL, OPTION_DUMP_LOGITS},              \
    {"decode-threads", required_argument, NULL, OPTION_DECODE_THREADS},        \
    ENGINE_LONG_OPTIONS,                                                       \
    PREPROCESS_LONG_OPTIONS

typedef struct run_flags {
    const char *weights;
    const char *labels_path;
    const char *dump_logits;
    int json;
    int decode_threads; /* 0: the default of cnx_files_options */
    cnx_options options;
    preprocess_overrides overrides;
} run_flags;

void run_flags_init(run_flags *flags);

/* Handles one getopt_long result. Returns 1 if it was one of these flags, 0
 * if not, -1 for a bad value (after printing "cnx COMMAND: ..."). */
int run_flags_parse(run_flags *flags, int option, const char *value, const char *command);

/* After parsing: -w is required. Returns 0, or -1 after printing why. */
int run_flags_check(const run_flags *flags, const char *command);

#endif
