#include "triton_error.h"

#include <cstdarg>
#include <cstdio>

namespace {

constexpr size_t kMessageSize = 1024;

}  // namespace

TRITONSERVER_Error_Code triton_error_code(cnx_status status, ErrorSource source) {
    switch (status) {
    case CNX_ERROR_INVALID_ARGUMENT:
    case CNX_ERROR_IMAGE:
    case CNX_ERROR_TOO_LARGE:
        return TRITONSERVER_ERROR_INVALID_ARG;
    case CNX_ERROR_UNSUPPORTED:
    case CNX_ERROR_WEIGHTS:
        return source == ErrorSource::kRequest ? TRITONSERVER_ERROR_INVALID_ARG
                                               : TRITONSERVER_ERROR_UNSUPPORTED;
    case CNX_ERROR_IO:
        return TRITONSERVER_ERROR_NOT_FOUND;
    case CNX_ERROR_NO_DEVICE:
        return TRITONSERVER_ERROR_UNAVAILABLE;
    default:
        return TRITONSERVER_ERROR_INTERNAL;
    }
}

TRITONSERVER_Error *triton_error(TRITONSERVER_Error_Code code, const char *format, ...) {
    char message[kMessageSize];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    return TRITONSERVER_ErrorNew(code, message);
}

TRITONSERVER_Error *triton_error_from_cnx(cnx_status status, ErrorSource source,
                                          const char *context) {
    const char *cause = cnx_last_error();
    return triton_error(triton_error_code(status, source), "%s: %s", context,
                        cause[0] ? cause : cnx_status_string(status));
}

void triton_log_at(TRITONSERVER_LogLevel level, const char *file, int line, const char *format,
                   ...) {
    char message[kMessageSize];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    TRITONSERVER_Error *error = TRITONSERVER_LogMessage(level, file, line, message);
    if (error)
        TRITONSERVER_ErrorDelete(error);  // nowhere left to report it
}

void triton_log_and_delete(TRITONSERVER_Error *error, const char *what) {
    if (!error)
        return;
    triton_log(TRITONSERVER_LOG_ERROR, "cnx: %s: %s", what, TRITONSERVER_ErrorMessage(error));
    TRITONSERVER_ErrorDelete(error);
}
