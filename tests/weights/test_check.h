/* Test helper: pass/fail counting and the checks every weights test makes on
 * a failure: the right status, and a message naming the file and the cause. */
#ifndef CNX_TESTS_TEST_CHECK_H
#define CNX_TESTS_TEST_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cnx.h"

static int checks_passed, checks_failed;

#define CHECK(condition, ...)                                                        \
    do {                                                                             \
        if (condition) {                                                             \
            checks_passed++;                                                         \
        } else {                                                                     \
            checks_failed++;                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                     \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
        }                                                                            \
    } while (0)

/* status must be want, and cnx_last_error() must hold path and word. */
#define CHECK_FAILS(status, want, path, word, label)                                 \
    do {                                                                             \
        cnx_status got_ = (status);                                                  \
        const char *message_ = cnx_last_error();                                     \
        CHECK(got_ == (want) && strstr(message_, (path)) && strstr(message_, (word)), \
              "%s: got status %d (want %d), message \"%s\" (want \"%s\" and \"%s\")",  \
              (label), (int)got_, (int)(want), message_, (path), (word));            \
    } while (0)

static inline int test_summary(void) {
    printf("%d passed, %d failed\n", checks_passed, checks_failed);
    return checks_failed ? 1 : 0;
}

/* dir/name into out. */
static inline const char *test_path(char *out, size_t size, const char *dir, const char *name) {
    snprintf(out, size, "%s/%s", dir, name);
    return out;
}

static inline int test_make_dir(const char *dir) {
    return (mkdir(dir, 0755) == 0 || errno == EEXIST) ? 0 : -1;
}

#endif
