#include "bench_options.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: cnx-bench [-w W.safetensors | --arch NAME] [--seed N] [--mode model|preprocess|end-to-end]\n"
    "                 [--device auto|cpu|cuda] [--precision LIST] [--batch LIST] [--input-size N]\n"
    "                 [--warmup N] [--iterations N | --duration SECONDS] [--no-graphs]\n"
    "                 [--images DIR] [--image-size WxH] [--threads N] [-k N] [--json]\n"
    "\n"
    "Throughput and latency of cnx, trtexec-style (min/mean/median/p90/p95/p99).\n"
    "\n"
    "  -w FILE|DIR       weights (safetensors or a checkpoint folder); otherwise\n"
    "                    random weights of --arch\n"
    "  --arch NAME       convnext_atto ... convnext_xxlarge, convnextv2_atto ...\n"
    "                    convnextv2_huge (default convnext_tiny)\n"
    "  --seed N          seed of the random weights (default 0)\n"
    "  --mode MODE       model: the forward, input already on the device (default);\n"
    "                    preprocess: random RGB8 images of --image-size to the model's\n"
    "                      input (on CUDA the kernel alone, and with the upload);\n"
    "                    end-to-end: cnx_engine_classify_files over the images in --images\n"
    "  --device D        auto (default: CUDA when usable), cpu or cuda\n"
    "  --precision LIST  comma-separated fp32,tf32,fp16,bf16 (default fp16 on CUDA,\n"
    "                    fp32 on the CPU, which always computes fp32)\n"
    "  --batch LIST      comma-separated batch sizes, one engine each (default 1,32,256\n"
    "                    on CUDA, 1,8 on the CPU)\n"
    "  --input-size N    the model's input side (default: the weights' crop, 224); in\n"
    "                    preprocess and end-to-end modes the crop, the resize scaled alike\n"
    "  --warmup N        untimed iterations first (default 10; CPU 2)\n"
    "  --iterations N    timed iterations (default 100; CPU 5)\n"
    "  --duration S      time iterations until S seconds have passed instead\n"
    "  --no-graphs       run the CUDA backend without CUDA graphs (CNX_CUDA_GRAPHS=0)\n"
    "  --images DIR      end-to-end: the *.jpg, *.jpeg and *.png files in DIR\n"
    "  --image-size WxH  preprocess: the synthetic images' size (default 500x375)\n"
    "  --threads N       the CPU engine's threads, and the decode threads of end-to-end\n"
    "                    runs (default 0: one per core)\n"
    "  -k N              end-to-end: predictions per image (default 5)\n"
    "  --json            one JSON object on stdout (progress and warnings on stderr)\n"
    "\n"
    "Exit status: 0 ok; 1 some configurations failed (their rows say why);\n"
    "2 usage errors, unreadable weights, or --device cuda without a usable GPU.\n";

void bench_print_usage(FILE *out) { fputs(usage, out); }

const char *bench_precision_name(cnx_precision precision) {
    static const char *const names[] = {"fp32", "tf32", "fp16", "bf16"}; /* cnx_precision order */
    return precision >= CNX_PRECISION_FP32 && precision <= CNX_PRECISION_BF16 ? names[precision]
                                                                              : "?";
}

const char *bench_mode_name(bench_mode mode) {
    switch (mode) {
    case BENCH_MODE_MODEL: return "model";
    case BENCH_MODE_PREPROCESS: return "preprocess";
    case BENCH_MODE_END_TO_END: return "end-to-end";
    }
    return "?";
}

static int usage_error(const char *flag, const char *value, const char *what) {
    if (value)
        fprintf(stderr, "cnx-bench: %s: \"%s\" is not %s\n", flag, value, what);
    else
        fprintf(stderr, "cnx-bench: %s %s\n", flag, what);
    return 2;
}

/* A whole number in [min, max], all of text. */
static int parse_int(const char *text, long long min, long long max, long long *out) {
    if (!text[0] || text[0] == ' ' || text[0] == '+') return -1;
    errno = 0;
    char *end;
    const long long value = strtoll(text, &end, 10);
    if (errno || *end || value < min || value > max) return -1;
    *out = value;
    return 0;
}

