/* cnx eval: top-1 and top-5 accuracy of a model over a labelled image tree in
 * torchvision's ImageFolder layout, with per-class accuracy and the most
 * confused pairs. Images that cannot be read are named, counted and left out
 * of the accuracy. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_runner.h"
#include "cnx.h"
#include "commands.h"
#include "image_folder.h"
#include "json_output.h"
#include "labels.h"
#include "npy.h"
#include "preprocess_flags.h"
#include "run_flags.h"

enum { MAX_TOP_K = 5, MAX_CONFUSED = 5 };

typedef struct {
    run_flags flags; /* -w, engine, preprocessing, --labels, --json, --dump-logits */
    const char *root;
} eval_args;

typedef struct {
    const char *name;
    char *error;
} failure;

typedef struct {
    int true_class, predicted, count;
} confused_pair;

typedef struct {
    const image_folder *folder;
    int num_classes; /* the model's */
    int k;           /* min(5, num_classes) */
    labels labels;   /* from --labels; none: the folder names */
    size_t evaluated, top1, top5;
    size_t *class_images;  /* [folders] */
    size_t *class_correct; /* [folders] */
    size_t *confusion;     /* [folders, num_classes]: images of folder t predicted as p */
    failure *failures;
    size_t num_failures;
} eval_run;

static const char usage[] =
    "usage: cnx eval -w WEIGHTS.safetensors|CHECKPOINT_DIR [options] DIR\n"
    "\n"
    "Accuracy of the model over DIR in torchvision's ImageFolder layout,\n"
    "DIR/<class>/<image>: the classes are DIR's subfolders in sorted order, and the\n"
    "class index is the position in that order, as ImageFolder numbers them. Images\n"
    "are the files under each class folder, read recursively in sorted order, with\n"
    "ImageFolder's extensions (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp); cnx\n"
    "reads PNG and JPEG, so the others count as failed. Names starting with '.' are\n"
    "skipped. A model may have more classes than DIR has folders (a subset: folder i\n"
    "is still class i), not fewer.\n"
    "\n"
    "Prints the images evaluated and failed, top-1 and top-5 accuracy (top-k with\n"
    "k = the class count for models of under 5 classes), the accuracy of each class\n"
    "and the most confused pairs (true -> predicted). An image that cannot be read\n"
    "is named on stderr, counted as failed and left out of the accuracy.\n"
    "\n"
    "options:\n"
    WEIGHTS_FLAG_HELP
    ENGINE_FLAGS_HELP
    RUN_FLAGS_HELP
    PREPROCESS_FLAGS_HELP
    "  --labels FILE      class names, one per line, for the tables (default: the\n"
    "                     class folder names)\n"
    "  --json             one JSON object: images, failed, top1 and top5 (percent),\n"
    "                     top1_correct, top5_correct, top5_k, per_class, confused,\n"
    "                     failed_images\n"
    "  --dump-logits F    write float32 [N, classes] logits to F (.npy), rows in the\n"
    "                     order above; a failed image gets a row of NaN\n"
    "  -h, --help         this help\n"
    "\n"
    "exit status: 0 all images evaluated, 1 some images failed, 2 usage or weights\n"
    "error\n";

