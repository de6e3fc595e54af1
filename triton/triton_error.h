/* Errors and log lines in Triton's terms: TRITONSERVER_Error objects made
 * from printf-style messages or from a failed cnx call, and messages for
 * the server's log. */
#ifndef CNX_TRITON_ERROR_H
#define CNX_TRITON_ERROR_H

#include "cnx.h"
#include "triton_backend_api.h"

/* A new error with a formatted message ("model 'digits': ..."). */
TRITONSERVER_Error *triton_error(TRITONSERVER_Error_Code code, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Where a failed cnx call's input came from: a model's files and config,
 * or a request. */
enum class ErrorSource { kLoad, kRequest };

/* The Triton code for a cnx status, which says whose fault it was: what a
 * request's data causes (a corrupt, unsupported or too large image, a bad
 * value) is INVALID_ARG, so that clients get 400; a model that cannot load
 * says why (NOT_FOUND, UNSUPPORTED, UNAVAILABLE for a missing device). */
TRITONSERVER_Error_Code triton_error_code(cnx_status status, ErrorSource source);

/* The error for a failed cnx call: cnx_last_error() after `context: `, with
 * the code of triton_error_code. */
TRITONSERVER_Error *triton_error_from_cnx(cnx_status status, ErrorSource source,
                                          const char *context);

/* One line in the server's log, at `level`, naming the caller's file and
 * line as Triton's own lines do. */
#define triton_log(level, ...) triton_log_at(level, __FILE__, __LINE__, __VA_ARGS__)
void triton_log_at(TRITONSERVER_LogLevel level, const char *file, int line, const char *format,
                   ...) __attribute__((format(printf, 4, 5)));

/* Logs an error the backend cannot hand back (from a call made to report
 * something else) and deletes it. */
void triton_log_and_delete(TRITONSERVER_Error *error, const char *what);

#endif
