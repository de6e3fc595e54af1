/* The engine: loads weights once, picks a backend, runs batches. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"
#include "cuda_backend.h"
#include "device.h"
#include "engine_internal.h"
#include "error.h"
#include "random_weights.h"

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
#ifdef CNX_HAVE_CUDA
    cuda_backend_destroy(engine->cuda);
#endif
    image_batch_free(&engine->images);
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
    if (o->input_size < 0 || o->input_size > CNX_MAX_SIDE)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "input_size %d is outside 0..%d", o->input_size,
                        CNX_MAX_SIDE);
    if (o->num_threads < 0)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "num_threads %d is negative", o->num_threads);
    return CNX_OK;
}

/* Runs the engine on the CPU; fallback_reason, when not NULL, says why a GPU
 * that is there is not used (cnx_engine_fallback_reason). */
static void use_cpu(cnx_engine *engine, const char *fallback_reason) {
    const cnx_options *o = &engine->options;
    engine->device = CNX_DEVICE_CPU;
    if (fallback_reason)
        snprintf(engine->fallback_reason, sizeof engine->fallback_reason, "%s", fallback_reason);
    const char *note = fallback_reason ? "; the GPU could not be used" : "";
    /* The CPU computes fp32 whatever precision was asked for; say so. */
    if (o->precision == CNX_PRECISION_FP32)
        snprintf(engine->device_name, sizeof engine->device_name, "CPU (fp32, %d threads)%s",
                 cpu_backend_thread_count(o->num_threads), note);
    else
        snprintf(engine->device_name, sizeof engine->device_name,
                 "CPU (fp32; %s asked for, the CPU computes fp32; %d threads)%s",
                 cnx_precision_name(o->precision), cpu_backend_thread_count(o->num_threads), note);
}

/* CUDA when asked for (NO_DEVICE, with the reason, when none is usable), or
 * under AUTO when a device is usable and this build has the CUDA backend;
 * else the CPU. Under AUTO, no GPU (or no CUDA in this build) is ordinary;
 * a GPU that cnx does not support is a fallback with a reason. */
static cnx_status choose_device(cnx_engine *engine) {
    const cnx_options *o = &engine->options;
    if (o->device != CNX_DEVICE_CPU) {
        char name[96], why[256];
        const int present = cnx_cuda_usable(o->cuda_device, name, sizeof name, why, sizeof why);
        int usable = present;
#ifdef CNX_HAVE_CUDA
        if (present)
            usable = cuda_backend_supported(o->cuda_device, why, sizeof why);
#endif
        if (usable) {
            engine->device = CNX_DEVICE_CUDA;
            snprintf(engine->device_name, sizeof engine->device_name, "%s, %s", name,
                     cnx_precision_name(o->precision));
            return CNX_OK;
        }
        if (o->device == CNX_DEVICE_CUDA)
            return cnx_fail(CNX_ERROR_NO_DEVICE, "CUDA was asked for: %s", why);
        use_cpu(engine, present ? why : NULL);
        return CNX_OK;
    }
    use_cpu(engine, NULL);
    return CNX_OK;
}

static cnx_status create_backend(cnx_engine *engine, int input_size) {
    const cnx_options *o = &engine->options;
    if (engine->device == CNX_DEVICE_CUDA) {
#ifdef CNX_HAVE_CUDA
        engine->backend_batch = o->max_batch;
        cnx_status status = cuda_backend_create(&engine->weights, o->precision, o->max_batch,
                                                input_size, o->cuda_device, o->cuda_stream,
                                                &engine->cuda);
        if (status == CNX_OK || o->device == CNX_DEVICE_CUDA)
            return status;
        /* AUTO: a GPU that cannot take the model (cuBLASLt missing, no
         * kernel image, memory) leaves the CPU, and the reason. */
        use_cpu(engine, cnx_last_error());
        cnx_clear_error();
#else
        return cnx_fail(CNX_ERROR_INTERNAL, "CUDA chosen in a build without CUDA");
#endif
    }
    engine->backend_batch = o->max_batch < CPU_MAX_BATCH ? o->max_batch : CPU_MAX_BATCH;
    return cpu_backend_create(&engine->weights, engine->backend_batch, input_size,
                              o->num_threads, &engine->cpu);
}

/* Takes over *weights (whatever happens) and builds an engine around them;
 * name is how messages refer to the weights. */
