/* Loading inputs into a batch tensor, forwarding it, and handing each
 * input's logits (or error) back in input order. */
#define _POSIX_C_SOURCE 200809L
#include "batch_runner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "input_open.h"
#include "npy.h"
#include "progress.h"

/* A place in the current batch: an input, and its result or error. */
typedef struct {
    size_t input;
    int tensor; /* index in the batch tensor, -1 when it failed before */
    char error[512];
} slot;

typedef struct {
    const batch_runner_params *params;
    const batch_input *inputs;
    progress *bar;

    int capacity;        /* images per forward */
    int height, width;   /* of the images in the batch tensor */
    int filled;          /* images in the batch tensor */
    float *tensor;       /* [capacity, 3, height, width] */
    size_t tensor_floats;
    slot *slots;
    int num_slots;
    int max_slots;
    float *logits; /* [capacity, classes] */

    const char *npy_path; /* the .npy file open in npy */
    npy_reader npy;

    cnx_prediction *top; /* [k], a tensor's predictions */
    size_t done;         /* inputs handed over */
} runner;

static int is_npy(const char *path) {
    FILE *f = input_open(path);
    if (!f)
        return 0;
    char magic[6];
    int found = fread(magic, 1, 6, f) == 6 && !memcmp(magic, "\x93NUMPY", 6);
    fclose(f);
    return found;
}

int batch_inputs_from_paths(const input_list *paths, batch_input **inputs_out, size_t *count_out) {
    size_t count = 0, capacity = paths->count + 16;
    batch_input *inputs = malloc(capacity * sizeof *inputs);
    for (size_t i = 0; inputs && i < paths->count; i++) {
        int64_t images = -1;
        npy_reader header;
        char error[256];
        const int tensor = is_npy(paths->paths[i]);
        if (tensor && npy_reader_open(paths->paths[i], &header, error, sizeof error) == 0) {
            if (header.ndim == 4 && header.shape[0] > 0) /* none: one input that fails */
                images = header.shape[0];
            npy_reader_close(&header);
        }
        for (int64_t j = images < 0 ? -1 : 0; j < (images < 0 ? 0 : images); j++) {
            if (count == capacity) {
                capacity *= 2;
                batch_input *grown = realloc(inputs, capacity * sizeof *inputs);
                if (!grown) {
                    free(inputs);
                    return -1;
                }
                inputs = grown;
            }
            inputs[count++] = (batch_input){paths->paths[i], tensor, j};
        }
    }
    if (!inputs)
        return -1;
    *inputs_out = inputs;
    *count_out = count;
    return 0;
}

void batch_input_name(const batch_input *input, char *name, size_t size) {
    if (input->npy_index < 0)
        snprintf(name, size, "%s", input->path);
    else
        snprintf(name, size, "%s[%lld]", input->path, (long long)input->npy_index);
}

/* Makes *dst hold at least `floats` floats. */
static int reserve(float **dst, size_t *dst_floats, size_t floats) {
    if (floats <= *dst_floats)
        return 0;
    float *grown = realloc(*dst, floats * sizeof(float));
    if (!grown)
        return -1;
    *dst = grown;
    *dst_floats = floats;
    return 0;
}

/* Loads one image of a .npy file into dst (grown as needed). */
static int load_npy_input(runner *r, const batch_input *in, float **dst, size_t *dst_floats,
                          int *height, int *width, char *error, size_t error_size) {
    char cause[256];
    if (r->npy_path != in->path) {
        npy_reader_close(&r->npy);
        r->npy_path = NULL;
        if (npy_reader_open(in->path, &r->npy, cause, sizeof cause) != 0) {
            snprintf(error, error_size, "%s: %s", in->path, cause);
            return -1;
        }
        r->npy_path = in->path;
    }
    npy_reader *a = &r->npy;
    const int channel_axis = a->ndim == 4 ? 1 : 0;
    /* The index came from the header when the inputs were listed: check it
     * against the file as it is now. */
    const int index_fits = a->ndim == 4 ? in->npy_index >= 0 && in->npy_index < a->shape[0]
                                        : in->npy_index < 0;
    if ((a->ndim != 3 && a->ndim != 4) || a->shape[channel_axis] != 3 ||
        a->shape[channel_axis + 1] > CNX_MAX_SIDE || a->shape[channel_axis + 2] > CNX_MAX_SIDE ||
        !index_fits) {
        snprintf(error, error_size, "%s: expected a float32 tensor [3,H,W] or [N,3,H,W] with H, W <= %d",
                 in->path, CNX_MAX_SIDE);
        return -1;
    }
    *height = (int)a->shape[channel_axis + 1];
    *width = (int)a->shape[channel_axis + 2];
    const size_t floats = (size_t)3 * *height * *width;
    if (reserve(dst, dst_floats, floats) != 0) {
        snprintf(error, error_size, "%s: out of memory", in->path);
        return -1;
    }
    if (npy_reader_read(a, (in->npy_index < 0 ? 0 : (size_t)in->npy_index) * floats, floats, *dst, cause,
                        sizeof cause) != 0) {
        snprintf(error, error_size, "%s: %s", in->path, cause);
        return -1;
    }
    return 0;
}

