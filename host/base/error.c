/* Status names and the per-thread error message. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

const char *cnx_status_string(cnx_status status) {
    switch (status) {
    case CNX_OK: return "ok";
    case CNX_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case CNX_ERROR_IO: return "cannot read file";
    case CNX_ERROR_WEIGHTS: return "bad weights file";
    case CNX_ERROR_IMAGE: return "corrupt image";
    case CNX_ERROR_UNSUPPORTED: return "unsupported input";
    case CNX_ERROR_TOO_LARGE: return "over a size limit";
    case CNX_ERROR_OUT_OF_MEMORY: return "out of memory";
    case CNX_ERROR_NO_DEVICE: return "no usable CUDA device";
    case CNX_ERROR_DEVICE: return "CUDA error";
    case CNX_ERROR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *cnx_last_error(void) { return last_error; }

void cnx_clear_error(void) { last_error[0] = '\0'; }

cnx_status cnx_fail(cnx_status status, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(last_error, sizeof last_error, format, args);
    va_end(args);
    return status;
}