static int parse_precision(const char *text, cnx_precision *out) {
    for (int p = CNX_PRECISION_FP32; p <= CNX_PRECISION_BF16; p++)
        if (strcmp(text, bench_precision_name((cnx_precision)p)) == 0) {
            *out = (cnx_precision)p;
            return 0;
        }
    return -1;
}

/* A comma-separated list of precisions or of batch sizes. */
static int parse_list(const char *flag, const char *text, int precisions, void *out, int *count) {
    char item[64];
    *count = 0;
    for (const char *p = text;; p++) {
        const char *comma = strchr(p, ',');
        const size_t length = comma ? (size_t)(comma - p) : strlen(p);
        if (length >= sizeof item) return usage_error(flag, text, "a comma-separated list");
        memcpy(item, p, length);
        item[length] = '\0';
        if (*count == BENCH_MAX_LIST)
            return usage_error(flag, NULL, "lists at most 16 values");
        long long value;
        if (precisions) {
            if (parse_precision(item, &((cnx_precision *)out)[*count]) != 0)
                return usage_error(flag, item, "one of fp32, tf32, fp16, bf16");
        } else {
            if (parse_int(item, 1, 65536, &value) != 0)
                return usage_error(flag, item, "a positive integer (at most 65536)");
            ((int *)out)[*count] = (int)value;
        }
        (*count)++;
        if (!comma) return 0;
        p = comma;
    }
}

static int parse_image_size(const char *text, int *width, int *height) {
    char *x = strchr(text, 'x');
    if (!x) return -1;
    char w[16];
    const size_t length = (size_t)(x - text);
    if (length >= sizeof w) return -1;
    memcpy(w, text, length);
    w[length] = '\0';
    long long a, b;
    if (parse_int(w, 1, CNX_MAX_SIDE, &a) != 0 || parse_int(x + 1, 1, CNX_MAX_SIDE, &b) != 0)
        return -1;
    *width = (int)a;
    *height = (int)b;
    return 0;
}

