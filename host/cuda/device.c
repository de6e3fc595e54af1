/* CPU thread count, and the CUDA answer for builds without nvcc. */
#include "device.h"

#include <omp.h>
#include <stdio.h>

int cnx_cpu_thread_count(int requested) {
    return requested > 0 ? requested : omp_get_max_threads();
}

#ifndef CNX_HAVE_CUDA
int cnx_cuda_usable(int ordinal, char *name, size_t name_size, char *why, size_t why_size) {
    (void)ordinal;
    if (name_size)
        name[0] = '\0';
    snprintf(why, why_size, "this cnx was built without CUDA (no nvcc at build time)");
    return 0;
}
#endif
