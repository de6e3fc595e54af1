/* The cnx backend for Triton Inference Server: the TRITONBACKEND entry
 * points. A model holds its parsed config.pbtxt; each model instance holds
 * one cnx engine, on the instance's GPU (KIND_GPU) or on the CPU
 * (KIND_CPU). No exception leaves an entry point: the server is C. */
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "cnx.h"
#include "execute.h"
#include "model_config.h"
#include "triton_backend_api.h"
#include "triton_error.h"

namespace {

struct ModelState {
    std::string name;
    ModelConfig config;
};

struct InstanceState {
    Instance instance;
    std::string name;
    ~InstanceState() { cnx_engine_destroy(instance.engine); }
};

// The error for the exception being handled, e.g. "model 'digits': out of
// memory". It allocates nothing beyond the error itself.
TRITONSERVER_Error *from_exception(const char *what, const char *name) {
    try {
        throw;
    } catch (const std::bad_alloc &) {
        return triton_error(TRITONSERVER_ERROR_INTERNAL, "%s '%s': out of memory", what, name);
    } catch (const std::exception &e) {
        return triton_error(TRITONSERVER_ERROR_INTERNAL, "%s '%s': %s", what, name, e.what());
    } catch (...) {
        return triton_error(TRITONSERVER_ERROR_INTERNAL, "%s '%s': an unknown exception", what,
                            name);
    }
}

TRITONSERVER_Error *load_model(TRITONBACKEND_Model *model, std::unique_ptr<ModelState> *out) {
    auto state = std::make_unique<ModelState>();
    const char *name;
    uint64_t version;
    TRITONBACKEND_ArtifactType artifact;
    const char *location;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelName(model, &name))
        return error;
    state->name = name;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelVersion(model, &version))
        return error;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelRepository(model, &artifact, &location))
        return error;
    if (artifact != TRITONBACKEND_ARTIFACT_FILESYSTEM)
        return triton_error(TRITONSERVER_ERROR_UNSUPPORTED,
                            "model '%s': the cnx backend reads models from a filesystem", name);

    TRITONSERVER_Message *message;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelConfig(model, 1, &message))
        return error;
    const char *json;
    size_t size;
    TRITONSERVER_Error *error = TRITONSERVER_MessageSerializeToJson(message, &json, &size);
    if (!error)
        error = parse_model_config(name, json, size,
                                   std::string(location) + "/" + std::to_string(version),
                                   &state->config);
    triton_log_and_delete(TRITONSERVER_MessageDelete(message), "deleting the model config");
    if (error)
        return error;
    *out = std::move(state);
    return nullptr;
}

cnx_options engine_options(const ModelConfig &config, TRITONSERVER_InstanceGroupKind kind,
                           int32_t device_id) {
    cnx_options options = cnx_default_options();
    options.precision = config.precision;
    options.max_batch = config.max_batch;
    options.num_threads = config.threads;
    if (config.input_kind == InputKind::kTensor && config.input_height > 0 &&
        config.input_height == config.input_width)
        options.input_size = (int)config.input_height;
    switch (kind) {
    case TRITONSERVER_INSTANCEGROUPKIND_GPU:
        options.device = CNX_DEVICE_CUDA;
        options.cuda_device = device_id;
        break;
    case TRITONSERVER_INSTANCEGROUPKIND_CPU:
        options.device = CNX_DEVICE_CPU;
        break;
    default:
        options.device = CNX_DEVICE_AUTO;
        break;
    }
    return options;
}

