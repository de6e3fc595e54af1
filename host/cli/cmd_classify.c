/* cnx classify: top-k classes for image files, folders and .npy tensors,
 * printed in input order; a bad input gets its own error and the rest
 * still get their results. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_runner.h"
#include "cnx.h"
#include "commands.h"
#include "inputs.h"
#include "json_output.h"
#include "labels.h"
#include "npy.h"
#include "preprocess_flags.h"
#include "run_flags.h"
#include "progress.h"

typedef struct {
    run_flags flags; /* -w, engine, preprocessing, --labels, --json, --dump-logits */
    int k;
} classify_args;

/* What the per-input callback needs. */
typedef struct {
    const classify_args *args;
    int num_classes;
    labels labels;
    int failures;
} classify_run;

static const char usage[] =
    "usage: cnx classify -w WEIGHTS.safetensors|CHECKPOINT_DIR [options] IMAGE|DIR|TENSOR.npy ...\n"
    "\n"
    "Prints the top-k classes of each input, in input order. Folders are read\n"
    "recursively in sorted order (PNG and JPEG files). A .npy input holds float32\n"
    "[3,H,W] or [N,3,H,W] tensors that are already preprocessed.\n"
    "\n"
    "options:\n"
    WEIGHTS_FLAG_HELP
    "  -k N               classes per image (default 5, or all of a smaller head)\n"
    ENGINE_FLAGS_HELP
    RUN_FLAGS_HELP
    PREPROCESS_FLAGS_HELP
    "  --labels FILE      class names, one per line (default: the checkpoint's own,\n"
    "                     else ImageNet-1k names for 1000-class models)\n"
    "  --json             one JSON object per input\n"
    "  --dump-logits F    write float32 [N, classes] logits to F (.npy); a failed\n"
    "                     input gets a row of NaN\n"
    "  -h, --help         this help\n"
    "\n"
    "exit status: 0 all classified, 1 some inputs failed, 2 usage or weights error\n";

