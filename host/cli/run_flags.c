#include "run_flags.h"

#include <stdio.h>
#include <string.h>

#include "preprocess_flags.h"

void run_flags_init(run_flags *flags) {
    memset(flags, 0, sizeof *flags);
    flags->options = cnx_default_options();
}

int run_flags_parse(run_flags *flags, int option, const char *value, const char *command) {
    int handled = preprocess_overrides_parse(&flags->overrides, option, value);
    flags->options.use_test_size = flags->overrides.use_test_size; /* read at engine creation */
    if (handled)
        return handled;
    handled = engine_options_parse(&flags->options, option, value, command);
    if (handled)
        return handled;
    switch (option) {
    case 'w': flags->weights = value; return 1;
    case OPTION_LABELS: flags->labels_path = value; return 1;
    case OPTION_JSON: flags->json = 1; return 1;
    case OPTION_DUMP_LOGITS: flags->dump_logits = value; return 1;
    case OPTION_DECODE_THREADS:
        if (parse_positive_int(value, 256, &flags->decode_threads) != 0) {
            fprintf(stderr, "cnx %s: --decode-threads: expected an integer in 1..256, got '%s'\n",
                    command, value);
            return -1;
        }
        return 1;
    }
    return 0;
}

int run_flags_check(const run_flags *flags, const char *command) {
    if (!flags->weights) {
        fprintf(stderr, "cnx %s: -w WEIGHTS is required\n", command);
        return -1;
    }
    return 0;
}
