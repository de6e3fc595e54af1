#include "execute.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "request_inputs.h"
#include "triton_error.h"

namespace {

// Triton's statistics take nanoseconds on the steady clock.
uint64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Pending {
    TRITONBACKEND_Request *request = nullptr;
    TRITONSERVER_Error *error = nullptr;  // set once the request has failed
    int rows = 0;
    size_t first_row = 0;                 // its first row of logits
    int64_t height = 0, width = 0;        // INPUT's sides
};

// Decoded images waiting for one engine call, and whose row each one is.
struct ImageChunk {
    DecodedImages decoded;
    std::vector<std::pair<Pending *, int>> owners;  // request, row within it
};

// Decoded pixels that start an engine call before max_batch images are
// there: a bound on memory when clients send large images (max_pixels
// bounds each one).
constexpr uint64_t kChunkPixelBytes = 256ull << 20;

// The library names an image of a call by its place in the call.
const char *without_image_name(const char *message) {
    const char prefix[] = "image 0: ";
    return strncmp(message, prefix, sizeof prefix - 1) ? message : message + sizeof prefix - 1;
}

// Classifies one image alone into its row of logits; the error has the
// image's own cause.
TRITONSERVER_Error *classify_alone(const Instance &instance, const cnx_image &image, int row,
                                   float *logits) {
    cnx_status status = CNX_OK;
    if (cnx_engine_classify_images(instance.engine, &image, 1, nullptr, 0, nullptr, logits,
                                   &status) == CNX_OK)
        return nullptr;
    return triton_error(triton_error_code(status, ErrorSource::kRequest), "%s[%d]: %s",
                        kImageInput, row, without_image_name(cnx_last_error()));
}

// Classifies the chunk's images into the next rows of logits, fails the
// rows that failed, and frees the images. When the call fails for some
// images, each of those runs again alone: that gives each its own cause,
// and a batch refused as a whole (one image's input not finite) costs no
// other image its result.
void classify_chunk(const Instance &instance, ImageChunk *chunk, std::vector<float> *logits,
                    uint64_t *compute_start) {
    const int n = (int)chunk->decoded.images.size();
    if (n == 0)
        return;
    if (!*compute_start)
        *compute_start = now_ns();
    const size_t classes = instance.num_classes;
    const size_t first = logits->size() / classes;
    logits->resize((first + n) * classes, NAN);
    std::vector<cnx_status> status(n, CNX_OK);
    const cnx_status call =
        cnx_engine_classify_images(instance.engine, chunk->decoded.images.data(), n, nullptr, 0,
                                   nullptr, logits->data() + first * classes, status.data());
    for (int i = 0; call != CNX_OK && i < n; i++) {
        float *row_logits = logits->data() + (first + i) * classes;
        auto [p, row] = chunk->owners[i];
        if (!p->error && (status[i] != CNX_OK || !std::isfinite(row_logits[0])))
            p->error = classify_alone(instance, chunk->decoded.images[i], row, row_logits);
    }
    chunk->decoded.clear();
    chunk->owners.clear();
}

// Decodes the requests' images one at a time and classifies them in engine
// calls of about max_batch images, or fewer when their pixels fill
// kChunkPixelBytes. Rows follow the requests' order, one per decoded image,
// so each request's rows are consecutive; those of a request that fails
// part way are computed and left unused.
void run_image_requests(const Instance &instance, std::vector<Pending> *pending,
                        std::vector<float> *logits, uint64_t *compute_start) {
    const ModelConfig &config = *instance.config;
    ImageChunk chunk;
    chunk.decoded.images.reserve(config.max_batch);
    chunk.owners.reserve(config.max_batch);
    size_t rows = 0;
    for (Pending &p : *pending) {
        ImageRequest request;
        if ((p.error = request.parse(p.request, config)))
            continue;
        p.rows = request.rows();
        p.first_row = rows;
        for (int row = 0; row < p.rows && !p.error; row++) {
            cnx_image image;
            if ((p.error = request.decode(row, config.max_pixels, &image)))
                break;
            chunk.decoded.add(image);
            chunk.owners.emplace_back(&p, row);
            rows++;
            if (chunk.decoded.images.size() >= (size_t)config.max_batch ||
                chunk.decoded.pixel_bytes >= kChunkPixelBytes)
                classify_chunk(instance, &chunk, logits, compute_start);
        }
    }
    classify_chunk(instance, &chunk, logits, compute_start);
}

// Runs a forward over the rows of `group` (requests with INPUTs of one
// size). If it is refused and holds several requests, each runs alone, so
// that a bad one (a NaN, say) fails alone.
void forward_group(const Instance &instance, const std::vector<Pending *> &group,
                   const std::vector<float> &data, std::vector<float> *logits) {
    if (group.empty())
        return;
    const int64_t height = group[0]->height, width = group[0]->width;
    const size_t floats_per_row = (size_t)3 * height * width;
    const size_t first = group[0]->first_row;
    int rows = 0;
    for (const Pending *p : group)
        rows += p->rows;
    cnx_status status = cnx_engine_forward(instance.engine, data.data() + first * floats_per_row,
                                           rows, (int)height, (int)width,
                                           logits->data() + first * instance.num_classes);
    if (status == CNX_OK)
        return;
    if (group.size() > 1 && status == CNX_ERROR_INVALID_ARGUMENT) {
        for (Pending *p : group)
            forward_group(instance, {p}, data, logits);
        return;
    }
    for (Pending *p : group)
        p->error = triton_error_from_cnx(status, ErrorSource::kRequest, kTensorInput);
}

// Reads every request's INPUT and runs each run of same-sized requests as
// one forward (the dynamic batcher only joins requests of one shape, but
// nothing here relies on it).
void run_tensor_requests(const Instance &instance, std::vector<Pending> *pending,
                         std::vector<float> *logits, uint64_t *compute_start) {
    std::vector<float> data;
    size_t rows = 0;
    for (Pending &p : *pending) {
        p.error = read_tensor_request(p.request, *instance.config, &data, &p.rows, &p.height,
                                      &p.width);
        p.first_row = rows;
        if (!p.error)
            rows += p.rows;
    }
    *compute_start = now_ns();
    logits->assign(rows * instance.num_classes, NAN);
    std::vector<Pending *> group;
    for (Pending &p : *pending) {
        if (p.error)
            continue;
        if (!group.empty() && (p.height != group[0]->height || p.width != group[0]->width)) {
            forward_group(instance, group, data, logits);
            group.clear();
        }
        group.push_back(&p);
    }
    forward_group(instance, group, data, logits);
}

// The softmax of each row, in class order: cnx_top_k over every class
// computes it exactly as cnx classify does.
TRITONSERVER_Error *write_probabilities(const float *logits, int rows, int num_classes,
                                        std::vector<cnx_prediction> &ranked, float *probs) {
    for (int row = 0; row < rows; row++) {
        const float *row_logits = logits + (size_t)row * num_classes;
        for (int c = 0; c < num_classes; c++)
            if (!std::isfinite(row_logits[c]))  // an overflow, in fp16 or from a huge INPUT
                return triton_error(TRITONSERVER_ERROR_INTERNAL,
                                    "%s[%d]: the model's output is not finite (NaN or infinity)",
                                    kProbsOutput, row);
        cnx_status status = cnx_top_k(row_logits, num_classes, num_classes, ranked.data());
        if (status != CNX_OK)
            return triton_error_from_cnx(status, ErrorSource::kRequest, kProbsOutput);
        for (const cnx_prediction &p : ranked)
            probs[(size_t)row * num_classes + p.class_index] = p.probability;
    }
    return nullptr;
}

TRITONSERVER_Error *fill_response(const Instance &instance, const Pending &p,
                                  const std::vector<float> &logits,
                                  std::vector<cnx_prediction> &ranked,
                                  TRITONBACKEND_Response *response) {
    const int64_t classes = instance.num_classes;
    const int64_t batched_shape[2] = {p.rows, classes};
    const bool batched = instance.config->max_batch_size > 0;
    TRITONBACKEND_Output *output;
    if (TRITONSERVER_Error *error =
            TRITONBACKEND_ResponseOutput(response, &output, kProbsOutput, TRITONSERVER_TYPE_FP32,
                                         batched ? batched_shape : batched_shape + 1,
                                         batched ? 2 : 1))
        return error;
    void *buffer;
    TRITONSERVER_MemoryType memory_type = TRITONSERVER_MEMORY_CPU;
    int64_t memory_id = 0;
    const uint64_t bytes = (uint64_t)p.rows * classes * sizeof(float);
    if (TRITONSERVER_Error *error =
            TRITONBACKEND_OutputBuffer(output, &buffer, bytes, &memory_type, &memory_id))
        return error;
    if (memory_type == TRITONSERVER_MEMORY_GPU)
        return triton_error(TRITONSERVER_ERROR_UNSUPPORTED,
                            "%s: the server offered GPU memory for the output", kProbsOutput);
    return write_probabilities(logits.data() + p.first_row * classes, p.rows, (int)classes,
                               ranked, static_cast<float *>(buffer));
}

// Sends the request's one response: PROBS, or its error.
void respond(const Instance &instance, Pending *p, const std::vector<float> &logits,
             std::vector<cnx_prediction> &ranked) {
    TRITONBACKEND_Response *response;
    if (TRITONSERVER_Error *error = TRITONBACKEND_ResponseNew(&response, p->request)) {
        triton_log_and_delete(error, "creating a response");
        if (!p->error)
            p->error = triton_error(TRITONSERVER_ERROR_INTERNAL, "no response could be created");
        return;
    }
    if (!p->error)
        p->error = fill_response(instance, *p, logits, ranked, response);
    // The response takes the error's message; the request keeps p->error
    // only as a flag for the statistics.
    triton_log_and_delete(
        TRITONBACKEND_ResponseSend(response, TRITONSERVER_RESPONSE_COMPLETE_FINAL, p->error),
        "sending a response");
}

}  // namespace

