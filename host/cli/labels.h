/* Class names for printing: a file's, else the engine's (the checkpoint's
 * own, or the built-in ImageNet-1k names). */
#ifndef CNX_CLI_LABELS_H
#define CNX_CLI_LABELS_H

#include "cnx.h"

typedef struct labels {
    char **names; /* a file's names, or NULL */
    int count;
    const cnx_engine *engine; /* without a file: the engine's names */
} labels;

/* Reads one name per line from path (a trailing empty line is ignored); the
 * count must equal num_classes. Without a path, the engine's names
 * (cnx_engine_class_label). Returns 0 or -1 (error printed). */
int labels_load(labels *l, const char *path, const cnx_engine *engine, int num_classes);

/* The name of a class, or NULL when there is none. */
const char *labels_name(const labels *l, int class_index);

void labels_free(labels *l);

#endif
