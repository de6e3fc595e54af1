/* cnx classify: top-k classes for image files, folders and .npy tensors,
 * printed in input order; a bad input gets its own error and the rest
 * still get their results. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnx.h"
#include "commands.h"
#include "inputs.h"
#include "json_output.h"
#include "labels.h"
#include "npy.h"
#include "preprocess_flags.h"
#include "progress.h"

typedef struct {
    const char *weights;
    int k;
    cnx_options options;
    preprocess_overrides overrides;
    const char *labels_path;
    int json;
    const char *dump_logits;
} classify_args;

/* One thing to classify: an image file, or one image of a .npy tensor. */
typedef struct {
    const char *path;
    int is_tensor;     /* a .npy file (found by its magic bytes) */
    int64_t npy_index; /* -1: an image file or a [3,H,W] tensor */
} item;

/* A place in the current batch: an item, and its result or error. */
typedef struct {
    size_t item;
    int tensor; /* index in the batch tensor, -1 when it failed before */
    char error[512];
} slot;

typedef struct {
    cnx_engine *engine;
    cnx_model_info info;
    cnx_preprocess preprocess;
    const classify_args *args;
    labels labels;
    const item *items;
    FILE *dump;

    int capacity;        /* images per forward */
    int height, width;   /* of the images in the batch tensor */
    int filled;          /* images in the batch tensor */
    float *tensor;       /* [capacity, 3, height, width] */
    size_t tensor_floats;
    slot *slots;
    int num_slots;
    int max_slots;
    float *logits;       /* [capacity, classes] */
    cnx_prediction *top; /* [k] */

    const char *npy_path; /* the .npy file whose data is cached */
    npy_array npy;
    int failures;
} classify_run;

static const char usage[] =
    "usage: cnx classify -w WEIGHTS.safetensors [options] IMAGE|DIR|TENSOR.npy ...\n"
    "\n"
    "Prints the top-k classes of each input, in input order. Folders are read\n"
    "recursively in sorted order (PNG and JPEG files). A .npy input holds float32\n"
    "[3,H,W] or [N,3,H,W] tensors that are already preprocessed.\n"
    "\n"
    "options:\n"
    "  -w, --weights FILE  safetensors weights (torchvision or timm names)\n"
    "  -k N               classes per image (default 5)\n"
    "  --device D         auto, cpu or cuda (default auto: the GPU when usable)\n"
    "  --precision P      fp32, tf32, fp16 or bf16 (GPU only; the CPU computes fp32)\n"
    "  --batch N          images per forward pass (default 32)\n"
    "  --threads N        CPU threads (default: all cores)\n"
    PREPROCESS_FLAGS_HELP
    "  --labels FILE      class names, one per line (default: ImageNet-1k names\n"
    "                     for 1000-class models)\n"
    "  --json             one JSON object per input\n"
    "  --dump-logits F    write float32 [N, classes] logits to F (.npy); a failed\n"
    "                     input gets a row of NaN\n"
    "  -h, --help         this help\n"
    "\n"
    "exit status: 0 all classified, 1 some inputs failed, 2 usage or weights error\n";

static int parse_choice(const char *value, const char *const *names, int count) {
    for (int i = 0; i < count; i++)
        if (!strcmp(value, names[i]))
            return i;
    return -1;
}

