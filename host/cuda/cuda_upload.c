/* One image batch's device copy, uploaded on its own stream (see cuda_upload.h). */
#ifdef CNX_HAVE_CUDA

#include "cuda_upload.h"

#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_status.h"
#include "error.h"

struct cuda_upload {
    int device;
    cudaStream_t stream;  /* the copies */
    cudaEvent_t uploaded; /* the copies are done */
    cudaEvent_t done;     /* the compute work that reads them is done */
    int done_pending;     /* done was recorded and not yet waited for */
    uint8_t *pixels;
    uint64_t pixel_capacity;
    cnx_image_desc *descs;
    int desc_capacity;
};

void cuda_upload_destroy(cuda_upload *u) {
    if (!u)
        return;
    cudaSetDevice(u->device);
    if (u->stream)
        cudaStreamSynchronize(u->stream);
    if (u->done_pending)
        cudaEventSynchronize(u->done); /* compute may still read the buffers */
    cudaFree(u->pixels);
    cudaFree(u->descs);
    if (u->uploaded)
        cudaEventDestroy(u->uploaded);
    if (u->done)
        cudaEventDestroy(u->done);
    if (u->stream)
        cudaStreamDestroy(u->stream);
    free(u);
}

static cnx_status setup(cuda_upload *u) {
    CUDA_TRY(cudaSetDevice(u->device));
    CUDA_TRY(cudaStreamCreateWithFlags(&u->stream, cudaStreamNonBlocking));
    /* Timing is not needed, and events without it are cheaper to wait on. */
    CUDA_TRY(cudaEventCreateWithFlags(&u->uploaded, cudaEventDisableTiming));
    CUDA_TRY(cudaEventCreateWithFlags(&u->done, cudaEventDisableTiming));
    return CNX_OK;
}

cnx_status cuda_upload_create(int device, cuda_upload **out) {
    *out = NULL;
    cuda_upload *u = calloc(1, sizeof *u);
    if (!u)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory");
    u->device = device;
    const cnx_status status = setup(u);
    if (status != CNX_OK) {
        cuda_upload_destroy(u);
        return status;
    }
    *out = u;
    return CNX_OK;
}

/* Device buffers for this batch; they only grow. Called with nothing of
 * ours in flight (cudaFree would wait for it anyway). */
static cnx_status reserve(cuda_upload *u, uint64_t pixel_bytes, int n) {
    if (pixel_bytes > u->pixel_capacity) {
        cudaFree(u->pixels);
        u->pixels = NULL;
        u->pixel_capacity = 0;
        const uint64_t capacity = pixel_bytes + pixel_bytes / 4; /* room for the next batch */
        CUDA_TRY(cudaMalloc((void **)&u->pixels, capacity));
        u->pixel_capacity = capacity;
    }
    if (n > u->desc_capacity) {
        cudaFree(u->descs);
        u->descs = NULL;
        u->desc_capacity = 0;
        CUDA_TRY(cudaMalloc((void **)&u->descs, (size_t)n * sizeof *u->descs));
        u->desc_capacity = n;
    }
    return CNX_OK;
}

cnx_status cuda_upload_batch(cuda_upload *u, const uint8_t *pixels, uint64_t pixel_bytes,
                             const cnx_image_desc *descs, int n, void *compute_stream) {
    CUDA_TRY(cudaSetDevice(u->device));
    CNX_TRY(cuda_upload_wait_done(u));
    CNX_TRY(reserve(u, pixel_bytes, n));
    if (pixels && pixel_bytes) /* NULL: the caller's pixels are on the device already */
        CUDA_TRY(cudaMemcpyAsync(u->pixels, pixels, pixel_bytes, cudaMemcpyHostToDevice, u->stream));
    CUDA_TRY(cudaMemcpyAsync(u->descs, descs, (size_t)n * sizeof *descs, cudaMemcpyHostToDevice,
                               u->stream));
    CUDA_TRY(cudaEventRecord(u->uploaded, u->stream));
    CUDA_TRY(cudaStreamWaitEvent((cudaStream_t)compute_stream, u->uploaded, 0));
    return CNX_OK;
}

const uint8_t *cuda_upload_pixels(const cuda_upload *u) {
    return u->pixels;
}

const cnx_image_desc *cuda_upload_descs(const cuda_upload *u) {
    return u->descs;
}

cnx_status cuda_upload_mark_done(cuda_upload *u, void *compute_stream) {
    CUDA_TRY(cudaEventRecord(u->done, (cudaStream_t)compute_stream));
    u->done_pending = 1;
    return CNX_OK;
}

cnx_status cuda_upload_wait_done(cuda_upload *u) {
    if (!u->done_pending)
        return CNX_OK;
    u->done_pending = 0;
    CUDA_TRY(cudaEventSynchronize(u->done));
    return CNX_OK;
}

#else
/* Built without CUDA: nothing uploads. */
typedef int cnx_cuda_upload_unused;
#endif
