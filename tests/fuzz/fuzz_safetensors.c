/* libFuzzer target for the safetensors reader and the ConvNeXt loader.
 *
 * Each input is parsed from memory (the reader proper), every float tensor
 * it accepts is converted, and the same bytes then go through the whole
 * ConvNeXt loader by way of an in-memory file. Build with clang:
 *   -fsanitize=fuzzer,address,undefined, linked with cnx_internal.
 * Seeds: any .safetensors file, e.g. those tests/weights writes. */
#define _GNU_SOURCE

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "convnext_weights.h"
#include "safetensors.h"

static void read_everything(const cnx_safetensors *st) {
    for (size_t i = 0; i < st->num_tensors; i++) {
        const cnx_safetensors_tensor *t = &st->tensors[i];
        if (!cnx_safetensors_is_float_dtype(t->dtype)) continue;
        float *values = malloc(t->numel ? (size_t)t->numel * sizeof(float) : 1);
        if (!values) continue;
        cnx_safetensors_to_f32(st, t, values);
        free(values);
    }
    for (size_t i = 0; i < st->num_metadata; i++)
        cnx_safetensors_metadata(st, st->metadata[i].key);
}

/* The loader takes a path: give it one that is only memory. */
static int memory_file(void) {
    static int fd = -1;
    if (fd < 0) fd = memfd_create("fuzz_safetensors", MFD_CLOEXEC);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cnx_safetensors st;
    if (cnx_safetensors_open_memory(data, size, "fuzz-input", &st) == CNX_OK) {
        read_everything(&st);
        cnx_safetensors_close(&st);
    }

    int fd = memory_file();
    if (fd < 0 || ftruncate(fd, 0) != 0) return 0;
    if (size && pwrite(fd, data, size, 0) != (ssize_t)size) return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    cnx_convnext_weights weights;
    if (cnx_convnext_weights_load(path, &weights) == CNX_OK)
        cnx_convnext_weights_free(&weights);
    return 0;
}
