#define _POSIX_C_SOURCE 200809L
#include "labels.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnx.h"
#include "input_open.h"

static int read_lines(labels *l, const char *path) {
    FILE *f = input_open(path);
    if (!f) {
        fprintf(stderr, "cnx: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t line_capacity = 0, capacity = 0;
    ssize_t len;
    int status = 0;
    while ((len = getline(&line, &line_capacity, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if ((size_t)l->count == capacity) {
            capacity = capacity ? 2 * capacity : 1024;
            char **grown = realloc(l->names, capacity * sizeof *grown);
            if (!grown) {
                status = -1;
                break;
            }
            l->names = grown;
        }
        if (!(l->names[l->count] = strdup(line))) {
            status = -1;
            break;
        }
        l->count++;
    }
    free(line);
    fclose(f);
    if (status != 0)
        fprintf(stderr, "cnx: %s: out of memory\n", path);
    /* A file ending in a blank line has one name less than lines. */
    if (l->count > 0 && l->names[l->count - 1][0] == '\0')
        free(l->names[--l->count]);
    return status;
}

int labels_load(labels *l, const char *path, const cnx_engine *engine, int num_classes) {
    memset(l, 0, sizeof *l);
    if (!path) {
        l->engine = engine;
        return 0;
    }
    if (read_lines(l, path) != 0) {
        labels_free(l);
        return -1;
    }
    if (l->count != num_classes) {
        fprintf(stderr, "cnx: %s: %d labels, but the model has %d classes\n", path, l->count,
                num_classes);
        labels_free(l);
        return -1;
    }
    return 0;
}

const char *labels_name(const labels *l, int class_index) {
    if (!l->names)
        return cnx_engine_class_label(l->engine, class_index);
    return class_index >= 0 && class_index < l->count ? l->names[class_index] : NULL;
}

void labels_free(labels *l) {
    for (int i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}
