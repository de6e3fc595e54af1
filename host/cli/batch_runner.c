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
            if (header.ndim == 4)
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

static int load_image_input(runner *r, const batch_input *in, float **dst, size_t *dst_floats,
                            int *height, int *width, char *error, size_t error_size) {
    const int crop = r->params->preprocess.crop;
    if (reserve(dst, dst_floats, (size_t)3 * crop * crop) != 0) {
        snprintf(error, error_size, "%s: out of memory", in->path);
        return -1;
    }
    cnx_image image;
    if (cnx_image_decode_file(in->path, 0, &image) != CNX_OK) {
        snprintf(error, error_size, "%s", cnx_last_error()); /* names the file */
        return -1;
    }
    cnx_status status = cnx_preprocess_image(&image, &r->params->preprocess, *dst);
    cnx_image_free(&image);
    if (status != CNX_OK) {
        snprintf(error, error_size, "%s: %s", in->path, cnx_last_error());
        return -1;
    }
    *height = *width = crop;
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

/* Runs what the batch holds and hands every slot over in order. */
static void flush(runner *r) {
    const batch_runner_params *p = r->params;
    const int classes = p->num_classes;
    forward_batch(r);
    progress_finish(r->bar); /* a clean line for the results; redrawn later */
    for (int s = 0; s < r->num_slots; s++) {
        slot *sl = &r->slots[s];
        char name[4096];
        batch_input_name(&r->inputs[sl->input], name, sizeof name);
        const float *logits = sl->tensor >= 0 ? r->logits + (size_t)sl->tensor * classes : NULL;
        if (p->on_result(p->user, sl->input, name, logits, logits ? NULL : sl->error) != 0)
            logits = NULL;
        if (p->dump_logits) {
            for (int c = 0; c < classes; c++) {
                const float value = logits ? logits[c] : NAN;
                fwrite(&value, sizeof value, 1, p->dump_logits);
            }
        }
    }
    fflush(stdout);
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
        snprintf(sl->error, sizeof sl->error, "out of memory for a batch of %dx%d inputs", height, width);
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
    if (!r.slots || !r.logits) {
        fprintf(stderr, "cnx: out of memory for a batch of %d\n", r.capacity);
        runner_free(&r);
        return -1;
    }
    float *staging = NULL;
    size_t staging_floats = 0;
    progress bar;
    r.bar = &bar;
    progress_start(&bar, count, "images");
    for (size_t i = 0; i < count; i++) {
        const batch_input *in = &inputs[i];
        char error[512];
        int height = 0, width = 0;
        int loaded = in->is_tensor
                         ? load_npy_input(&r, in, &staging, &staging_floats, &height, &width, error, sizeof error)
                         : load_image_input(&r, in, &staging, &staging_floats, &height, &width, error, sizeof error);
        add_to_batch(&r, i, loaded == 0 ? staging : NULL, height, width, error);
        progress_update(&bar, i + 1);
    }
    flush(&r);
    progress_finish(&bar);
    free(staging);
    runner_free(&r);
    return 0;
}
