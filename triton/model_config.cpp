#include "model_config.h"

#include <json-c/json.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "triton_error.h"

const char *const kImageInput = "IMAGE";
const char *const kTensorInput = "INPUT";
const char *const kProbsOutput = "PROBS";

const char *input_name(InputKind kind) {
    return kind == InputKind::kImage ? kImageInput : kTensorInput;
}

namespace {

const char *const kDefaultWeights = "model.safetensors";
const char *const kKnownParameters = "weights, precision, max_batch, threads, max_pixels";
constexpr int kMaxEngineBatch = 4096;

// Releases the parsed JSON tree on every path out.
struct JsonTree {
    json_object *root = nullptr;
    ~JsonTree() { json_object_put(root); }
};

json_object *field(json_object *object, const char *key) {
    json_object *value = nullptr;
    return json_object_object_get_ex(object, key, &value) ? value : nullptr;
}

std::string string_field(json_object *object, const char *key) {
    json_object *value = field(object, key);
    return value && json_object_is_type(value, json_type_string) ? json_object_get_string(value)
                                                                 : "";
}

// Protobuf's JSON writes int64 as strings and int32 as numbers: take both.
bool integer_value(json_object *value, int64_t *out) {
    if (json_object_is_type(value, json_type_int)) {
        *out = json_object_get_int64(value);
        return true;
    }
    if (!json_object_is_type(value, json_type_string))
        return false;
    const char *text = json_object_get_string(value);
    char *end = nullptr;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    if (errno || end == text || *end)
        return false;
    *out = parsed;
    return true;
}

bool dims_of(json_object *tensor, std::vector<int64_t> *dims) {
    json_object *array = field(tensor, "dims");
    if (!array || !json_object_is_type(array, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(array); i++) {
        int64_t dim;
        if (!integer_value(json_object_array_get_idx(array, i), &dim))
            return false;
        dims->push_back(dim);
    }
    return true;
}

std::string dims_text(const std::vector<int64_t> &dims) {
    std::string text = "[";
    for (size_t i = 0; i < dims.size(); i++)
        text += (i ? ", " : "") + std::to_string(dims[i]);
    return text + "]";
}

// The one entry of the "input" or "output" array, or an error.
TRITONSERVER_Error *only_tensor(const char *model, json_object *root, const char *key,
                                const char *expected, json_object **tensor) {
    json_object *array = field(root, key);
    size_t count = array && json_object_is_type(array, json_type_array)
                       ? json_object_array_length(array) : 0;
    if (count != 1)
        return triton_error(TRITONSERVER_ERROR_INVALID_ARG,
                            "model '%s': config has %zu %ss; the cnx backend takes exactly one, %s",
                            model, count, key, expected);
    *tensor = json_object_array_get_idx(array, 0);
    return nullptr;
}

TRITONSERVER_Error *read_input(const char *model, json_object *root, ModelConfig *config) {
    json_object *input = nullptr;
    const char *expected = "IMAGE (TYPE_STRING, dims [ 1 ]) or INPUT (TYPE_FP32, dims [ 3, H, W ])";
    if (TRITONSERVER_Error *error = only_tensor(model, root, "input", expected, &input))
        return error;
    std::string name = string_field(input, "name"), type = string_field(input, "data_type");
    std::vector<int64_t> dims;
    bool have_dims = dims_of(input, &dims);
    if (name == kImageInput && type == "TYPE_STRING" && have_dims && dims == std::vector<int64_t>{1}) {
        config->input_kind = InputKind::kImage;
        return nullptr;
    }
    if (name == kTensorInput && type == "TYPE_FP32" && have_dims && dims.size() == 3 && dims[0] == 3 &&
        dims[1] != 0 && dims[1] >= -1 && dims[2] != 0 && dims[2] >= -1) {
        config->input_kind = InputKind::kTensor;
        config->input_height = dims[1];
        config->input_width = dims[2];
        return nullptr;
    }
    return triton_error(TRITONSERVER_ERROR_INVALID_ARG,
                        "model '%s': input '%s' (%s, dims %s): expected %s", model, name.c_str(),
                        type.c_str(), have_dims ? dims_text(dims).c_str() : "missing", expected);
}

TRITONSERVER_Error *read_output(const char *model, json_object *root, ModelConfig *config) {
    json_object *output = nullptr;
    const char *expected = "PROBS (TYPE_FP32, dims [ num_classes ])";
    if (TRITONSERVER_Error *error = only_tensor(model, root, "output", expected, &output))
        return error;
    std::string name = string_field(output, "name"), type = string_field(output, "data_type");
    std::vector<int64_t> dims;
    bool have_dims = dims_of(output, &dims);
    if (name != kProbsOutput || type != "TYPE_FP32" || !have_dims || dims.size() != 1 ||
        dims[0] == 0 || dims[0] < -1)
        return triton_error(TRITONSERVER_ERROR_INVALID_ARG,
                            "model '%s': output '%s' (%s, dims %s): expected %s", model,
                            name.c_str(), type.c_str(), have_dims ? dims_text(dims).c_str() : "missing",
                            expected);
    config->num_classes = dims[0];
    return nullptr;
}

// A decimal count: digits only (no sign, no spaces), within min..max.
TRITONSERVER_Error *parse_count(const char *model, const char *key, const std::string &text,
                                int64_t min, int64_t max, int64_t *out) {
    char *end = nullptr;
    errno = 0;
    long long value = strtoll(text.c_str(), &end, 10);
    if (text.empty() || !isdigit((unsigned char)text[0]) || errno || *end || value < min ||
        value > max)
        return triton_error(TRITONSERVER_ERROR_INVALID_ARG,
                            "model '%s': parameter %s: expected an integer in %lld..%lld, got '%s'",
                            model, key, (long long)min, (long long)max, text.c_str());
    *out = value;
    return nullptr;
}

// parameters { key: "precision" value { string_value: "fp16" } } and so on.
TRITONSERVER_Error *read_parameters(const char *model, json_object *root,
                                    const std::string &version_dir, ModelConfig *config) {
    std::string weights = kDefaultWeights;
    // Triton's batches may be larger: the engine splits them.
    int64_t max_batch = std::min(std::max(config->max_batch_size, 1), kMaxEngineBatch);
    int64_t threads = 0, max_pixels = CNX_DEFAULT_MAX_PIXELS;
    json_object *parameters = field(root, "parameters");
    if (parameters && json_object_is_type(parameters, json_type_object)) {
        json_object_object_foreach(parameters, key, entry) {
            std::string value = string_field(entry, "string_value");
            TRITONSERVER_Error *error = nullptr;
            if (!strcmp(key, "weights")) {
                weights = value;
                if (weights.empty())
                    error = triton_error(TRITONSERVER_ERROR_INVALID_ARG,
                                         "model '%s': parameter weights is empty", model);
            } else if (!strcmp(key, "precision")) {
                if (cnx_precision_parse(value.c_str(), &config->precision) != 0)
                    error = triton_error(TRITONSERVER_ERROR_INVALID_ARG,
                                         "model '%s': parameter precision: expected fp32, tf32, "
                                         "fp16 or bf16, got '%s'", model, value.c_str());
            } else if (!strcmp(key, "max_batch")) {
                error = parse_count(model, key, value, 1, kMaxEngineBatch, &max_batch);
            } else if (!strcmp(key, "threads")) {
                error = parse_count(model, key, value, 0, 4096, &threads);
            } else if (!strcmp(key, "max_pixels")) {
                error = parse_count(model, key, value, 1, CNX_DEFAULT_MAX_PIXELS, &max_pixels);
            } else {
                error = triton_error(TRITONSERVER_ERROR_INVALID_ARG,
                                     "model '%s': unknown parameter '%s' (the cnx backend knows %s)",
                                     model, key, kKnownParameters);
            }
            if (error)
                return error;
        }
    }
    config->weights_path = weights[0] == '/' ? weights : version_dir + "/" + weights;
    config->max_batch = (int)max_batch;
    config->threads = (int)threads;
    config->max_pixels = max_pixels;
    return nullptr;
}

}  // namespace

TRITONSERVER_Error *parse_model_config(const char *model_name, const char *json, size_t size,
                                       const std::string &version_dir, ModelConfig *config) {
    JsonTree tree;
    json_tokener *tokener = json_tokener_new();
    if (!tokener)
        return triton_error(TRITONSERVER_ERROR_INTERNAL, "model '%s': out of memory", model_name);
    tree.root = json_tokener_parse_ex(tokener, json, (int)size);
    json_tokener_free(tokener);
    if (!tree.root || !json_object_is_type(tree.root, json_type_object))
        return triton_error(TRITONSERVER_ERROR_INTERNAL,
                            "model '%s': the server's model config is not a JSON object", model_name);

    int64_t max_batch_size = 0;
    json_object *batch = field(tree.root, "max_batch_size");
    if (batch && (!integer_value(batch, &max_batch_size) || max_batch_size < 0 ||
                  max_batch_size > INT_MAX))
        return triton_error(TRITONSERVER_ERROR_INVALID_ARG, "model '%s': bad max_batch_size",
                            model_name);
    config->max_batch_size = (int)max_batch_size;

    if (TRITONSERVER_Error *error = read_input(model_name, tree.root, config))
        return error;
    if (TRITONSERVER_Error *error = read_output(model_name, tree.root, config))
        return error;
    return read_parameters(model_name, tree.root, version_dir, config);
}
