/* Directory walking for inputs: sorted and recursive, as ImageFolder reads. */
#define _DEFAULT_SOURCE
#include "inputs.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

const char *const image_extensions[] = {"png", "jpg", "jpeg", NULL};

static int push(input_list *list, const char *path) {
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 64;
        char **paths = realloc(list->paths, capacity * sizeof *paths);
        if (!paths)
            return -1;
        list->paths = paths;
        list->capacity = capacity;
    }
    if (!(list->paths[list->count] = strdup(path)))
        return -1;
    list->count++;
    return 0;
}

static int has_extension(const char *name, const char *const *extensions) {
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (int i = 0; extensions[i]; i++)
        if (!strcasecmp(dot + 1, extensions[i]))
            return 1;
    return 0;
}

int inputs_compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int inputs_is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode); /* follows links, as ImageFolder */
}

char *inputs_join(const char *dir, const char *name) {
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = malloc(len);
    if (path)
        snprintf(path, len, "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return path;
}

/* The folders above the one being walked, to stop at a link back up. */
typedef struct ancestry {
    dev_t device;
    ino_t inode;
    const struct ancestry *parent;
} ancestry;

static int walk(const char *dir, const char *const *extensions, const ancestry *parent,
                input_list *list) {
    struct stat st;
    if (stat(dir, &st) != 0)
        return push(list, dir); /* gone: reported in place by the reader */
    for (const ancestry *a = parent; a; a = a->parent)
        if (a->device == st.st_dev && a->inode == st.st_ino)
            return 0; /* a link to a folder above: following it would never end */
    const ancestry self = {st.st_dev, st.st_ino, parent};
    DIR *d = opendir(dir);
    if (!d)
        return push(list, dir); /* unreadable: reported in place by the reader */
    char **names = NULL;
    size_t count = 0, capacity = 0;
    int status = 0;
    struct dirent *entry;
    while ((entry = readdir(d))) {
        if (entry->d_name[0] == '.')
            continue; /* ".", ".." and hidden files */
        if (count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            char **grown = realloc(names, capacity * sizeof *names);
            if (!grown) {
                status = -1;
                break;
            }
            names = grown;
        }
        if (!(names[count] = strdup(entry->d_name))) {
            status = -1;
            break;
        }
        count++;
    }
    closedir(d);
    if (count > 0) /* qsort(NULL, 0) is undefined behaviour */
        qsort(names, count, sizeof *names, inputs_compare_names);
    for (size_t i = 0; i < count && status == 0; i++) {
        char *path = inputs_join(dir, names[i]);
        if (!path) {
            status = -1;
            break;
        }
        if (inputs_is_directory(path))
            status = walk(path, extensions, &self, list);
        else if (has_extension(names[i], extensions))
            status = push(list, path);
        free(path);
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return status;
}

int inputs_expand(char *const *args, int num_args, const char *const *extensions,
                  input_list *list) {
    memset(list, 0, sizeof *list);
    for (int i = 0; i < num_args; i++) {
        int status = inputs_is_directory(args[i]) ? walk(args[i], extensions, NULL, list)
                                                  : push(list, args[i]);
        if (status != 0) {
            inputs_free(list);
            return -1;
        }
    }
    return 0;
}

void inputs_free(input_list *list) {
    for (size_t i = 0; i < list->count; i++)
        free(list->paths[i]);
    free(list->paths);
    memset(list, 0, sizeof *list);
}
