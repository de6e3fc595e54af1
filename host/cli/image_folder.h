/* The ImageFolder layout of torchvision.datasets.ImageFolder: ROOT/<class>/
 * ... /image. The classes are the subfolders of ROOT in sorted order, class
 * index = position in that order; the images are the files under each class
 * folder, found recursively, whose extension torchvision counts as an image. */
#ifndef CNX_CLI_IMAGE_FOLDER_H
#define CNX_CLI_IMAGE_FOLDER_H

#include <stddef.h>

#include "inputs.h"

typedef struct image_folder {
    char **classes;   /* folder names, sorted */
    int num_classes;
    input_list files; /* the images, class by class, each class's sorted */
    int *targets;     /* [files.count]: the class index of each image */
} image_folder;

/* torchvision's IMG_EXTENSIONS: jpg jpeg png ppm bmp pgm tif tiff webp.
 * cnx decodes PNG and JPEG; the others are listed so that they are reported
 * as failed rather than silently left out of the accuracy. */
extern const char *const image_folder_extensions[];

/* Reads the layout under root. Names starting with '.' are skipped (unlike
 * torchvision, which takes a hidden folder as a class). Within a class folder,
 * files come in cnx's directory order (entries sorted by name, subfolders
 * walked where they sort), which is torchvision's for flat class folders.
 * Returns 0, or -1 with a one-line cause naming root in error. */
int image_folder_scan(const char *root, image_folder *folder, char *error, size_t error_size);

void image_folder_free(image_folder *folder);

#endif
