/* cuBLASLt opened at run time (host/cuda/cublaslt_library.c), with the real
 * library: no GPU needed.
 *
 *   test_cublaslt_library loads        the library opens; the definitions
 *                                      forward to it; prints "loaded SONAME
 *                                      from PATH"
 *   test_cublaslt_library fails WORD.. it does not: CNX_ERROR_NO_DEVICE,
 *                                      and on each later call the message
 *                                      with every WORD; the definitions stay
 *                                      stubs
 *
 * ctest runs "fails" with $CNX_CUBLASLT_LIBRARY naming a missing file and a
 * library without the functions; tests/gpu/test_cpu_without_cuda_libraries.py
 * runs it where the CUDA libraries are out of reach. */
#define _GNU_SOURCE
#include <cublasLt.h>
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cublaslt_library.h"
#include "test_check.h"

enum { THREADS = 4 };

static void *load_in_thread(void *status) {
    *(cnx_status *)status = cnx_cublaslt_load();
    return NULL;
}

/* Every thread loading at once gets the same answer. */
static cnx_status load_from_threads(void) {
    pthread_t threads[THREADS];
    cnx_status statuses[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, load_in_thread, &statuses[i]);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 1; i < THREADS; i++)
        CHECK(statuses[i] == statuses[0], "thread %d: status %d, thread 0: %d", i, (int)statuses[i],
              (int)statuses[0]);
    return statuses[0];
}

static void check_stubs(const char *when) {
    cublasLtHandle_t handle = NULL;
    CHECK(cublasLtCreate(&handle) == CUBLAS_STATUS_NOT_INITIALIZED && !handle,
          "%s: cublasLtCreate did not answer NOT_INITIALIZED", when);
    const char *text = cublasLtGetStatusString(CUBLAS_STATUS_ALLOC_FAILED);
    CHECK(text && strstr(text, "not loaded"), "%s: the status string is \"%s\"", when, text);
}

int main(int argc, char **argv) {
    const int loads = argc == 2 && !strcmp(argv[1], "loads");
    if (!loads && (argc < 3 || strcmp(argv[1], "fails"))) {
        fprintf(stderr, "usage: test_cublaslt_library loads | fails WORD...\n");
        return 2;
    }
    check_stubs("before loading");
    const cnx_status status = load_from_threads();
    if (loads) {
        CHECK(status == CNX_OK, "%s", cnx_last_error());
        /* The library's own answer, through our definition. */
        void *library = dlopen(CNX_CUBLASLT_SONAME, RTLD_NOW | RTLD_NOLOAD);
        const char *(*status_string)(cublasStatus_t) =
            library ? (const char *(*)(cublasStatus_t))dlsym(library, "cublasLtGetStatusString") : NULL;
        CHECK(status_string, "%s is not loaded in the process", CNX_CUBLASLT_SONAME);
        if (status_string)
            CHECK(!strcmp(cublasLtGetStatusString(CUBLAS_STATUS_ALLOC_FAILED),
                          status_string(CUBLAS_STATUS_ALLOC_FAILED)),
                  "cublasLtGetStatusString gives \"%s\", the library \"%s\"",
                  cublasLtGetStatusString(CUBLAS_STATUS_ALLOC_FAILED),
                  status_string(CUBLAS_STATUS_ALLOC_FAILED));
        struct link_map *map = NULL;
        if (library && dlinfo(library, RTLD_DI_LINKMAP, &map) == 0 && map)
            printf("loaded %s from %s\n", CNX_CUBLASLT_SONAME, map->l_name);
        return test_summary();
    }
    CHECK(status == CNX_ERROR_NO_DEVICE, "status %d from the threads", (int)status);
    /* The message is per thread: this one's calls come after the load. */
    for (int call = 0; call < 2; call++) {
        const cnx_status again = cnx_cublaslt_load();
        const char *message = cnx_last_error();
        CHECK(again == CNX_ERROR_NO_DEVICE, "call %d: status %d, \"%s\"", call, (int)again, message);
        CHECK(!strchr(message, '\n'), "call %d: \"%s\" is not one line", call, message);
        for (int i = 2; i < argc; i++)
            CHECK(strstr(message, argv[i]), "call %d: \"%s\" does not name \"%s\"", call, message,
                  argv[i]);
        if (call == 0)
            printf("refused: %s\n", message);
    }
    check_stubs("after a failed load");
    return test_summary();
}
