/* Internal: the thread-local "last error" behind cnx_last_error(). */
#ifndef CNX_HOST_ERROR_H
#define CNX_HOST_ERROR_H

#include "cnx.h"

#if defined(__GNUC__)
#define CNX_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CNX_PRINTF(a, b)
#endif

/* Records a printf-style message for cnx_last_error() and returns status,
 * so failures read: return cnx_fail(CNX_ERROR_IO, "%s: empty file", path); */
cnx_status cnx_fail(cnx_status status, const char *format, ...) CNX_PRINTF(2, 3);

void cnx_clear_error(void);

/* Returns the status of a call that failed, from the calling function. */
#define CNX_TRY(call)                                                          \
    do {                                                                       \
        const cnx_status try_status_ = (call);                                 \
        if (try_status_ != CNX_OK)                                             \
            return try_status_;                                                \
    } while (0)

#endif
