/* Internal: what the CPU preprocessing (cnx_preprocess_image) checks of its
 * arguments, for callers that check them once for many images, and the crop
 * geometry with its errors, for callers that resize without cropping. */
#ifndef CNX_HOST_PREPROCESS_H
#define CNX_HOST_PREPROCESS_H

#include "cnx.h"
#include "pillow_resample.h"

/* CNX_OK when cnx_preprocess_image accepts params (for some image); else
 * CNX_ERROR_INVALID_ARGUMENT and the reason. */
cnx_status preprocess_check_params(const cnx_preprocess *params);

/* CNX_OK when image has pixels and a positive size; else
 * CNX_ERROR_INVALID_ARGUMENT and the reason. */
cnx_status preprocess_check_image(const cnx_image *image);

/* cnx_crop_geometry_make for a width x height image under params (checked),
 * with its failures as cnx_preprocess_pixels reports them. */
cnx_status preprocess_geometry(int width, int height, const cnx_preprocess *params,
                               cnx_crop_geometry *g);

#endif
