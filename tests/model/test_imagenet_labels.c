/* cnx_imagenet_label() against the data file it is built from
 * (host/engine/imagenet_labels.txt), from several threads at once: every
 * name, in order, and NULL outside 0..999. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cnx.h"
#include "test_check.h"

enum { CLASSES = 1000, THREADS = 4 };

static char expected[CLASSES][128];

static void *first_lookup(void *out) {
    *(const char **)out = cnx_imagenet_label(CLASSES - 1);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s imagenet_labels.txt\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    int lines = 0;
    while (lines < CLASSES && fgets(expected[lines], sizeof expected[lines], f)) {
        expected[lines][strcspn(expected[lines], "\n")] = '\0';
        lines++;
    }
    fclose(f);
    CHECK(lines == CLASSES, "%s: %d lines, want %d", argv[1], lines, CLASSES);

    /* The first lookups race to index the table; each must see it whole. */
    pthread_t threads[THREADS];
    const char *seen[THREADS];
    for (int t = 0; t < THREADS; t++)
        pthread_create(&threads[t], NULL, first_lookup, &seen[t]);
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        CHECK(seen[t] && strcmp(seen[t], expected[CLASSES - 1]) == 0, "thread %d saw \"%s\"", t,
              seen[t] ? seen[t] : "(null)");
    }

    for (int i = 0; i < CLASSES; i++) {
        const char *name = cnx_imagenet_label(i);
        CHECK(name && strcmp(name, expected[i]) == 0, "class %d: \"%s\", want \"%s\"", i,
              name ? name : "(null)", expected[i]);
    }
    CHECK(strcmp(cnx_imagenet_label(0), "tench") == 0, "class 0 is not tench");
    CHECK(cnx_imagenet_label(-1) == NULL, "class -1 has a name");
    CHECK(cnx_imagenet_label(CLASSES) == NULL, "class %d has a name", CLASSES);
    return test_summary();
}
