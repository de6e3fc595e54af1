/* NumPy .npy files (format version 1.0, C order, little endian): how
 * pipelines hand tensors to cnx and get logits and pixels back. */
#ifndef CNX_CLI_NPY_H
#define CNX_CLI_NPY_H

#include <stdint.h>
#include <stdio.h>

#define NPY_MAX_DIMS 8

typedef enum { NPY_FLOAT32, NPY_UINT8 } npy_dtype;

/* Writes data as an .npy file. Returns 0, or -1 after printing
 * "cnx: PATH: cause" to stderr. */
int npy_write(const char *path, const void *data, npy_dtype dtype, int ndim,
              const int64_t *shape);

/* For output written row by row, so memory stays bounded: npy_begin writes
 * the header and returns the open file (or NULL after printing the error);
 * the caller fwrites the data in C order; npy_end closes and checks. */
FILE *npy_begin(const char *path, npy_dtype dtype, int ndim, const int64_t *shape);
int npy_end(FILE *file, const char *path);

typedef struct npy_array {
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    float *data; /* malloc'd, count = product of shape */
} npy_array;

/* Reads a float32 .npy file. Returns 0, or -1 with a one-line cause in
 * error (the caller names the file). */
int npy_read_float32(const char *path, npy_array *array, char *error, int error_size);

/* Reads only the header of a float32 .npy file: ndim and shape, no data. */
int npy_read_shape(const char *path, npy_array *array, char *error, int error_size);

void npy_array_free(npy_array *array);

#endif