TRITONSERVER_Error *start_instance(TRITONBACKEND_ModelInstance *triton_instance,
                                   std::unique_ptr<InstanceState> *out) {
    TRITONBACKEND_Model *model;
    void *model_state;
    const char *name;
    TRITONSERVER_InstanceGroupKind kind;
    int32_t device_id;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelInstanceModel(triton_instance, &model))
        return error;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelState(model, &model_state))
        return error;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelInstanceName(triton_instance, &name))
        return error;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelInstanceKind(triton_instance, &kind))
        return error;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelInstanceDeviceId(triton_instance, &device_id))
        return error;
    const ModelState &model_data = *static_cast<ModelState *>(model_state);
    const ModelConfig &config = model_data.config;

    auto state = std::make_unique<InstanceState>();
    state->name = name;
    state->instance.triton = triton_instance;
    state->instance.config = &config;
    const cnx_options options = engine_options(config, kind, device_id);
    const std::string context = "model '" + model_data.name + "' instance '" + name + "' (" +
                                TRITONSERVER_InstanceGroupKindString(kind) + ")";
    cnx_status status = cnx_engine_create(config.weights_path.c_str(), &options,
                                          &state->instance.engine);
    if (status != CNX_OK)
        return triton_error_from_cnx(status, ErrorSource::kLoad, context.c_str());

    cnx_model_info info;
    if ((status = cnx_engine_info(state->instance.engine, &info)) != CNX_OK)
        return triton_error_from_cnx(status, ErrorSource::kLoad, context.c_str());
    if (config.num_classes > 0 && config.num_classes != info.num_classes)
        return triton_error(TRITONSERVER_ERROR_INVALID_ARG,
                            "model '%s': output %s has dims [ %lld ], but %s has %d classes",
                            model_data.name.c_str(), kProbsOutput, (long long)config.num_classes,
                            config.weights_path.c_str(), info.num_classes);
    state->instance.num_classes = info.num_classes;
    const char *fallback = cnx_engine_fallback_reason(state->instance.engine);
    triton_log(TRITONSERVER_LOG_INFO,
               "cnx: instance %s: %s (%d classes) from %s on %s, max_batch %d, input %s%s%s",
               name, info.architecture, info.num_classes, config.weights_path.c_str(),
               info.device_name, config.max_batch,
               config.input_kind == InputKind::kImage ? "IMAGE (encoded, preprocessed by cnx)"
                                                      : "INPUT (preprocessed)",
               fallback ? "; on the CPU because " : "", fallback ? fallback : "");
    *out = std::move(state);
    return nullptr;
}

}  // namespace

extern "C" {

TRITONSERVER_Error *TRITONBACKEND_Initialize(TRITONBACKEND_Backend *backend) {
    const char *name = "cnx";
    if (TRITONSERVER_Error *error = TRITONBACKEND_BackendName(backend, &name))
        return error;
    uint32_t major, minor;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ApiVersion(&major, &minor))
        return error;
    if (major != TRITONBACKEND_API_VERSION_MAJOR || minor < TRITONBACKEND_API_VERSION_MINOR)
        return triton_error(TRITONSERVER_ERROR_UNSUPPORTED,
                            "backend '%s': the server's backend API is %u.%u; cnx needs %d.%d or "
                            "a later %d.x", name, major, minor, TRITONBACKEND_API_VERSION_MAJOR,
                            TRITONBACKEND_API_VERSION_MINOR, TRITONBACKEND_API_VERSION_MAJOR);
    triton_log(TRITONSERVER_LOG_INFO, "cnx: backend '%s' %d.%d.%d, server backend API %u.%u", name,
               CNX_VERSION_MAJOR, CNX_VERSION_MINOR, CNX_VERSION_PATCH, major, minor);
    return nullptr;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInitialize(TRITONBACKEND_Model *model) {
    const char *name = "?";
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelName(model, &name))
        return error;
    try {
        std::unique_ptr<ModelState> state;
        if (TRITONSERVER_Error *error = load_model(model, &state))
            return error;
        if (TRITONSERVER_Error *error = TRITONBACKEND_ModelSetState(model, state.get()))
            return error;
        state.release();  // TRITONBACKEND_ModelFinalize deletes it
        return nullptr;
    } catch (...) {
        return from_exception("model", name);
    }
}

TRITONSERVER_Error *TRITONBACKEND_ModelFinalize(TRITONBACKEND_Model *model) {
    void *state;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelState(model, &state))
        return error;
    delete static_cast<ModelState *>(state);
    return nullptr;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceInitialize(TRITONBACKEND_ModelInstance *instance) {
    const char *name = "?";
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelInstanceName(instance, &name))
        return error;
    try {
        std::unique_ptr<InstanceState> state;
        if (TRITONSERVER_Error *error = start_instance(instance, &state))
            return error;
        if (TRITONSERVER_Error *error = TRITONBACKEND_ModelInstanceSetState(instance, state.get()))
            return error;
        state.release();  // TRITONBACKEND_ModelInstanceFinalize deletes it
        return nullptr;
    } catch (...) {
        return from_exception("instance", name);
    }
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceFinalize(TRITONBACKEND_ModelInstance *instance) {
    void *state;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelInstanceState(instance, &state))
        return error;
    delete static_cast<InstanceState *>(state);
    return nullptr;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceExecute(TRITONBACKEND_ModelInstance *instance,
                                                       TRITONBACKEND_Request **requests,
                                                       const uint32_t request_count) {
    void *state;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ModelInstanceState(instance, &state))
        return error;  // the requests stay the server's to answer
    return execute_requests(static_cast<InstanceState *>(state)->instance, requests,
                            request_count);
}

}  // extern "C"