/* Returns 0 to run, 1 after --help, -1 on a usage error (message printed). */
static int parse_args(int argc, char **argv, classify_args *a) {
    static const struct option long_options[] = {
        {"help", no_argument, NULL, 'h'},
        RUN_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    run_flags_init(&a->flags);
    a->k = 0; /* not given: 5, or every class of a smaller head */
    optind = 1;
    opterr = 0;
    int option;
    while ((option = getopt_long(argc, argv, ":w:k:h", long_options, NULL)) != -1) {
        const int handled = run_flags_parse(&a->flags, option, optarg, "classify");
        if (handled < 0)
            return -1;
        if (handled)
            continue;
        switch (option) {
        case 'h': fputs(usage, stdout); return 1;
        case 'k':
            if (parse_positive_int(optarg, 100000, &a->k) != 0) {
                fprintf(stderr, "cnx classify: -k: expected an integer in 1..100000, got '%s'\n", optarg);
                return -1;
            }
            break;
        case ':':
            fprintf(stderr, "cnx classify: %s needs a value\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "cnx classify: unknown option '%s'\n", argv[optind - 1]);
            fputs(usage, stderr);
            return -1;
        }
    }
    if (run_flags_check(&a->flags, "classify") != 0)
        return -1;
    if (optind == argc) {
        fprintf(stderr, "cnx classify: no inputs given\n");
        return -1;
    }
    return 0;
}

static void print_result(classify_run *run, const char *name, const cnx_prediction *top) {
    const int k = run->args->k;
    if (run->args->flags.json) {
        printf("{\"image\": ");
        json_write_string(stdout, name);
        printf(", \"top\": [");
        for (int i = 0; i < k; i++) {
            const char *label = labels_name(&run->labels, top[i].class_index);
            printf("%s{\"class\": %d, \"label\": ", i ? ", " : "", top[i].class_index);
            if (label)
                json_write_string(stdout, label);
            else
                printf("null");
            printf(", \"prob\": ");
            json_write_float(stdout, top[i].probability);
            printf("}");
        }
        printf("]}\n");
        return;
    }
    printf("%s\n", name);
    for (int i = 0; i < k; i++) {
        const char *label = labels_name(&run->labels, top[i].class_index);
        printf("  %7.3f%%  %4d  %s\n", 100.0 * top[i].probability, top[i].class_index,
               label ? label : "");
    }
}

static void print_error(classify_run *run, const char *name, const char *error) {
    fprintf(stderr, "cnx: %s\n", error);
    if (run->args->flags.json) {
        printf("{\"image\": ");
        json_write_string(stdout, name);
        printf(", \"error\": ");
        json_write_string(stdout, error);
        printf("}\n");
    }
    run->failures++;
}

/* batch_result_fn: prints one input's top-k, or its error. */
static int on_result(void *user, size_t index, const char *name, const float *logits,
                     const cnx_prediction *top, const char *error) {
    classify_run *run = user;
    (void)index;
    (void)logits;
    if (!top) {
        print_error(run, name, error);
        return -1;
    }
    print_result(run, name, top);
    return 0;
}

int cmd_classify(int argc, char **argv) {
    classify_args args;
    int parsed = parse_args(argc, argv, &args);
    if (parsed != 0)
        return parsed > 0 ? EXIT_ALL_OK : EXIT_USAGE;

    cnx_engine *engine;
    if (cnx_engine_create(args.flags.weights, &args.flags.options, &engine) != CNX_OK) {
        fprintf(stderr, "cnx: %s\n", cnx_last_error());
        return EXIT_USAGE;
    }
    cnx_model_info info;
    cnx_engine_info(engine, &info);
    engine_report(engine, &info);
    warn_untold_preprocess(args.flags.weights, &info, &args.flags.overrides);

    classify_run run;
    memset(&run, 0, sizeof run);
    run.args = &args;
    run.num_classes = info.num_classes;
    batch_runner_params params = {engine, info.num_classes, info.preprocess, args.flags.options.max_batch,
                                  0, 0, args.flags.decode_threads, NULL, on_result, &run};

    int status = EXIT_USAGE;
    input_list inputs = {0};
    batch_input *items = NULL;
    size_t count = 0;
    static const char *const extensions[] = {"png", "jpg", "jpeg", "npy", NULL};
    if (preprocess_overrides_apply(&args.flags.overrides, &params.preprocess) != 0)
        goto done;
    if (args.k == 0)
        args.k = info.num_classes < 5 ? info.num_classes : 5;
    if (args.k > info.num_classes) {
        fprintf(stderr, "cnx classify: -k %d, but the model has %d classes\n", args.k, info.num_classes);
        goto done;
    }
    if (labels_load(&run.labels, args.flags.labels_path, engine, info.num_classes) != 0)
        goto done;
    if (inputs_expand(argv + optind, argc - optind, extensions, &inputs) != 0 ||
        batch_inputs_from_paths(&inputs, &items, &count) != 0) {
        fprintf(stderr, "cnx classify: out of memory listing the inputs\n");
        goto done;
    }
    if (count == 0) {
        fprintf(stderr, "cnx classify: no images found in the inputs given\n");
        goto done;
    }
    params.k = args.k;
    if (args.flags.dump_logits) {
        const int64_t shape[2] = {(int64_t)count, info.num_classes};
        if (!(params.dump_logits = npy_begin(args.flags.dump_logits, NPY_FLOAT32, 2, shape)))
            goto done;
    }
    if (batch_run(&params, items, count) != 0)
        goto done;
    status = run.failures ? EXIT_SOME_FAILED : EXIT_ALL_OK;
    if (params.dump_logits && npy_end(params.dump_logits, args.flags.dump_logits) != 0)
        status = EXIT_USAGE;
    params.dump_logits = NULL;
done:
    if (params.dump_logits)
        fclose(params.dump_logits);
    free(items);
    inputs_free(&inputs);
    labels_free(&run.labels);
    cnx_engine_destroy(engine);
    return status;
}