static cnx_status create_from_weights(cnx_convnext_weights *weights, const char *name,
                                      const cnx_options *options, cnx_engine **out) {
    cnx_engine *engine = calloc(1, sizeof *engine);
    if (!engine) {
        cnx_convnext_weights_free(weights);
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory");
    }
    engine->weights = *weights;
    memset(weights, 0, sizeof *weights);
    engine->options = *options;
    cnx_status status = choose_device(engine);
    if (status == CNX_OK) {
        const int input_size = options->input_size ? options->input_size : engine->weights.preprocess.crop;
        /* Each stage halves the side after the stem's 4x; the last must keep a pixel. */
        const int smallest = 4 << (engine->weights.num_stages - 1);
        if (input_size < smallest)
            status = cnx_fail(options->input_size ? CNX_ERROR_INVALID_ARGUMENT : CNX_ERROR_WEIGHTS,
                              "%s: inputs of %dx%d (%s) are too small for this model, which needs %d",
                              name, input_size, input_size,
                              options->input_size ? "input_size" : "the crop in its metadata", smallest);
        else
            status = create_backend(engine, input_size);
    }
    if (status == CNX_OK && engine->cpu) { /* the CPU's classify buffer; CUDA ranks on the device */
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

/* The checks both constructors start with; *options is the caller's or the defaults. */
static cnx_status begin_create(cnx_engine **out, const cnx_options **options,
                               const cnx_options *defaults) {
    if (!out)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_engine_create: NULL engine pointer");
    *out = NULL;
    if (!*options)
        *options = defaults;
    return check_options(*options);
}

cnx_status cnx_engine_create(const char *weights_path, const cnx_options *options,
                             cnx_engine **out) {
    const cnx_options defaults = cnx_default_options();
    cnx_status status = begin_create(out, &options, &defaults);
    if (status == CNX_OK && !weights_path)
        status = cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_engine_create: NULL weights path");
    if (status != CNX_OK)
        return status;
    cnx_convnext_weights weights;
    status = cnx_convnext_weights_open(weights_path, options->use_test_size, &weights);
    if (status != CNX_OK)
        return status;
    return create_from_weights(&weights, weights_path, options, out);
}

cnx_status cnx_engine_create_random(const char *architecture, uint64_t seed,
                                    const cnx_options *options, cnx_engine **out) {
    const cnx_options defaults = cnx_default_options();
    cnx_status status = begin_create(out, &options, &defaults);
    if (status == CNX_OK && !architecture)
        status = cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_engine_create_random: NULL architecture");
    if (status != CNX_OK)
        return status;
    cnx_convnext_weights weights;
    status = cnx_convnext_weights_random(architecture, seed, &weights);
    if (status != CNX_OK)
        return status;
    return create_from_weights(&weights, architecture, options, out);
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
    snprintf(info->source, sizeof info->source, "%s", w->source);
    info->has_grn = w->has_grn;
    info->has_class_names = w->labels != NULL;
    info->has_preprocess_metadata = w->has_preprocess_metadata;
    info->preprocess = w->preprocess;
    info->preprocess_sources = w->preprocess_sources;
    info->device = engine->device;
    snprintf(info->device_name, sizeof info->device_name, "%s", engine->device_name);
    return CNX_OK;
}

const char *cnx_engine_fallback_reason(const cnx_engine *engine) {
    return engine && engine->fallback_reason[0] ? engine->fallback_reason : NULL;
}

const char *cnx_engine_class_label(const cnx_engine *engine, int class_index) {
    if (!engine || class_index < 0 || class_index >= engine->weights.num_classes)
        return NULL;
    if (engine->weights.labels)
        return engine->weights.labels[class_index];
    return engine->weights.num_classes == 1000 ? cnx_imagenet_label(class_index) : NULL;
}

static cnx_status check_shape(const cnx_engine *engine, const float *input, int n, int height,
                              int width) {
    if (!input || n < 0)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "forward: NULL input or negative batch");
    const int smallest = 4 << (engine->weights.num_stages - 1); /* see cnx_engine_create */
    if (height < smallest || width < smallest || height > CNX_MAX_SIDE || width > CNX_MAX_SIDE)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                        "input is %dx%d; this model needs sides in %d..%d", height, width, smallest,
                        CNX_MAX_SIDE);
    return CNX_OK;
}

static cnx_status check_input(const cnx_engine *engine, const float *input, int n,
                              int height, int width) {
    cnx_status status = check_shape(engine, input, n, height, width);
    if (status != CNX_OK)
        return status;
    /* Per image, without an early exit so that the scan vectorizes. */
    const size_t image = (size_t)3 * height * width;
    for (int i = 0; i < n; i++) {
        const float *x = input + (size_t)i * image;
        int bad = 0;
        for (size_t j = 0; j < image; j++)
            bad |= !(fabsf(x[j]) <= FLT_MAX);
        if (bad)
            return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "input image %d has a non-finite value", i);
    }
    return CNX_OK;
}

/* Images per backend call at this input size. */
static cnx_status chunk_size(const cnx_engine *engine, int height, int width, int *chunk) {
    *chunk = engine->backend_batch;
#ifdef CNX_HAVE_CUDA
    if (engine->cuda) {
        *chunk = cuda_backend_capacity(engine->cuda, height, width);
        if (*chunk < 1)
            return cnx_fail(CNX_ERROR_INVALID_ARGUMENT,
                            "input is %dx%d, larger than the GPU buffers were planned for; "
                            "create the engine with a larger input_size", height, width);
    }
#else
    (void)height;
    (void)width;
#endif
    return CNX_OK;
}