/* Returns 0 to run, 1 after --help, -1 on a usage error (message printed). */
static int parse_args(int argc, char **argv, classify_args *a) {
    enum { OPT_DEVICE = 2000, OPT_PRECISION, OPT_BATCH, OPT_THREADS, OPT_LABELS, OPT_JSON, OPT_DUMP };
    static const struct option long_options[] = {
        {"weights", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"precision", required_argument, NULL, OPT_PRECISION},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"labels", required_argument, NULL, OPT_LABELS},
        {"json", no_argument, NULL, OPT_JSON},
        {"dump-logits", required_argument, NULL, OPT_DUMP},
        PREPROCESS_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    static const char *const devices[] = {"auto", "cpu", "cuda"};
    static const char *const precisions[] = {"fp32", "tf32", "fp16", "bf16"};
    memset(a, 0, sizeof *a);
    a->k = 5;
    a->options = cnx_default_options();
    optind = 1;
    opterr = 0;
    int option;
    while ((option = getopt_long(argc, argv, ":w:k:h", long_options, NULL)) != -1) {
        int handled = preprocess_overrides_parse(&a->overrides, option, optarg);
        if (handled < 0)
            return -1;
        if (handled)
            continue;
        switch (option) {
        case 'w': a->weights = optarg; break;
        case 'h': fputs(usage, stdout); return 1;
        case 'k':
            if (parse_positive_int(optarg, 100000, &a->k) != 0) {
                fprintf(stderr, "cnx classify: -k: expected a positive integer, got '%s'\n", optarg);
                return -1;
            }
            break;
        case OPT_DEVICE: {
            int device = parse_choice(optarg, devices, 3);
            if (device < 0) {
                fprintf(stderr, "cnx classify: --device: expected auto, cpu or cuda, got '%s'\n", optarg);
                return -1;
            }
            a->options.device = (cnx_device)device;
            break;
        }
        case OPT_PRECISION: {
            int precision = parse_choice(optarg, precisions, 4);
            if (precision < 0) {
                fprintf(stderr, "cnx classify: --precision: expected fp32, tf32, fp16 or bf16, got '%s'\n", optarg);
                return -1;
            }
            a->options.precision = (cnx_precision)precision;
            break;
        }
        case OPT_BATCH:
            if (parse_positive_int(optarg, 4096, &a->options.max_batch) != 0) {
                fprintf(stderr, "cnx classify: --batch: expected an integer in 1..4096, got '%s'\n", optarg);
                return -1;
            }
            break;
        case OPT_THREADS:
            if (parse_positive_int(optarg, 1024, &a->options.num_threads) != 0) {
                fprintf(stderr, "cnx classify: --threads: expected an integer in 1..1024, got '%s'\n", optarg);
                return -1;
            }
            break;
        case OPT_LABELS: a->labels_path = optarg; break;
        case OPT_JSON: a->json = 1; break;
        case OPT_DUMP: a->dump_logits = optarg; break;
        case ':':
            fprintf(stderr, "cnx classify: %s needs a value\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "cnx classify: unknown option '%s'\n", argv[optind - 1]);
            fputs(usage, stderr);
            return -1;
        }
    }
    if (!a->weights) {
        fprintf(stderr, "cnx classify: -w WEIGHTS is required\n");
        return -1;
    }
    if (optind == argc) {
        fprintf(stderr, "cnx classify: no inputs given\n");
        return -1;
    }
    return 0;
}

static int is_npy(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char magic[6];
    int found = fread(magic, 1, 6, f) == 6 && !memcmp(magic, "\x93NUMPY", 6);
    fclose(f);
    return found;
}

/* One item per image file; one per image of a .npy tensor. A .npy whose
 * header is unreadable is one item, so that its error is reported in place. */
static int build_items(const input_list *inputs, item **items_out, size_t *count_out) {
    size_t count = 0, capacity = inputs->count + 16;
    item *items = malloc(capacity * sizeof *items);
    for (size_t i = 0; items && i < inputs->count; i++) {
        int64_t images = -1;
        npy_array header;
        char error[256];
        const int tensor = is_npy(inputs->paths[i]);
        if (tensor && npy_read_shape(inputs->paths[i], &header, error, sizeof error) == 0 &&
            header.ndim == 4)
            images = header.shape[0];
        for (int64_t j = images < 0 ? -1 : 0; j < (images < 0 ? 0 : images); j++) {
            if (count == capacity) {
                capacity *= 2;
                item *grown = realloc(items, capacity * sizeof *items);
                if (!grown) {
                    free(items);
                    return -1;
                }
                items = grown;
            }
            items[count++] = (item){inputs->paths[i], tensor, j};
        }
    }
    if (!items)
        return -1;
    *items_out = items;
    *count_out = count;
    return 0;
}

static void item_name(const item *it, char *name, size_t size) {
    if (it->npy_index < 0)
        snprintf(name, size, "%s", it->path);
    else
        snprintf(name, size, "%s[%lld]", it->path, (long long)it->npy_index);
}

/* Loads one image of a .npy file into dst (grown as needed). */
static int load_npy_item(classify_run *run, const item *it, float **dst, size_t *dst_floats,
                         int *height, int *width, char *error, size_t error_size) {
    char cause[256];
    if (run->npy_path != it->path) {
        npy_array_free(&run->npy);
        run->npy_path = NULL;
        if (npy_read_float32(it->path, &run->npy, cause, sizeof cause) != 0) {
            snprintf(error, error_size, "%s: %s", it->path, cause);
            return -1;
        }
        run->npy_path = it->path;
    }
    const npy_array *a = &run->npy;
    const int channel_axis = a->ndim == 4 ? 1 : 0;
    if ((a->ndim != 3 && a->ndim != 4) || a->shape[channel_axis] != 3 ||
        a->shape[channel_axis + 1] > 16384 || a->shape[channel_axis + 2] > 16384) {
        snprintf(error, error_size, "%s: expected a float32 tensor [3,H,W] or [N,3,H,W]", it->path);
        return -1;
    }
    *height = (int)a->shape[channel_axis + 1];
    *width = (int)a->shape[channel_axis + 2];
    const size_t floats = (size_t)3 * *height * *width;
    if (floats > *dst_floats) {
        float *grown = realloc(*dst, floats * sizeof(float));
        if (!grown) {
            snprintf(error, error_size, "%s: out of memory", it->path);
            return -1;
        }
        *dst = grown;
        *dst_floats = floats;
    }
    memcpy(*dst, a->data + (it->npy_index < 0 ? 0 : it->npy_index) * floats, floats * sizeof(float));
    return 0;
}

static int load_image_item(classify_run *run, const item *it, float **dst, size_t *dst_floats,
                           int *height, int *width, char *error, size_t error_size) {
    const int crop = run->preprocess.crop;
    const size_t floats = (size_t)3 * crop * crop;
    if (floats > *dst_floats) {
        float *grown = realloc(*dst, floats * sizeof(float));
        if (!grown) {
            snprintf(error, error_size, "%s: out of memory", it->path);
            return -1;
        }
        *dst = grown;
        *dst_floats = floats;
    }
    cnx_image image;
    if (cnx_image_decode_file(it->path, 0, &image) != CNX_OK) {
        snprintf(error, error_size, "%s", cnx_last_error()); /* names the file */
        return -1;
    }
    cnx_status status = cnx_preprocess_image(&image, &run->preprocess, *dst);
    cnx_image_free(&image);
    if (status != CNX_OK) {
        snprintf(error, error_size, "%s: %s", it->path, cnx_last_error());
        return -1;
    }
    *height = *width = crop;
    return 0;
}

static void print_result(classify_run *run, const char *name, const cnx_prediction *top) {
    const int k = run->args->k;
    if (run->args->json) {
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
    if (run->args->json) {
        printf("{\"image\": ");
        json_write_string(stdout, name);
        printf(", \"error\": ");
        json_write_string(stdout, error);
        printf("}\n");
    }
    run->failures++;
}

/* Runs the batch tensor through the model, falling back to one image at a
 * time when the batch fails, so one bad tensor costs only its own result. */
static void forward_batch(classify_run *run) {
    const int classes = run->info.num_classes;
    if (run->filled == 0)
        return;
    if (cnx_engine_forward(run->engine, run->tensor, run->filled, run->height, run->width,
                           run->logits) == CNX_OK)
        return;
    const size_t image_floats = (size_t)3 * run->height * run->width;
    for (int s = 0; s < run->num_slots; s++) {
        slot *sl = &run->slots[s];
        if (sl->tensor < 0)
            continue;
        if (cnx_engine_forward(run->engine, run->tensor + sl->tensor * image_floats, 1, run->height,
                               run->width, run->logits + (size_t)sl->tensor * classes) != CNX_OK) {
            snprintf(sl->error, sizeof sl->error, "%s: %s", run->items[sl->item].path, cnx_last_error());
            sl->tensor = -1;
        }
    }
}

/* Classifies what the batch holds and prints every slot in order. */
static void flush(classify_run *run) {
    const int classes = run->info.num_classes;
    forward_batch(run);
    for (int s = 0; s < run->num_slots; s++) {
        slot *sl = &run->slots[s];
        char name[4096];
        item_name(&run->items[sl->item], name, sizeof name);
        const float *logits = sl->tensor >= 0 ? run->logits + (size_t)sl->tensor * classes : NULL;
        if (logits && cnx_top_k(logits, classes, run->args->k, run->top) != CNX_OK) {
            snprintf(sl->error, sizeof sl->error, "%.200s: %.300s", name, cnx_last_error());
            logits = NULL;
        }
        if (logits)
            print_result(run, name, run->top);
        else
            print_error(run, name, sl->error);
        if (run->dump) {
            for (int c = 0; c < classes; c++) {
                const float value = logits ? logits[c] : NAN;
                fwrite(&value, sizeof value, 1, run->dump);
            }
        }
    }
    fflush(stdout);
    run->num_slots = 0;
    run->filled = 0;
}

/* Adds one loaded image (or a failure) to the batch, flushing as needed. */
static int add_to_batch(classify_run *run, size_t item_index, const float *image, int height,
                        int width, const char *error) {
    if (image && run->filled > 0 && (height != run->height || width != run->width))
        flush(run);
    if (run->num_slots == run->max_slots || (image && run->filled == run->capacity))
        flush(run);
    slot *sl = &run->slots[run->num_slots++];
    sl->item = item_index;
    sl->tensor = -1;
    if (!image) {
        snprintf(sl->error, sizeof sl->error, "%s", error);
        return 0;
    }
    const size_t floats = (size_t)3 * height * width;
    if ((size_t)run->capacity * floats > run->tensor_floats) {
        float *grown = realloc(run->tensor, (size_t)run->capacity * floats * sizeof(float));
        if (!grown) {
            snprintf(sl->error, sizeof sl->error, "out of memory for a batch of %dx%d inputs", height, width);
            return 0;
        }
        run->tensor = grown;
        run->tensor_floats = (size_t)run->capacity * floats;
    }
    run->height = height;
    run->width = width;
    memcpy(run->tensor + run->filled * floats, image, floats * sizeof(float));
    sl->tensor = run->filled++;
    return 0;
}

static int classify_items(classify_run *run, size_t count) {
    const int classes = run->info.num_classes;
    run->capacity = run->args->options.max_batch;
    run->max_slots = 4 * run->capacity;
    run->slots = malloc(sizeof(slot) * run->max_slots);
    run->logits = malloc(sizeof(float) * run->capacity * classes);
    run->top = malloc(sizeof(cnx_prediction) * run->args->k);
    if (!run->slots || !run->logits || !run->top) {
        fprintf(stderr, "cnx classify: out of memory\n");
        return -1;
    }
    float *staging = NULL;
    size_t staging_floats = 0;
    progress bar;
    progress_start(&bar, count, "images");
    for (size_t i = 0; i < count; i++) {
        const item *it = &run->items[i];
        char error[512];
        int height, width;
        int loaded = it->is_tensor
                         ? load_npy_item(run, it, &staging, &staging_floats, &height, &width, error, sizeof error)
                         : load_image_item(run, it, &staging, &staging_floats, &height, &width, error, sizeof error);
        add_to_batch(run, i, loaded == 0 ? staging : NULL, height, width, error);
        progress_update(&bar, i + 1);
    }
    flush(run);
    progress_finish(&bar);
    free(staging);
    return 0;
}

int cmd_classify(int argc, char **argv) {
    classify_args args;
    int parsed = parse_args(argc, argv, &args);
    if (parsed != 0)
        return parsed > 0 ? EXIT_ALL_OK : EXIT_USAGE;

    classify_run run;
    memset(&run, 0, sizeof run);
    run.args = &args;
    if (cnx_engine_create(args.weights, &args.options, &run.engine) != CNX_OK) {
        fprintf(stderr, "cnx: %s\n", cnx_last_error());
        return EXIT_USAGE;
    }
    cnx_engine_info(run.engine, &run.info);
    fprintf(stderr, "cnx: %s on %s\n", run.info.architecture, run.info.device_name);
    run.preprocess = run.info.preprocess;
    preprocess_overrides_apply(&args.overrides, &run.preprocess);

    int status = EXIT_USAGE;
    input_list inputs = {0};
    item *items = NULL;
    size_t count = 0;
    static const char *const extensions[] = {"png", "jpg", "jpeg", "npy", NULL};
    if (args.k > run.info.num_classes) {
        fprintf(stderr, "cnx classify: -k %d, but the model has %d classes\n", args.k, run.info.num_classes);
        goto done;
    }
    if (labels_load(&run.labels, args.labels_path, run.info.num_classes) != 0)
        goto done;
    if (inputs_expand(argv + optind, argc - optind, extensions, &inputs) != 0 ||
        build_items(&inputs, &items, &count) != 0) {
        fprintf(stderr, "cnx classify: out of memory listing the inputs\n");
        goto done;
    }
    if (count == 0) {
        fprintf(stderr, "cnx classify: no images found in the inputs given\n");
        goto done;
    }
    run.items = items;
    if (args.dump_logits) {
        const int64_t shape[2] = {(int64_t)count, run.info.num_classes};
        if (!(run.dump = npy_begin(args.dump_logits, NPY_FLOAT32, 2, shape)))
            goto done;
    }
    if (classify_items(&run, count) != 0)
        goto done;
    status = run.failures ? EXIT_SOME_FAILED : EXIT_ALL_OK;
    if (run.dump && npy_end(run.dump, args.dump_logits) != 0)
        status = EXIT_USAGE;
    run.dump = NULL;
done:
    if (run.dump)
        fclose(run.dump);
    npy_array_free(&run.npy);
    free(run.tensor);
    free(run.slots);
    free(run.logits);
    free(run.top);
    free(items);
    inputs_free(&inputs);
    labels_free(&run.labels);
    cnx_engine_destroy(run.engine);
    return status;
}