int bench_parse_options(int argc, char **argv, bench_options *o) {
    *o = (bench_options){.arch = "convnext_tiny", .warmup = -1, .iterations = -1, .graphs = 1,
                         .image_width = 500, .image_height = 375, .k = 5};
    int arch_given = 0, iterations_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            bench_print_usage(stdout);
            return 1;
        }
        if (strcmp(flag, "--no-graphs") == 0) {
            o->graphs = 0;
            continue;
        }
        if (strcmp(flag, "--json") == 0) {
            o->json = 1;
            continue;
        }
        static const char *const with_value[] = {
            "-w", "--arch", "--seed", "--mode", "--device", "--precision", "--batch",
            "--input-size", "--warmup", "--iterations", "--duration", "--images",
            "--image-size", "--threads", "-k", NULL};
        int known = 0;
        for (int f = 0; with_value[f]; f++) known = known || strcmp(flag, with_value[f]) == 0;
        if (!known) {
            fprintf(stderr, "cnx-bench: %s: unknown flag (see cnx-bench --help)\n", flag);
            return 2;
        }
        if (i + 1 >= argc) return usage_error(flag, NULL, "needs a value");
        const char *value = argv[++i];
        long long n;
        if (strcmp(flag, "-w") == 0) {
            o->weights = value;
        } else if (strcmp(flag, "--arch") == 0) {
            o->arch = value;
            arch_given = 1;
        } else if (strcmp(flag, "--seed") == 0) {
            errno = 0;
            char *end;
            const unsigned long long seed = strtoull(value, &end, 10);
            if (!value[0] || value[0] == '-' || value[0] == ' ' || *end || errno)
                return usage_error(flag, value, "a non-negative integer");
            o->seed = seed;
        } else if (strcmp(flag, "--mode") == 0) {
            int found = 0;
            for (int m = BENCH_MODE_MODEL; m <= BENCH_MODE_END_TO_END && !found; m++)
                if (strcmp(value, bench_mode_name((bench_mode)m)) == 0) {
                    o->mode = (bench_mode)m;
                    found = 1;
                }
            if (!found) return usage_error(flag, value, "one of model, preprocess, end-to-end");
        } else if (strcmp(flag, "--device") == 0) {
            if (strcmp(value, "auto") == 0) o->device = CNX_DEVICE_AUTO;
            else if (strcmp(value, "cpu") == 0) o->device = CNX_DEVICE_CPU;
            else if (strcmp(value, "cuda") == 0) o->device = CNX_DEVICE_CUDA;
            else return usage_error(flag, value, "one of auto, cpu, cuda");
        } else if (strcmp(flag, "--precision") == 0) {
            if (parse_list(flag, value, 1, o->precisions, &o->num_precisions) != 0) return 2;
        } else if (strcmp(flag, "--batch") == 0) {
            if (parse_list(flag, value, 0, o->batches, &o->num_batches) != 0) return 2;
        } else if (strcmp(flag, "--input-size") == 0) {
            if (parse_int(value, 1, CNX_MAX_SIDE, &n) != 0)
                return usage_error(flag, value, "a positive integer (at most 16384)");
            o->input_size = (int)n;
        } else if (strcmp(flag, "--warmup") == 0) {
            if (parse_int(value, 0, INT_MAX / 2, &n) != 0)
                return usage_error(flag, value, "a non-negative integer");
            o->warmup = (int)n;
        } else if (strcmp(flag, "--iterations") == 0) {
            if (parse_int(value, 1, INT_MAX / 2, &n) != 0)
                return usage_error(flag, value, "a positive integer");
            o->iterations = (int)n;
            iterations_given = 1;
        } else if (strcmp(flag, "--duration") == 0) {
            char *end;
            errno = 0;
            const double seconds = strtod(value, &end);
            if (!value[0] || *end || errno || !(seconds > 0) || !isfinite(seconds))
                return usage_error(flag, value, "a positive number of seconds");
            o->duration = seconds;
        } else if (strcmp(flag, "--images") == 0) {
            o->images = value;
        } else if (strcmp(flag, "--image-size") == 0) {
            if (parse_image_size(value, &o->image_width, &o->image_height) != 0)
                return usage_error(flag, value, "WIDTHxHEIGHT (e.g. 500x375)");
        } else if (strcmp(flag, "--threads") == 0) {
            if (parse_int(value, 0, 4096, &n) != 0)
                return usage_error(flag, value, "a non-negative integer");
            o->threads = (int)n;
        } else if (strcmp(flag, "-k") == 0) {
            if (parse_int(value, 1, 1000000, &n) != 0)
                return usage_error(flag, value, "a positive integer");
            o->k = (int)n;
        }
    }
    if (o->weights && arch_given)
        return usage_error("-w", NULL, "and --arch exclude each other");
    if (iterations_given && o->duration > 0)
        return usage_error("--iterations", NULL, "and --duration exclude each other");
    if (o->mode == BENCH_MODE_END_TO_END && !o->images)
        return usage_error("--images", NULL, "is required by --mode end-to-end");
    if (o->images && o->mode != BENCH_MODE_END_TO_END)
        return usage_error("--images", NULL, "is for --mode end-to-end");
    return 0;
}

void bench_apply_defaults(bench_options *o, int on_cuda) {
    if (o->num_precisions == 0) {
        o->precisions[0] = on_cuda ? CNX_PRECISION_FP16 : CNX_PRECISION_FP32;
        o->num_precisions = 1;
    }
    if (o->num_batches == 0) {
        static const int cuda_batches[] = {1, 32, 256}, cpu_batches[] = {1, 8};
        o->num_batches = on_cuda ? 3 : 2;
        memcpy(o->batches, on_cuda ? cuda_batches : cpu_batches,
               (size_t)o->num_batches * sizeof(int));
    }
    if (o->warmup < 0) o->warmup = on_cuda ? 10 : 2;
    if (o->iterations < 0) o->iterations = on_cuda ? 100 : 5;
}
