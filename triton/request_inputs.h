/* Reading one request's input: the encoded images of IMAGE, decoded, or the
 * float32 tensors of INPUT. A request may carry a batch of several. */
#ifndef CNX_TRITON_REQUEST_INPUTS_H
#define CNX_TRITON_REQUEST_INPUTS_H

#include <cstdint>
#include <vector>

#include "cnx.h"
#include "model_config.h"
#include "triton_backend_api.h"

/* Decodes the request's images and appends them to images (the caller frees
 * them with cnx_image_free); *rows is their count. On error nothing is
 * appended and the message names the element and the cause. */
TRITONSERVER_Error *read_image_request(TRITONBACKEND_Request *request, const ModelConfig &config,
                                       std::vector<cnx_image> *images, int *rows);

/* Appends the request's [rows, 3, height, width] floats to data. */
TRITONSERVER_Error *read_tensor_request(TRITONBACKEND_Request *request, const ModelConfig &config,
                                        std::vector<float> *data, int *rows, int64_t *height,
                                        int64_t *width);

#endif
