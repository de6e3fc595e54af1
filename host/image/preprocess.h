/* Internal: what the CPU preprocessing (cnx_preprocess_image) checks of its
 * parameters, for callers that check them once for many images. */
#ifndef CNX_HOST_PREPROCESS_H
#define CNX_HOST_PREPROCESS_H

#include "cnx.h"

/* CNX_OK when cnx_preprocess_image accepts params (for some image); else
 * CNX_ERROR_INVALID_ARGUMENT and the reason. */
cnx_status preprocess_check_params(const cnx_preprocess *params);

#endif
