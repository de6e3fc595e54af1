/* One call of TRITONBACKEND_ModelInstanceExecute: the requests the server
 * batched, run through the instance's engine as one batch, each answered
 * with its PROBS or its own error, and the statistics reported. */
#ifndef CNX_TRITON_EXECUTE_H
#define CNX_TRITON_EXECUTE_H

#include <cstdint>

#include "cnx.h"
#include "model_config.h"
#include "triton_backend_api.h"

struct Instance {
    TRITONBACKEND_ModelInstance *triton = nullptr;
    const ModelConfig *config = nullptr;
    cnx_engine *engine = nullptr;
    int num_classes = 0;
};

/* Answers and releases every request and returns NULL. A request that
 * fails (a bad image, a wrong shape) gets its error; the others are
 * unaffected. Returns an error, having answered none, only when the batch
 * cannot be held in memory (an exception): the server then fails the
 * requests itself. */
TRITONSERVER_Error *execute_requests(const Instance &instance, TRITONBACKEND_Request **requests,
                                     uint32_t request_count);

#endif
