/* Class names for printing: the built-in ImageNet-1k names, or a file. */
#ifndef CNX_CLI_LABELS_H
#define CNX_CLI_LABELS_H

typedef struct labels {
    char **names; /* NULL when the model's classes have no names */
    int count;
    int use_imagenet; /* no file given and the model has 1000 classes */
} labels;

/* Reads one name per line from path (a trailing empty line is ignored); the
 * count must equal num_classes. Without a path, ImageNet names are used for
 * 1000-class models and none otherwise. Returns 0 or -1 (error printed). */
int labels_load(labels *l, const char *path, int num_classes);

/* The name of a class, or NULL when there is none. */
const char *labels_name(const labels *l, int class_index);

void labels_free(labels *l);

#endif
