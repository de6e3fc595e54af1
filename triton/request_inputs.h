/* Reading one request's input: the encoded images of IMAGE, decoded, or the
 * float32 tensors of INPUT. A request may carry a batch of several. */
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
    ~DecodedImages() { keep_first(0); }
    void keep_first(size_t count);  // frees the images after the first `count`
};

/* Decodes the request's images and appends them to images; *rows is their
 * count. On error nothing is appended and the message names the element
 * and the cause. */
TRITONSERVER_Error *read_image_request(TRITONBACKEND_Request *request, const ModelConfig &config,
                                       DecodedImages *images, int *rows);

/* Appends the request's [rows, 3, height, width] floats to data. */
TRITONSERVER_Error *read_tensor_request(TRITONBACKEND_Request *request, const ModelConfig &config,
                                        std::vector<float> *data, int *rows, int64_t *height,
                                        int64_t *width);

#endif