/* Runs the batch tensor through the model, falling back to one image at a
 * time when the batch fails, so one bad tensor costs only its own result. */
static void forward_batch(runner *r) {
    const int classes = r->params->num_classes;
    cnx_engine *engine = r->params->engine;
    if (r->filled == 0)
        return;
    if (cnx_engine_forward(engine, r->tensor, r->filled, r->height, r->width, r->logits) == CNX_OK)
        return;
    const size_t image_floats = (size_t)3 * r->height * r->width;
    for (int s = 0; s < r->num_slots; s++) {
        slot *sl = &r->slots[s];
        if (sl->tensor < 0)
            continue;
        if (cnx_engine_forward(engine, r->tensor + sl->tensor * image_floats, 1, r->height, r->width,
                               r->logits + (size_t)sl->tensor * classes) != CNX_OK) {
            char name[256];
            batch_input_name(&r->inputs[sl->input], name, sizeof name);
            snprintf(sl->error, sizeof sl->error, "%.255s: %.250s", name, cnx_last_error());
            sl->tensor = -1;
        }
    }
}

/* Hands one input's result to the command, writes its --dump-logits row,
 * and moves the progress line on. */
static void deliver(runner *r, size_t input, const float *logits, const cnx_prediction *top,
                    const char *error) {
    const batch_runner_params *p = r->params;
    char name[4096];
    batch_input_name(&r->inputs[input], name, sizeof name);
    progress_finish(r->bar); /* a clean line for the result; redrawn below */
    if (p->on_result(p->user, input, name, logits, top, error) != 0)
        logits = NULL;
    if (p->dump_logits) {
        for (int c = 0; c < p->num_classes; c++) {
            const float value = logits ? logits[c] : NAN;
            fwrite(&value, sizeof value, 1, p->dump_logits);
        }
    }
    fflush(stdout);
    progress_update(r->bar, ++r->done);
}

/* Runs what the tensor batch holds and hands every slot over in order. */
static void flush(runner *r) {
    const batch_runner_params *p = r->params;
    const int classes = p->num_classes;
    forward_batch(r);
    for (int s = 0; s < r->num_slots; s++) {
        slot *sl = &r->slots[s];
        const float *logits = sl->tensor >= 0 ? r->logits + (size_t)sl->tensor * classes : NULL;
        const char *error = sl->error;
        if (logits && cnx_top_k(logits, classes, p->k, r->top) != CNX_OK) {
            char name[256];
            batch_input_name(&r->inputs[sl->input], name, sizeof name);
            snprintf(sl->error, sizeof sl->error, "%.255s: %.250s", name, cnx_last_error());
            logits = NULL;
        }
        deliver(r, sl->input, logits, logits ? r->top : NULL, logits ? NULL : error);
    }
    r->num_slots = 0;
    r->filled = 0;
}

