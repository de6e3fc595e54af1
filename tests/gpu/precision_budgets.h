/* The CUDA forward's logit budgets per precision (cnx_precision order),
 * against the CPU backend's fp32 logits: why these values is said in
 * test_gpu_forward.c. Shared by the GPU test and the emulated ones. */
#ifndef CNX_TESTS_GPU_PRECISION_BUDGETS_H
#define CNX_TESTS_GPU_PRECISION_BUDGETS_H

#include <math.h>
#include <stddef.h>

static const char *const precision_names[] = {"fp32", "tf32", "fp16", "bf16"};
static const double precision_budgets[] = {1e-4, 1e-2, 1e-2, 5e-2};

/* max |got - want| / max |want|; infinity where got has a NaN. */
static inline double relative_error(const float *got, const float *want, size_t count) {
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < count; i++) {
        const double d = fabs((double)got[i] - want[i]);
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
        if (fabs(want[i]) > scale)
            scale = fabs(want[i]);
    }
    return scale > 0 ? worst / scale : worst;
}

#endif
