/* libFuzzer target for the checkpoint folder's config reader
 * (weights/checkpoint_config.c): JSON from timm and Hugging Face.
 *
 * The input's first byte picks the file it becomes in a scratch folder:
 * even, config.json alone (timm's or transformers' model config); odd,
 * preprocessor_config.json beside a fixed transformers config.json. The
 * rest of the input is the file's text. Seeds: make_config_seeds.py. */
#define _GNU_SOURCE

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint_config.h"

static const char transformers_config[] =
    "{\"model_type\": \"convnext\", \"depths\": [1, 1, 2, 1], "
    "\"hidden_sizes\": [16, 32, 64, 128], \"id2label\": {\"0\": \"a\", \"1\": \"b\"}}";

static char folder[64];

static void write_file(const char *name, const void *data, size_t size) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort(); /* the scratch folder is ours: a failure here is the harness's */
    fwrite(data, 1, size, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!folder[0]) {
        snprintf(folder, sizeof folder, "/tmp/cnx_fuzz_config_XXXXXX");
        if (!mkdtemp(folder)) abort();
    }
    if (size == 0) return 0;
    char path[128];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", folder);
    unlink(path);
    if (data[0] % 2 == 0) {
        write_file("config.json", data + 1, size - 1);
    } else {
        write_file("config.json", transformers_config, sizeof transformers_config - 1);
        write_file("preprocessor_config.json", data + 1, size - 1);
    }
    cnx_checkpoint_config config;
    for (int test_size = 0; test_size < 2; test_size++)
        if (cnx_checkpoint_config_read(folder, test_size, &config) == CNX_OK)
            cnx_checkpoint_config_free(&config);
    return 0;
}