cnx_status engine_check_k(const cnx_engine *engine, int k) {
    const int classes = engine->weights.num_classes;
    if (k < 1 || k > classes)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "classify: k = %d, expected 1..%d", k, classes);
    return CNX_OK;
}

/* Runs a checked batch of any size through the backend, in the chunks its
 * buffers fit: logits when top is NULL, else the k best classes per image
 * (softmax and top-k on the device for CUDA). on_device: the input (and
 * logits) are CUDA device pointers. */
static cnx_status run_chunks(cnx_engine *engine, const float *input, int on_device, int n,
                             int height, int width, float *logits, int k, cnx_prediction *top) {
    int chunk = 0;
    cnx_status status = chunk_size(engine, height, width, &chunk);
    const size_t image = (size_t)3 * height * width;
    const int classes = engine->weights.num_classes;
    for (int done = 0; done < n && status == CNX_OK; done += chunk) {
        const int count = n - done < chunk ? n - done : chunk;
        const float *x = input + done * image;
#ifdef CNX_HAVE_CUDA
        if (engine->cuda) {
            status = top ? cuda_backend_classify(engine->cuda, x, on_device, count, height, width, k,
                                                 top + (size_t)done * k)
                         : cuda_backend_forward(engine->cuda, x, on_device, count, height, width,
                                                logits + (size_t)done * classes, on_device);
            continue;
        }
#endif
        (void)on_device; /* device pointers reach here only with CUDA */
        float *out = top ? engine->logits : logits + (size_t)done * classes;
        status = cpu_backend_forward(engine->cpu, x, count, height, width, out);
        for (int i = 0; top && i < count && status == CNX_OK; i++)
            status = cnx_top_k(out + (size_t)i * classes, classes, k, top + (size_t)(done + i) * k);
    }
    return status;
}

cnx_status cnx_engine_forward(cnx_engine *engine, const float *input, int n, int height,
                              int width, float *logits) {
    if (!engine || !logits)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "forward: NULL engine or logits");
    /* Checked once for the whole batch, so a message's image index is the caller's. */
    cnx_status status = check_input(engine, input, n, height, width);
    if (status == CNX_OK)
        status = run_chunks(engine, input, 0, n, height, width, logits, 0, NULL);
    return status;
}

cnx_status cnx_engine_classify(cnx_engine *engine, const float *input, int n, int height,
                               int width, int k, cnx_prediction *top) {
    if (!engine || !top)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "classify: NULL engine or output");
    cnx_status status = engine_check_k(engine, k);
    if (status == CNX_OK)
        status = check_input(engine, input, n, height, width);
    if (status == CNX_OK)
        status = run_chunks(engine, input, 0, n, height, width, NULL, k, top);
    return status;
}

/* ------------------------------------------------------ device pointers */

cnx_status cnx_engine_set_cuda_stream(cnx_engine *engine, void *cuda_stream) {
    if (!engine)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "set_cuda_stream: NULL engine");
#ifdef CNX_HAVE_CUDA
    if (engine->cuda)
        return cuda_backend_set_stream(engine->cuda, cuda_stream);
#endif
    if (!cuda_stream)
        return CNX_OK;
    return cnx_fail(CNX_ERROR_UNSUPPORTED, "set_cuda_stream: the engine runs on the CPU");
}

cnx_status cnx_engine_forward_device(cnx_engine *engine, const float *input, int n, int height,
                                     int width, float *logits) {
    if (!engine || !logits)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "forward_device: NULL engine or logits");
    if (engine->device != CNX_DEVICE_CUDA)
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "forward_device: the engine runs on the CPU; device pointers need CUDA");
    /* Device memory is not scanned for NaN here: that would cost a copy. */
    cnx_status status = check_shape(engine, input, n, height, width);
    if (status == CNX_OK)
        status = run_chunks(engine, input, 1, n, height, width, logits, 0, NULL);
    return status;
}

cnx_status cnx_engine_classify_device(cnx_engine *engine, const float *input, int n, int height,
                                      int width, int k, cnx_prediction *top) {
    if (!engine || !top)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "classify_device: NULL engine or output");
    if (engine->device != CNX_DEVICE_CUDA)
        return cnx_fail(CNX_ERROR_UNSUPPORTED,
                        "classify_device: the engine runs on the CPU; device pointers need CUDA");
    cnx_status status = engine_check_k(engine, k);
    if (status == CNX_OK)
        status = check_shape(engine, input, n, height, width);
    if (status == CNX_OK)
        status = run_chunks(engine, input, 1, n, height, width, NULL, k, top);
    return status;
}
