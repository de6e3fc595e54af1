/* Reading one request's input: the encoded images of IMAGE, to decode one
 * by one, or the float32 tensors of INPUT. A request may carry a batch of
 * several. */
#ifndef CNX_TRITON_REQUEST_INPUTS_H
#define CNX_TRITON_REQUEST_INPUTS_H

#include <cstdint>
#include <vector>

#include "cnx.h"
#include "model_config.h"
#include "triton_backend_api.h"

/* Decoded images, freed however the holder's scope ends. */
struct DecodedImages {
    std::vector<cnx_image> images;
    uint64_t pixel_bytes = 0;  // RGB bytes held
    ~DecodedImages() { clear(); }
    void add(const cnx_image &image);  // takes it over; `images` has room for it
    void clear();
};

/* An input's shape and bytes, which must lie in host memory. One buffer is
 * read where it lies; several are joined into a copy. */
struct InputData {
    TRITONSERVER_DataType datatype = TRITONSERVER_TYPE_INVALID;
    std::vector<int64_t> shape;
    const uint8_t *bytes = nullptr;
    size_t size = 0;
    std::vector<uint8_t> joined;
};

/* A request's IMAGE: its encoded images, found but not yet decoded, so
 * that the caller can decode them one at a time. */
class ImageRequest {
  public:
    /* Reads the input and finds its elements; the error names the cause. */
    TRITONSERVER_Error *parse(TRITONBACKEND_Request *request, const ModelConfig &config);
    int rows() const { return (int)elements_.size(); }
    /* Decodes element `row`; the error names it and the cause. */
    TRITONSERVER_Error *decode(int row, int64_t max_pixels, cnx_image *image) const;

  private:
    struct Element {
        size_t offset;
        uint32_t length;
    };
    InputData data_;
    std::vector<Element> elements_;
};

/* Appends the request's [rows, 3, height, width] floats to data. */
TRITONSERVER_Error *read_tensor_request(TRITONBACKEND_Request *request, const ModelConfig &config,
                                        std::vector<float> *data, int *rows, int64_t *height,
                                        int64_t *width);

#endif