/* Returns 0 to run, 1 after --help, -1 on a usage error (message printed). */
static int parse_args(int argc, char **argv, eval_args *a) {
    static const struct option long_options[] = {
        {"help", no_argument, NULL, 'h'},
        RUN_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    run_flags_init(&a->flags);
    optind = 1;
    opterr = 0;
    int option;
    while ((option = getopt_long(argc, argv, ":w:h", long_options, NULL)) != -1) {
        const int handled = run_flags_parse(&a->flags, option, optarg, "eval");
        if (handled < 0)
            return -1;
        if (handled)
            continue;
        switch (option) {
        case 'h': fputs(usage, stdout); return 1;
        case ':':
            fprintf(stderr, "cnx eval: %s needs a value\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "cnx eval: unknown option '%s'\n", argv[optind - 1]);
            fputs(usage, stderr);
            return -1;
        }
    }
    if (run_flags_check(&a->flags, "eval") != 0)
        return -1;
    if (optind == argc) {
        fprintf(stderr, "cnx eval: no folder given (DIR/<class>/<images>)\n");
        return -1;
    }
    if (argc - optind > 1) {
        fprintf(stderr, "cnx eval: one folder expected, got %d arguments starting at '%s'\n",
                argc - optind, argv[optind]);
        return -1;
    }
    a->root = argv[optind];
    return 0;
}

/* The name of a model class for the tables: its label, the folder of that
 * index, or NULL (print the index). */
static const char *class_name(const eval_run *run, int c) {
    if (run->labels.count)
        return labels_name(&run->labels, c);
    return c < run->folder->num_classes ? run->folder->classes[c] : NULL;
}

static int record_failure(eval_run *run, const char *name, const char *error) {
    fprintf(stderr, "cnx: %s\n", error);
    failure *grown = realloc(run->failures, (run->num_failures + 1) * sizeof *grown);
    if (grown) {
        run->failures = grown;
        run->failures[run->num_failures].name = name;
        run->failures[run->num_failures].error = strdup(error);
        run->num_failures++;
    }
    return -1;
}

/* batch_result_fn: scores one image against its folder's class. */
static int on_result(void *user, size_t index, const char *name, const float *logits,
                     const cnx_prediction *top, const char *error) {
    eval_run *run = user;
    const char *path = run->folder->files.paths[index]; /* outlives the call, unlike name */
    (void)name;
    (void)logits;
    if (!top)
        return record_failure(run, path, error);
    const int target = run->folder->targets[index];
    run->evaluated++;
    run->class_images[target]++;
    if (top[0].class_index == target) {
        run->top1++;
        run->class_correct[target]++;
    } else {
        run->confusion[(size_t)target * run->num_classes + top[0].class_index]++;
    }
    for (int i = 0; i < run->k; i++)
        if (top[i].class_index == target) {
            run->top5++;
            break;
        }
    return 0;
}

/* The most frequent (true, predicted) mistakes, most first, then by class. */
static int most_confused(const eval_run *run, confused_pair *pairs) {
    int n = 0;
    for (int t = 0; t < run->folder->num_classes; t++)
        for (int p = 0; p < run->num_classes; p++) {
            const size_t count = run->confusion[(size_t)t * run->num_classes + p];
            if (count == 0 || (n == MAX_CONFUSED && count <= (size_t)pairs[n - 1].count))
                continue;
            int at = n < MAX_CONFUSED ? n++ : MAX_CONFUSED - 1;
            while (at > 0 && count > (size_t)pairs[at - 1].count) {
                pairs[at] = pairs[at - 1];
                at--;
            }
            pairs[at] = (confused_pair){t, p, (int)count};
        }
    return n;
}

static double percent(size_t part, size_t whole) {
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void print_name(const eval_run *run, int c, int width) {
    const char *name = class_name(run, c);
    if (name)
        printf("%-*s", width, name);
    else
        printf("#%-*d", width > 0 ? width - 1 : 0, c);
}

static void print_text(const eval_run *run, const char *root) {
    const image_folder *f = run->folder;
    printf("folder:  %s (%d classes)\n", root, f->num_classes);
    printf("images:  %zu evaluated, %zu failed\n", run->evaluated, run->num_failures);
    if (run->evaluated) {
        printf("top-1:   %.2f%% (%zu/%zu)\n", percent(run->top1, run->evaluated), run->top1,
               run->evaluated);
        printf("top-%d:   %.2f%% (%zu/%zu)", run->k, percent(run->top5, run->evaluated), run->top5,
               run->evaluated);
        if (run->k < MAX_TOP_K)
            printf("  (top-%d: the model has %d classes)", run->k, run->num_classes);
        printf("\n");
    } else {
        printf("top-1:   - (no image evaluated)\n");
    }

    int folder_width = 6, label_width = 5;
    for (int c = 0; c < f->num_classes; c++) {
        int w = (int)strlen(f->classes[c]);
        folder_width = w > folder_width ? w : folder_width;
        const char *label = run->labels.count ? labels_name(&run->labels, c) : NULL;
        w = label ? (int)strlen(label) : 0;
        label_width = w > label_width ? w : label_width;
    }
    folder_width = folder_width > 40 ? 40 : folder_width;
    label_width = label_width > 40 ? 40 : label_width;
    printf("\nclass  %-*s", folder_width, "folder");
    if (run->labels.count)
        printf("  %-*s", label_width, "label");
    printf("  images    top-1\n");
    for (int c = 0; c < f->num_classes; c++) {
        printf("%5d  %-*s", c, folder_width, f->classes[c]);
        if (run->labels.count)
            printf("  %-*s", label_width, labels_name(&run->labels, c));
        printf("  %6zu  ", run->class_images[c]);
        if (run->class_images[c])
            printf("%6.2f%%\n", percent(run->class_correct[c], run->class_images[c]));
        else
            printf("%7s\n", "-");
    }

    confused_pair pairs[MAX_CONFUSED];
    int n = most_confused(run, pairs);
    printf("\nmost confused (true -> predicted):");
    if (n == 0)
        printf(" none\n");
    else
        printf("\n  images  pair\n");
    for (int i = 0; i < n; i++) {
        printf("  %6d  ", pairs[i].count);
        print_name(run, pairs[i].true_class, 0);
        printf(" -> ");
        print_name(run, pairs[i].predicted, 0);
        printf("\n");
    }
}

static void print_json_name(const eval_run *run, int c) {
    const char *name = class_name(run, c);
    if (name)
        json_write_string(stdout, name);
    else
        printf("null");
}

static void print_json(const eval_run *run, const char *root, const char *weights) {
    const image_folder *f = run->folder;
    printf("{\"folder\": ");
    json_write_string(stdout, root);
    printf(", \"weights\": ");
    json_write_string(stdout, weights);
    printf(", \"classes\": %d, \"model_classes\": %d, \"images\": %zu, \"failed\": %zu",
           f->num_classes, run->num_classes, run->evaluated, run->num_failures);
    printf(", \"top1\": ");
    run->evaluated ? json_write_float(stdout, percent(run->top1, run->evaluated)) : (void)printf("null");
    printf(", \"top1_correct\": %zu, \"top5\": ", run->top1);
    run->evaluated ? json_write_float(stdout, percent(run->top5, run->evaluated)) : (void)printf("null");
    printf(", \"top5_correct\": %zu, \"top5_k\": %d, \"per_class\": [", run->top5, run->k);
    for (int c = 0; c < f->num_classes; c++) {
        printf("%s{\"class\": %d, \"folder\": ", c ? ", " : "", c);
        json_write_string(stdout, f->classes[c]);
        printf(", \"name\": ");
        print_json_name(run, c);
        printf(", \"images\": %zu, \"top1_correct\": %zu, \"top1\": ", run->class_images[c],
               run->class_correct[c]);
        if (run->class_images[c])
            json_write_float(stdout, percent(run->class_correct[c], run->class_images[c]));
        else
            printf("null");
        printf("}");
    }
    printf("], \"confused\": [");
    confused_pair pairs[MAX_CONFUSED];
    int n = most_confused(run, pairs);
    for (int i = 0; i < n; i++) {
        printf("%s{\"true\": %d, \"true_name\": ", i ? ", " : "", pairs[i].true_class);
        print_json_name(run, pairs[i].true_class);
        printf(", \"predicted\": %d, \"predicted_name\": ", pairs[i].predicted);
        print_json_name(run, pairs[i].predicted);
        printf(", \"count\": %d}", pairs[i].count);
    }
    printf("], \"failed_images\": [");
    for (size_t i = 0; i < run->num_failures; i++) {
        printf("%s{\"image\": ", i ? ", " : "");
        json_write_string(stdout, run->failures[i].name);
        printf(", \"error\": ");
        json_write_string(stdout, run->failures[i].error ? run->failures[i].error : "");
        printf("}");
    }
    printf("]}\n");
}

int cmd_eval(int argc, char **argv) {
    eval_args args;
    int parsed = parse_args(argc, argv, &args);
    if (parsed != 0)
        return parsed > 0 ? EXIT_ALL_OK : EXIT_USAGE;

    image_folder folder;
    char error[1024];
    if (image_folder_scan(args.root, &folder, error, sizeof error) != 0) {
        fprintf(stderr, "cnx eval: %s\n", error);
        return EXIT_USAGE;
    }
    if (folder.files.count == 0) {
        fprintf(stderr, "cnx eval: %s: no images in the class folders\n", args.root);
        image_folder_free(&folder);
        return EXIT_USAGE;
    }
    cnx_engine *engine = NULL;
    eval_run run;
    memset(&run, 0, sizeof run);
    batch_input *inputs = NULL;
    batch_runner_params params;
    memset(&params, 0, sizeof params);
    int status = EXIT_USAGE;
    if (cnx_engine_create(args.flags.weights, &args.flags.options, &engine) != CNX_OK) {
        fprintf(stderr, "cnx: %s\n", cnx_last_error());
        goto done;
    }
    cnx_model_info info;
    cnx_engine_info(engine, &info);
    warn_untold_preprocess(args.flags.weights, &info, &args.flags.overrides);
    engine_report(engine, &info);
    if (folder.num_classes > info.num_classes) {
        fprintf(stderr, "cnx eval: %s: %d class folders, but the model has %d classes\n", args.root,
                folder.num_classes, info.num_classes);
        goto done;
    }
    if (folder.num_classes < info.num_classes)
        fprintf(stderr, "cnx eval: note: %s has %d class folder%s for a %d-class model; folder i "
                "is class i, as ImageFolder numbers them\n", args.root, folder.num_classes,
                folder.num_classes == 1 ? "" : "s", info.num_classes);
    /* Names come from --labels or the folders, not the engine. */
    if (labels_load(&run.labels, args.flags.labels_path, NULL, info.num_classes) != 0)
        goto done;
    run.folder = &folder;
    run.num_classes = info.num_classes;
    run.k = info.num_classes < MAX_TOP_K ? info.num_classes : MAX_TOP_K;
    run.class_images = calloc(folder.num_classes, sizeof *run.class_images);
    run.class_correct = calloc(folder.num_classes, sizeof *run.class_correct);
    run.confusion = calloc((size_t)folder.num_classes * info.num_classes, sizeof *run.confusion);
    inputs = malloc(folder.files.count * sizeof *inputs);
    if (!run.class_images || !run.class_correct || !run.confusion || !inputs) {
        fprintf(stderr, "cnx eval: out of memory for %zu images in %d classes\n", folder.files.count,
                folder.num_classes);
        goto done;
    }
    for (size_t i = 0; i < folder.files.count; i++)
        inputs[i] = (batch_input){folder.files.paths[i], 0, -1};

    params = (batch_runner_params){engine, info.num_classes, info.preprocess,
                                   args.flags.options.max_batch, run.k, 0, args.flags.decode_threads,
                                   NULL, on_result, &run};
    if (preprocess_overrides_apply(&args.flags.overrides, &params.preprocess) != 0)
        goto done;
    if (args.flags.dump_logits) {
        const int64_t shape[2] = {(int64_t)folder.files.count, info.num_classes};
        if (!(params.dump_logits = npy_begin(args.flags.dump_logits, NPY_FLOAT32, 2, shape)))
            goto done;
    }
    int ran = batch_run(&params, inputs, folder.files.count);
    FILE *dump = params.dump_logits;
    params.dump_logits = NULL;
    if ((dump && npy_end(dump, args.flags.dump_logits) != 0) || ran != 0)
        goto done;
    if (args.flags.json)
        print_json(&run, args.root, args.flags.weights);
    else
        print_text(&run, args.root);
    status = run.num_failures ? EXIT_SOME_FAILED : EXIT_ALL_OK;
done:
    if (params.dump_logits)
        fclose(params.dump_logits);
    for (size_t i = 0; i < run.num_failures; i++)
        free(run.failures[i].error);
    free(run.failures);
    free(run.class_images);
    free(run.class_correct);
    free(run.confusion);
    free(inputs);
    labels_free(&run.labels);
    cnx_engine_destroy(engine);
    image_folder_free(&folder);
    return status;
}
