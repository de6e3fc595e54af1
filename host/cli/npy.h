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

/* A float32 .npy file open for reading images out of it one at a time, so
 * that a large tensor file is never held in memory whole. */
typedef struct npy_reader {
    FILE *file;
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    long data_offset;
} npy_reader;

/* Opens and checks a float32 C-order .npy file: header, and a file size that
 * holds the data the header promises. Returns 0, or -1 with a one-line cause
 * in error (the caller names the file). */
int npy_reader_open(const char *path, npy_reader *reader, char *error, int error_size);

/* Reads count floats starting at float index first. Returns 0 or -1. */
int npy_reader_read(npy_reader *reader, size_t first, size_t count, float *out, char *error,
                    int error_size);

void npy_reader_close(npy_reader *reader);

#endif
