/* Turning the command line's IMAGE|DIR arguments into an ordered file list. */
#ifndef CNX_CLI_INPUTS_H
#define CNX_CLI_INPUTS_H

#include <stddef.h>

typedef struct input_list {
    char **paths;
    size_t count;
    size_t capacity;
} input_list;

/* Files named on the command line are kept as given, in order, whatever their
 * name (a missing one stays, so that it gets its own error in place).
 * Directories are walked recursively, entries sorted by name, and contribute
 * the files whose extension is in `extensions` (case-insensitive, without the
 * dot; NULL-terminated); a link back to a folder above is not followed.
 * Returns 0, or -1 on out-of-memory. */
int inputs_expand(char *const *args, int num_args, const char *const *extensions,
                  input_list *list);

void inputs_free(input_list *list);

/* strcmp order for qsort over char * arrays: byte order, as Python's sorted(). */
int inputs_compare_names(const void *a, const void *b);

/* Whether path is a folder (or a link to one). */
int inputs_is_directory(const char *path);

/* "dir/name" in a malloc'd string, or NULL when out of memory. */
char *inputs_join(const char *dir, const char *name);

/* The extensions taken from directories: PNG and JPEG. */
extern const char *const image_extensions[];

#endif
