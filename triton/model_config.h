/* A model's config.pbtxt as the backend needs it, read from the JSON form
 * the server hands over (TRITONBACKEND_ModelConfig), and checked: one input,
 * IMAGE (TYPE_STRING, dims [1]: encoded PNG or JPEG bytes) or INPUT
 * (TYPE_FP32, dims [3, H, W]: preprocessed), one output PROBS (TYPE_FP32,
 * dims [num_classes]), and the parameters weights, precision, max_batch,
 * threads and max_pixels. */
#ifndef CNX_TRITON_MODEL_CONFIG_H
#define CNX_TRITON_MODEL_CONFIG_H

#include <cstddef>
#include <cstdint>
#include <string>

#include "cnx.h"
#include "triton_backend_api.h"

enum class InputKind { kImage, kTensor };

struct ModelConfig {
    std::string weights_path;  // resolved against the version folder
    cnx_precision precision = CNX_PRECISION_FP32;
    int max_batch = 0;       // images per engine call; larger batches are split
    int threads = 0;         // CPU threads per instance; 0: every core
    int64_t max_pixels = CNX_DEFAULT_MAX_PIXELS;  // per decoded image
    int max_batch_size = 0;  // Triton's; 0: requests carry no batch dimension
    InputKind input_kind = InputKind::kImage;
    int64_t input_height = -1, input_width = -1;  // INPUT's dims; -1: any
    int64_t num_classes = -1;                     // PROBS' dims; -1: the weights'
};

/* Names of the tensors the backend reads and writes. */
extern const char *const kImageInput;
extern const char *const kTensorInput;
extern const char *const kProbsOutput;

/* kImageInput or kTensorInput. */
const char *input_name(InputKind kind);

/* Parses config (JSON, size bytes) of the model whose version folder is
 * version_dir. The error names the model and what is wrong. */
TRITONSERVER_Error *parse_model_config(const char *model_name, const char *json, size_t size,
                                       const std::string &version_dir, ModelConfig *config);

#endif