TRITONSERVER_Error *execute_requests(const Instance &instance, TRITONBACKEND_Request **requests,
                                     uint32_t request_count) {
    const uint64_t exec_start = now_ns();
    std::vector<Pending> pending;
    std::vector<float> logits;
    std::vector<cnx_prediction> ranked;
    uint64_t compute_start = 0;  // set when the first engine call starts
    // What can throw (allocations) comes first, while the requests are
    // still the server's to fail.
    try {
        pending.resize(request_count);
        for (uint32_t i = 0; i < request_count; i++)
            pending[i].request = requests[i];
        ranked.resize(instance.num_classes);
        if (instance.config->input_kind == InputKind::kImage)
            run_image_requests(instance, &pending, &logits, &compute_start);
        else
            run_tensor_requests(instance, &pending, &logits, &compute_start);
    } catch (const std::exception &e) {  // std::bad_alloc, in practice
        for (Pending &p : pending)
            if (p.error)
                TRITONSERVER_ErrorDelete(p.error);
        return triton_error(TRITONSERVER_ERROR_INTERNAL, "cnx: the batch of %u requests: %s",
                            request_count, e.what());
    }
    const uint64_t compute_end = now_ns();
    if (!compute_start)
        compute_start = compute_end;  // no engine call: every request failed before

    uint64_t rows_done = 0;
    for (Pending &p : pending) {
        respond(instance, &p, logits, ranked);
        if (!p.error)
            rows_done += p.rows;
    }
    const uint64_t exec_end = now_ns();
    for (Pending &p : pending) {
        triton_log_and_delete(
            TRITONBACKEND_ModelInstanceReportStatistics(instance.triton, p.request, !p.error,
                                                        exec_start, compute_start, compute_end,
                                                        exec_end),
            "reporting a request's statistics");
        triton_log_and_delete(TRITONBACKEND_RequestRelease(p.request, TRITONSERVER_REQUEST_RELEASE_ALL),
                              "releasing a request");
        if (p.error)
            TRITONSERVER_ErrorDelete(p.error);
    }
    if (rows_done > 0)
        triton_log_and_delete(
            TRITONBACKEND_ModelInstanceReportBatchStatistics(instance.triton, rows_done, exec_start,
                                                             compute_start, compute_end, exec_end),
            "reporting the batch's statistics");
    return nullptr;
}
