/* cnx_imagenet_label(): the ImageNet-1k class names. They are data
 * (imagenet_labels.txt, one name a line, as torchvision lists them), built
 * into the library by cmake/embed_lines.cmake; this indexes them once. */
#include <pthread.h>
#include <stddef.h>

#include "cnx.h"

enum { IMAGENET_CLASSES = 1000 };

/* imagenet_labels.txt with each newline a NUL (generated at build time). */
extern const char cnx_imagenet_label_text[];
extern const unsigned long cnx_imagenet_label_text_size;

static const char *label_at[IMAGENET_CLASSES];
static int label_count;
static pthread_once_t labels_indexed = PTHREAD_ONCE_INIT;

static void index_labels(void) {
    for (unsigned long at = 0; at < cnx_imagenet_label_text_size && label_count < IMAGENET_CLASSES;
         label_count++) {
        label_at[label_count] = cnx_imagenet_label_text + at;
        while (cnx_imagenet_label_text[at] != '\0')
            at++;
        at++;
    }
}

const char *cnx_imagenet_label(int class_index) {
    pthread_once(&labels_indexed, index_labels);
    return class_index >= 0 && class_index < label_count ? label_at[class_index] : NULL;
}
