/* Listing an ImageFolder tree: class folders, then their images. */
#define _DEFAULT_SOURCE
#include "image_folder.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const image_folder_extensions[] = {"jpg", "jpeg", "png", "ppm", "bmp", "pgm",
                                               "tif", "tiff", "webp", NULL};

/* The sorted names of root's subfolders. */
static int list_classes(const char *root, image_folder *f, char *error, size_t error_size) {
    DIR *d = opendir(root);
    if (!d) {
        snprintf(error, error_size, "%s: %s", root,
                 errno == ENOTDIR ? "not a folder (expected ROOT/<class>/<images>)" : strerror(errno));
        return -1;
    }
    int capacity = 0;
    struct dirent *entry;
    while ((entry = readdir(d))) {
        if (entry->d_name[0] == '.')
            continue;
        char *path = inputs_join(root, entry->d_name);
        int is_class = path && inputs_is_directory(path);
        free(path);
        if (!is_class)
            continue;
        if (f->num_classes == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            char **grown = realloc(f->classes, capacity * sizeof *grown);
            if (!grown)
                break;
            f->classes = grown;
        }
        if (!(f->classes[f->num_classes] = strdup(entry->d_name)))
            break;
        f->num_classes++;
    }
    int complete = entry == NULL;
    closedir(d);
    if (!complete) {
        snprintf(error, error_size, "%s: out of memory listing the class folders", root);
        return -1;
    }
    if (f->num_classes == 0) {
        snprintf(error, error_size, "%s: no class folders (expected ROOT/<class>/<images>)", root);
        return -1;
    }
    qsort(f->classes, f->num_classes, sizeof *f->classes, inputs_compare_names);
    return 0;
}

/* Moves the paths of `from` to the end of f->files, each with target c. */
static int append(image_folder *f, input_list *from, int c) {
    size_t count = f->files.count + from->count;
    if (count > f->files.capacity) {
        char **paths = realloc(f->files.paths, count * sizeof *paths);
        int *targets = realloc(f->targets, count * sizeof *targets);
        if (paths)
            f->files.paths = paths;
        if (targets)
            f->targets = targets;
        if (!paths || !targets)
            return -1;
        f->files.capacity = count;
    }
    for (size_t i = 0; i < from->count; i++) {
        f->files.paths[f->files.count] = from->paths[i];
        f->targets[f->files.count++] = c;
    }
    free(from->paths);
    memset(from, 0, sizeof *from);
    return 0;
}

int image_folder_scan(const char *root, image_folder *f, char *error, size_t error_size) {
    memset(f, 0, sizeof *f);
    if (list_classes(root, f, error, error_size) != 0) {
        image_folder_free(f);
        return -1;
    }
    for (int c = 0; c < f->num_classes; c++) {
        char *dir = inputs_join(root, f->classes[c]);
        input_list found;
        int status = dir ? inputs_expand(&dir, 1, image_folder_extensions, &found) : -1;
        free(dir);
        if (status == 0 && append(f, &found, c) != 0) {
            inputs_free(&found);
            status = -1;
        }
        if (status != 0) {
            snprintf(error, error_size, "%s: out of memory listing the images", root);
            image_folder_free(f);
            return -1;
        }
    }
    return 0;
}

void image_folder_free(image_folder *f) {
    for (int c = 0; c < f->num_classes; c++)
        free(f->classes[c]);
    free(f->classes);
    inputs_free(&f->files);
    free(f->targets);
    memset(f, 0, sizeof *f);
}
