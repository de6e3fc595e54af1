/* Parsing the shared engine flags, and saying what they came to. */
#include "engine_flags.h"

#include <stdio.h>
#include <string.h>

#include "preprocess_flags.h"

static int parse_choice(const char *value, const char *const *names, int count) {
    for (int i = 0; i < count; i++)
        if (!strcmp(value, names[i]))
            return i;
    return -1;
}

int engine_options_parse(cnx_options *options, int option, const char *value, const char *command) {
    static const char *const devices[] = {"auto", "cpu", "cuda"};
    switch (option) {
    case OPTION_DEVICE: {
        int device = parse_choice(value, devices, 3);
        if (device < 0) {
            fprintf(stderr, "cnx %s: --device: expected auto, cpu or cuda, got '%s'\n", command, value);
            return -1;
        }
        options->device = (cnx_device)device;
        return 1;
    }
    case OPTION_PRECISION: {
        if (cnx_precision_parse(value, &options->precision) != 0) {
            fprintf(stderr, "cnx %s: --precision: expected fp32, tf32, fp16 or bf16, got '%s'\n",
                    command, value);
            return -1;
        }
        return 1;
    }
    case OPTION_BATCH:
        if (parse_positive_int(value, 4096, &options->max_batch) != 0) {
            fprintf(stderr, "cnx %s: --batch: expected an integer in 1..4096, got '%s'\n", command, value);
            return -1;
        }
        return 1;
    case OPTION_THREADS:
        if (parse_positive_int(value, 1024, &options->num_threads) != 0) {
            fprintf(stderr, "cnx %s: --threads: expected an integer in 1..1024, got '%s'\n", command, value);
            return -1;
        }
        return 1;
    }
    return 0;
}

void engine_report(const cnx_engine *engine, const cnx_model_info *info) {
    fprintf(stderr, "cnx: %s on %s\n", info->architecture, info->device_name);
    const char *fallback = cnx_engine_fallback_reason(engine);
    if (fallback)
        fprintf(stderr, "cnx: --device auto: running on the CPU: %s\n", fallback);
}
