/* Internal: the device copy of one image batch's packed pixels and
 * descriptors (image_batch.h), uploaded on a stream of its own so that the
 * upload of one batch overlaps the model running on the one before.
 *
 * Order of use per batch: cuda_upload_batch (waits until the last batch
 * through this upload is done, then queues the copies and makes the
 * compute stream wait for them), then the compute work, then
 * cuda_upload_mark_done on the compute stream, then cuda_upload_wait_done
 * before reading the results. CUDA builds only. */
#ifndef CNX_HOST_CUDA_UPLOAD_H
#define CNX_HOST_CUDA_UPLOAD_H

#include <stdint.h>

#include "cnx.h"

typedef struct cuda_upload cuda_upload;

cnx_status cuda_upload_create(int device, cuda_upload **upload);
void cuda_upload_destroy(cuda_upload *upload);

/* pixels and descs: host memory (page-locked, or the copies do not overlap).
 * pixels may be NULL: only the descriptors are uploaded. */
cnx_status cuda_upload_batch(cuda_upload *upload, const uint8_t *pixels, uint64_t pixel_bytes,
                             const cnx_image_desc *descs, int n, void *compute_stream);

/* The device copies, valid until the next cuda_upload_batch. */
const uint8_t *cuda_upload_pixels(const cuda_upload *upload);
const cnx_image_desc *cuda_upload_descs(const cuda_upload *upload);

cnx_status cuda_upload_mark_done(cuda_upload *upload, void *compute_stream);
cnx_status cuda_upload_wait_done(cuda_upload *upload);

#endif
