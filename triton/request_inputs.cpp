#include "request_inputs.h"

#include <cstring>

#include "triton_error.h"

namespace {

TRITONSERVER_Error *read_input_data(TRITONBACKEND_Request *request, const char *name,
                                    InputData *data) {
    TRITONBACKEND_Input *input;
    if (TRITONSERVER_Error *error = TRITONBACKEND_RequestInput(request, name, &input))
        return error;
    const char *input_name;
    const int64_t *shape;
    uint32_t dims_count, buffer_count;
    uint64_t byte_size;
    if (TRITONSERVER_Error *error = TRITONBACKEND_InputProperties(
            input, &input_name, &data->datatype, &shape, &dims_count, &byte_size, &buffer_count))
        return error;
    data->shape.assign(shape, shape + dims_count);
    for (uint32_t i = 0; i < buffer_count; i++) {
        const void *buffer;
        uint64_t size;
        TRITONSERVER_MemoryType memory_type = TRITONSERVER_MEMORY_CPU;  // asks for host memory
        int64_t memory_id = 0;
        if (TRITONSERVER_Error *error =
                TRITONBACKEND_InputBuffer(input, i, &buffer, &size, &memory_type, &memory_id))
            return error;
        if (memory_type == TRITONSERVER_MEMORY_GPU)
            return triton_error(TRITONSERVER_ERROR_UNSUPPORTED,
                                "%s: the cnx backend reads inputs from host memory, not GPU memory",
                                name);
        const uint8_t *begin = static_cast<const uint8_t *>(buffer);
        if (buffer_count == 1) {
            data->bytes = begin;
            data->size = size;
            return nullptr;
        }
        data->joined.insert(data->joined.end(), begin, begin + size);
    }
    data->bytes = data->joined.data();
    data->size = data->joined.size();
    return nullptr;
}

// The batch size of a request whose per-item shape has item_dims dims.
TRITONSERVER_Error *batch_rows(const ModelConfig &config, const InputData &data, size_t item_dims,
                               int *rows) {
    const char *name = input_name(config.input_kind);
    size_t batch_dims = config.max_batch_size > 0 ? 1 : 0;
    if (data.shape.size() != batch_dims + item_dims)
        return triton_error(TRITONSERVER_ERROR_INVALID_ARG, "%s: %zu dims, expected %zu", name,
                            data.shape.size(), batch_dims + item_dims);
    int64_t batch = batch_dims ? data.shape[0] : 1;
    if (batch < 1 || (batch_dims && batch > config.max_batch_size))
        return triton_error(TRITONSERVER_ERROR_INVALID_ARG, "%s: batch of %lld", name,
                            (long long)batch);
    *rows = (int)batch;
    return nullptr;
}

// cnx names an image decoded from memory "<memory>"; here the element's
// name says more.
const char *without_memory_name(const char *message) {
    const char prefix[] = "<memory>: ";
    return strncmp(message, prefix, sizeof prefix - 1) ? message : message + sizeof prefix - 1;
}

}  // namespace

void DecodedImages::add(const cnx_image &image) {
    images.push_back(image);
    pixel_bytes += (uint64_t)image.width * image.height * 3;
}

void DecodedImages::clear() {
    for (cnx_image &image : images)
        cnx_image_free(&image);
    images.clear();
    pixel_bytes = 0;
}

TRITONSERVER_Error *ImageRequest::parse(TRITONBACKEND_Request *request, const ModelConfig &config) {
    if (TRITONSERVER_Error *error = read_input_data(request, kImageInput, &data_))
        return error;
    if (data_.datatype != TRITONSERVER_TYPE_BYTES)
        return triton_error(TRITONSERVER_ERROR_INVALID_ARG, "%s: expected BYTES (TYPE_STRING)",
                            kImageInput);
    int rows = 0;
    if (TRITONSERVER_Error *error = batch_rows(config, data_, 1, &rows))
        return error;
    if (data_.shape.back() != 1)
        return triton_error(TRITONSERVER_ERROR_INVALID_ARG,
                            "%s: %lld images per row, expected 1", kImageInput,
                            (long long)data_.shape.back());

    // BYTES elements are laid out as a 4-byte little-endian length, then
    // the bytes, one after another.
    size_t at = 0;
    for (int row = 0; row < rows; row++) {
        uint32_t length = 0;
        bool complete = data_.size - at >= 4;
        if (complete) {
            const uint8_t *p = data_.bytes + at;
            length = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
            at += 4;
            complete = data_.size - at >= length;
        }
        if (!complete)
            return triton_error(TRITONSERVER_ERROR_INVALID_ARG,
                                "%s[%d]: the BYTES tensor ends inside this element", kImageInput,
                                row);
        elements_.push_back({at, length});
        at += length;
    }
    return nullptr;
}

TRITONSERVER_Error *ImageRequest::decode(int row, int64_t max_pixels, cnx_image *image) const {
    const Element &element = elements_[row];
    if (element.length == 0)
        return triton_error(TRITONSERVER_ERROR_INVALID_ARG, "%s[%d]: empty (0 bytes)",
                            kImageInput, row);
    cnx_status status =
        cnx_image_decode_memory(data_.bytes + element.offset, element.length, max_pixels, image);
    if (status != CNX_OK)
        return triton_error(triton_error_code(status, ErrorSource::kRequest), "%s[%d]: %s",
                            kImageInput, row,
                            without_memory_name(cnx_last_error()));
    return nullptr;
}

TRITONSERVER_Error *read_tensor_request(TRITONBACKEND_Request *request, const ModelConfig &config,
                                        std::vector<float> *data_out, int *rows, int64_t *height,
                                        int64_t *width) {
    InputData data;
    if (TRITONSERVER_Error *error = read_input_data(request, kTensorInput, &data))
        return error;
    if (data.datatype != TRITONSERVER_TYPE_FP32)
        return triton_error(TRITONSERVER_ERROR_INVALID_ARG, "%s: expected FP32", kTensorInput);
    if (TRITONSERVER_Error *error = batch_rows(config, data, 3, rows))
        return error;
    const int64_t *item = data.shape.data() + data.shape.size() - 3;
    if (item[0] != 3 || item[1] < 1 || item[1] > CNX_MAX_SIDE || item[2] < 1 ||
        item[2] > CNX_MAX_SIDE)
        return triton_error(TRITONSERVER_ERROR_INVALID_ARG,
                            "%s: item shape [%lld, %lld, %lld], expected [3, H, W] with sides "
                            "in 1..%d", kTensorInput, (long long)item[0], (long long)item[1],
                            (long long)item[2], CNX_MAX_SIDE);
    const uint64_t floats = (uint64_t)*rows * 3 * item[1] * item[2];
    if (data.size != floats * sizeof(float))
        return triton_error(TRITONSERVER_ERROR_INVALID_ARG,
                            "%s: %zu bytes for %llu floats", kTensorInput, data.size,
                            (unsigned long long)floats);
    *height = item[1];
    *width = item[2];
    const size_t first = data_out->size();
    data_out->resize(first + floats);
    memcpy(data_out->data() + first, data.bytes, data.size);
    return nullptr;
}
