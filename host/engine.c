/* The engine: loads weights once, picks a backend, runs batches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convnext_weights.h"
#include "cpu_backend.h"
#include "device.h"
#include "error.h"

/* The CPU backend's batch: large enough to keep the GEMMs efficient (tens of
 * thousands of rows at 224), small enough to keep activations in the
 * hundreds of megabytes. Larger calls are split. */
enum { CPU_MAX_BATCH = 8 };

struct cnx_engine {
    cnx_convnext_weights weights;
    cnx_options options;
    cnx_device device;
    char device_name[128];
    cpu_backend *cpu;
    int backend_batch; /* images per backend call */
    float *logits;     /* [backend_batch, classes], for classify */
};

cnx_options cnx_default_options(void) {
    cnx_options options;
    memset(&options, 0, sizeof options);
    options.device = CNX_DEVICE_AUTO;
    options.precision = CNX_PRECISION_FP32;
    options.max_batch = 32;
    return options;
}

void cnx_engine_destroy(cnx_engine *engine) {
    if (!engine)
        return;
    cpu_backend_destroy(engine->cpu);
    cnx_convnext_weights_free(&engine->weights);
    free(engine->logits);
    free(engine);
}

static cnx_status check_options(const cnx_options *o) {
    if (o->device < CNX_DEVICE_AUTO || o->device > CNX_DEVICE_CUDA)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "unknown device %d", (int)o->device);
    if (o->precision < CNX_PRECISION_FP32 || o->precision > CNX_PRECISION_BF16)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "unknown precision %d", (int)o->precision);
    if (o->max_batch < 1 || o->max_batch > 65536)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "max_batch %d is outside 1..65536", o->max_batch);
    if (o->input_size < 0 || o->input_size > 16384)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "input_size %d is outside 0..16384", o->input_size);
    if (o->num_threads < 0)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "num_threads %d is negative", o->num_threads);
    return CNX_OK;
}

/* AUTO takes the GPU when one is usable; until the CUDA backend lands,
 * cnx runs on the CPU and says so when CUDA is asked for explicitly. */
static cnx_status choose_device(cnx_engine *engine) {
    if (engine->options.device == CNX_DEVICE_CUDA) {
        char why[256];
        if (!cnx_cuda_usable(engine->options.cuda_device, engine->device_name,
                             sizeof engine->device_name, why, sizeof why))
            return cnx_fail(CNX_ERROR_NO_DEVICE, "--device cuda: %s", why);
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "--device cuda: found %s, but this build of cnx has no CUDA "
                        "forward yet; use --device cpu", engine->device_name);
    }
    engine->device = CNX_DEVICE_CPU;
    snprintf(engine->device_name, sizeof engine->device_name, "CPU (fp32, %d threads)",
             cnx_cpu_thread_count(engine->options.num_threads));
    return CNX_OK;
}

cnx_status cnx_engine_create(const char *weights_path, const cnx_options *options,
                             cnx_engine **out) {
    if (!out)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_engine_create: NULL engine pointer");
    *out = NULL;
    if (!weights_path)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_engine_create: NULL weights path");
    cnx_options defaults = cnx_default_options();
    if (!options)
        options = &defaults;
    cnx_status status = check_options(options);
    if (status != CNX_OK)
        return status;

    cnx_engine *engine = calloc(1, sizeof *engine);
    if (!engine)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory");
    engine->options = *options;
    status = cnx_convnext_weights_load(weights_path, &engine->weights);
    if (status == CNX_OK)
        status = choose_device(engine);
    if (status == CNX_OK) {
        const int input_size = options->input_size ? options->input_size : engine->weights.preprocess.crop;
        engine->backend_batch = options->max_batch < CPU_MAX_BATCH ? options->max_batch : CPU_MAX_BATCH;
        status = cpu_backend_create(&engine->weights, engine->backend_batch, input_size,
                                    options->num_threads, &engine->cpu);
    }
    if (status == CNX_OK) {
        engine->logits = malloc(sizeof(float) * engine->backend_batch * engine->weights.num_classes);
        if (!engine->logits)
            status = cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory");
    }
    if (status != CNX_OK) {
        cnx_engine_destroy(engine);
        return status;
    }
    *out = engine;
    return CNX_OK;
}

cnx_status cnx_engine_info(const cnx_engine *engine, cnx_model_info *info) {
    if (!engine || !info)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_engine_info: NULL argument");
    const cnx_convnext_weights *w = &engine->weights;
    memset(info, 0, sizeof *info);
    snprintf(info->architecture, sizeof info->architecture, "%s", w->architecture);
    info->num_stages = w->num_stages;
    memcpy(info->depths, w->depths, sizeof info->depths);
    memcpy(info->widths, w->widths, sizeof info->widths);
    info->num_classes = w->num_classes;
    info->num_parameters = w->num_parameters;
    snprintf(info->weights_dtype, sizeof info->weights_dtype, "%s", w->weights_dtype);
    snprintf(info->naming, sizeof info->naming, "%s", w->naming);
    snprintf(info->interpolation, sizeof info->interpolation, "%s", w->interpolation);
    snprintf(info->source, sizeof info->source, "%s", w->source);
    info->has_preprocess_metadata = w->has_preprocess_metadata;
    info->preprocess = w->preprocess;
    info->device = engine->device;
    snprintf(info->device_name, sizeof info->device_name, "%s", engine->device_name);
    return CNX_OK;
}

static cnx_status check_input(const cnx_engine *engine, const float *input, int n,
                              int height, int width) {
    if (!input || n < 0)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "forward: NULL input or negative batch");
    /* Each stage halves the side after the stem's 4x; the last must keep a pixel. */
    const int smallest = 4 << (engine->weights.num_stages - 1);
    if (height < smallest || width < smallest || height > 16384 || width > 16384)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "input is %dx%d; this model needs sides in %d..16384", height, width, smallest);
    const size_t count = (size_t)n * 3 * height * width;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(input[i]))
            return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "input image %zu has a non-finite value",
                            i / ((size_t)3 * height * width));
    return CNX_OK;
}

cnx_status cnx_engine_forward(cnx_engine *engine, const float *input, int n, int height,
                              int width, float *logits) {
    if (!engine || !logits)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "forward: NULL engine or logits");
    cnx_status status = check_input(engine, input, n, height, width);
    const size_t image_floats = (size_t)3 * height * width;
    const int classes = engine->weights.num_classes;
    for (int done = 0; done < n && status == CNX_OK; done += engine->backend_batch) {
        const int count = n - done < engine->backend_batch ? n - done : engine->backend_batch;
        status = cpu_backend_forward(engine->cpu, input + done * image_floats, count, height,
                                     width, logits + (size_t)done * classes);
    }
    return status;
}

cnx_status cnx_engine_classify(cnx_engine *engine, const float *input, int n, int height,
                               int width, int k, cnx_prediction *top) {
    if (!engine || !top)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "classify: NULL engine or output");
    const int classes = engine->weights.num_classes;
    if (k < 1 || k > classes)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "classify: k = %d, expected 1..%d", k, classes);
    const size_t image_floats = (size_t)3 * height * width;
    for (int done = 0; done < n; done += engine->backend_batch) {
        const int count = n - done < engine->backend_batch ? n - done : engine->backend_batch;
        cnx_status status = cnx_engine_forward(engine, input + done * image_floats, count,
                                               height, width, engine->logits);
        for (int i = 0; i < count && status == CNX_OK; i++)
            status = cnx_top_k(engine->logits + (size_t)i * classes, classes, k,
                               top + (size_t)(done + i) * k);
        if (status != CNX_OK)
            return status;
    }
    return CNX_OK;
}