/* Adds one loaded image (or a failure) to the batch, flushing as needed. */
static void add_to_batch(runner *r, size_t input, const float *image, int height, int width,
                         const char *error) {
    if (image && r->filled > 0 && (height != r->height || width != r->width))
        flush(r);
    if (r->num_slots == r->max_slots || (image && r->filled == r->capacity))
        flush(r);
    slot *sl = &r->slots[r->num_slots++];
    sl->input = input;
    sl->tensor = -1;
    if (!image) {
        snprintf(sl->error, sizeof sl->error, "%s", error);
        return;
    }
    const size_t floats = (size_t)3 * height * width;
    if (reserve(&r->tensor, &r->tensor_floats, (size_t)r->capacity * floats) != 0) {
        char name[256];
        batch_input_name(&r->inputs[input], name, sizeof name);
        snprintf(sl->error, sizeof sl->error, "%s: out of memory for a batch of %dx%d inputs", name,
                 height, width);
        return;
    }
    r->height = height;
    r->width = width;
    memcpy(r->tensor + r->filled * floats, image, floats * sizeof(float));
    sl->tensor = r->filled++;
}

static void runner_free(runner *r) {
    npy_reader_close(&r->npy);
    free(r->tensor);
    free(r->slots);
    free(r->logits);
    free(r->top);
}

/* .npy inputs first..last-1, batched here. */
static void run_tensors(runner *r, size_t first, size_t last) {
    float *staging = NULL;
    size_t staging_floats = 0;
    for (size_t i = first; i < last; i++) {
        char error[512];
        int height = 0, width = 0;
        const int loaded = load_npy_input(r, &r->inputs[i], &staging, &staging_floats, &height,
                                          &width, error, sizeof error);
        add_to_batch(r, i, loaded == 0 ? staging : NULL, height, width, error);
    }
    flush(r);
    free(staging);
}

typedef struct {
    runner *r;
    size_t first; /* the input of the run's first file */
} file_run;

static int on_file(void *user, const cnx_file_result *result) {
    file_run *run = user;
    deliver(run->r, run->first + result->index, result->logits, result->top,
            result->status == CNX_OK ? NULL : result->error);
    return 0;
}

/* Image files first..last-1, through the library's pipeline. */
static void run_files(runner *r, size_t first, size_t last) {
    const batch_runner_params *p = r->params;
    const size_t count = last - first;
    const char **paths = malloc(count * sizeof *paths);
    file_run run = {r, first};
    if (paths) {
        for (size_t i = 0; i < count; i++)
            paths[i] = r->inputs[first + i].path;
        cnx_files_options options = cnx_default_files_options();
        options.preprocess = &p->preprocess;
        options.k = p->k;
        options.want_logits = p->want_logits || p->dump_logits;
        options.batch = p->max_batch;
        options.decode_threads = p->decode_threads;
        cnx_engine_classify_files(p->engine, paths, count, &options, on_file, &run, NULL);
    }
    /* What the pipeline could not even start (or memory for the list). */
    char cause[512];
    snprintf(cause, sizeof cause, "%s", paths ? cnx_last_error() : "out of memory");
    while (r->done < last) {
        char error[1024];
        snprintf(error, sizeof error, "%.500s: %.500s", r->inputs[r->done].path, cause);
        deliver(r, r->done, NULL, NULL, error);
    }
    free(paths);
}

int batch_run(const batch_runner_params *params, const batch_input *inputs, size_t count) {
    runner r;
    memset(&r, 0, sizeof r);
    r.params = params;
    r.inputs = inputs;
    r.capacity = params->max_batch > 0 ? params->max_batch : 1;
    r.max_slots = 4 * r.capacity;
    r.slots = malloc(sizeof(slot) * r.max_slots);
    r.logits = malloc(sizeof(float) * r.capacity * params->num_classes);
    r.top = malloc(sizeof(cnx_prediction) * params->k);
    if (!r.slots || !r.logits || !r.top) {
        fprintf(stderr, "cnx: out of memory for a batch of %d\n", r.capacity);
        runner_free(&r);
        return -1;
    }
    progress bar;
    r.bar = &bar;
    progress_start(&bar, count, "images");
    /* Runs of image files and of tensors, one after another: input order. */
    for (size_t first = 0, last; first < count; first = last) {
        for (last = first + 1; last < count && inputs[last].is_tensor == inputs[first].is_tensor;)
            last++;
        if (inputs[first].is_tensor)
            run_tensors(&r, first, last);
        else
            run_files(&r, first, last);
    }
    progress_finish(&bar);
    runner_free(&r);
    return 0;
}
