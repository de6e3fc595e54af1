/* Unit checks of the CPU backend's loops against plain double-precision
 * references, and of softmax/top-k ordering. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnx.h"
#include "cpu_ops.h"

static int passed, failed;

static void check(const char *name, int ok, double detail) {
    if (ok)
        passed++;
    else
        failed++;
    printf("%s %s (%.3g)\n", ok ? "PASS" : "FAIL", name, detail);
}

static float uniform(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) / 16777216.0 * 2.0 - 1.0);
}

static void test_erf(void) {
    double worst = 0;
    for (int i = -600000; i <= 600000; i++) {
        const float x = i * 1e-5f;
        worst = fmax(worst, fabs(cpu_erf(x) - erf((double)x)));
    }
    /* 5e-7 is a few fp32 ulps of values near 1: far inside the 1e-4 logit budget. */
    check("cpu_erf within 5e-7 of erf on [-6, 6]", worst < 5e-7, worst);
}

static void test_layernorm(void) {
    enum { PIXELS = 5, CHANNELS = 96 };
    unsigned seed = 1;
    float x[PIXELS * CHANNELS], gain[CHANNELS], bias[CHANNELS];
    for (int i = 0; i < PIXELS * CHANNELS; i++)
        x[i] = 3.0f + 2.0f * uniform(&seed); /* an offset mean tests the two-pass variance */
    for (int c = 0; c < CHANNELS; c++) {
        gain[c] = 1.0f + 0.5f * uniform(&seed);
        bias[c] = uniform(&seed);
    }
    float y[PIXELS * CHANNELS];
    memcpy(y, x, sizeof x);
    cpu_layernorm(y, PIXELS, CHANNELS, gain, bias, CNX_LAYERNORM_EPS);
    double worst = 0;
    for (int p = 0; p < PIXELS; p++) {
        double mean = 0, var = 0;
        for (int c = 0; c < CHANNELS; c++)
            mean += x[p * CHANNELS + c];
        mean /= CHANNELS;
        for (int c = 0; c < CHANNELS; c++)
            var += (x[p * CHANNELS + c] - mean) * (x[p * CHANNELS + c] - mean);
        var /= CHANNELS;
        for (int c = 0; c < CHANNELS; c++) {
            double ref = (x[p * CHANNELS + c] - mean) / sqrt(var + 1e-6) * gain[c] + bias[c];
            worst = fmax(worst, fabs(ref - y[p * CHANNELS + c]));
        }
    }
    check("cpu_layernorm matches a double reference", worst < 1e-5, worst);
}

/* The head LayerNorm's epsilon is the model's (Hugging Face: 1e-12): on
 * features whose variance is far below 1e-6, 1e-6 and 1e-12 give very
 * different outputs, and each must match the reference with its own. */
static void test_layernorm_eps(void) {
    enum { PIXELS = 3, CHANNELS = 64 };
    unsigned seed = 11;
    float x[PIXELS * CHANNELS];
    for (int i = 0; i < PIXELS * CHANNELS; i++)
        x[i] = 1e-5f * uniform(&seed); /* variance about 3e-11 */
    const float eps[2] = {1e-12f, CNX_LAYERNORM_EPS};
    float y[2][PIXELS * CHANNELS];
    double worst[2] = {0, 0}, apart = 0;
    for (int e = 0; e < 2; e++) {
        memcpy(y[e], x, sizeof x);
        cpu_layernorm(y[e], PIXELS, CHANNELS, NULL, NULL, eps[e]);
        for (int p = 0; p < PIXELS; p++) {
            double mean = 0, var = 0;
            for (int c = 0; c < CHANNELS; c++)
                mean += x[p * CHANNELS + c];
            mean /= CHANNELS;
            for (int c = 0; c < CHANNELS; c++)
                var += (x[p * CHANNELS + c] - mean) * (x[p * CHANNELS + c] - mean);
            var /= CHANNELS;
            for (int c = 0; c < CHANNELS; c++) {
                const double ref = (x[p * CHANNELS + c] - mean) / sqrt(var + (double)eps[e]);
                worst[e] = fmax(worst[e], fabs(ref - y[e][p * CHANNELS + c]));
            }
        }
    }
    for (int i = 0; i < PIXELS * CHANNELS; i++)
        apart = fmax(apart, fabs(y[0][i] - y[1][i]));
    check("cpu_layernorm with eps 1e-12 matches a double reference", worst[0] < 1e-5, worst[0]);
    check("cpu_layernorm with eps 1e-6 matches a double reference", worst[1] < 1e-6, worst[1]);
    check("cpu_layernorm: eps 1e-12 and 1e-6 differ on low-variance features", apart > 0.5, apart);
}

/* GRN against a double reference: Gx the L2 norm over each image's pixels,
 * Nx = Gx / (mean Gx + 1e-6), x + bias + gain * x * Nx. Channel counts that
 * are and are not multiples of the 16-channel chunk, one channel all zeros,
 * and the same bits for any thread count. */
static void test_grn_shape(int batch, int pixels, int channels) {
    const size_t count = (size_t)batch * pixels * channels;
    float *x = malloc(count * sizeof(float)), *y = malloc(count * sizeof(float));
    float *y1 = malloc(count * sizeof(float)), *nx = malloc((size_t)batch * channels * sizeof(float));
    float *gain = malloc(channels * sizeof(float)), *bias = malloc(channels * sizeof(float));
    double *gx = malloc((size_t)channels * sizeof(double));
    unsigned seed = (unsigned)(3 + channels);
    for (size_t i = 0; i < count; i++) /* GELU outputs: mostly positive, a few small negatives */
        x[i] = (i % (size_t)channels) == 5 ? 0.0f : fmaxf(2.0f * uniform(&seed), -0.17f);
    for (int c = 0; c < channels; c++) {
        gain[c] = 0.5f * uniform(&seed);
        bias[c] = 0.2f * uniform(&seed);
    }
    memcpy(y, x, count * sizeof(float));
    cpu_grn(y, nx, batch, (size_t)pixels, channels, gain, bias);
    double worst = 0;
    for (int n = 0; n < batch; n++) {
        const float *image = x + (size_t)n * pixels * channels;
        double mean = 0;
        for (int c = 0; c < channels; c++) {
            double squares = 0;
            for (int p = 0; p < pixels; p++)
                squares += (double)image[(size_t)p * channels + c] * image[(size_t)p * channels + c];
            gx[c] = sqrt(squares);
            mean += gx[c] / channels;
        }
        for (int p = 0; p < pixels; p++)
            for (int c = 0; c < channels; c++) {
                const size_t i = ((size_t)n * pixels + p) * channels + c;
                const double v = x[i], ref = v + bias[c] + gain[c] * v * (gx[c] / (mean + 1e-6));
                worst = fmax(worst, fabs(ref - y[i]));
            }
    }
    char name[128];
    snprintf(name, sizeof name, "cpu_grn matches a double reference (%d x %d pixels x %d channels)",
             batch, pixels, channels);
    check(name, worst < 2e-6, worst);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    memcpy(y1, x, count * sizeof(float));
    cpu_grn(y1, nx, batch, (size_t)pixels, channels, gain, bias);
    omp_set_num_threads(threads);
    snprintf(name, sizeof name, "cpu_grn on one thread gives the same bits (%d channels)", channels);
    check(name, memcmp(y, y1, count * sizeof(float)) == 0, 0);
    free(x);
    free(y);
    free(y1);
    free(nx);
    free(gain);
    free(bias);
    free(gx);
}

static void test_grn(void) {
    test_grn_shape(3, 7 * 5, 36);    /* a partial chunk */
    test_grn_shape(2, 56 * 56, 384); /* convnextv2_tiny's first stage */
    test_grn_shape(1, 1, 4);         /* one pixel, fewer channels than a chunk */
}

static void test_depthwise(void) {
    enum { N = 2, H = 9, W = 6, C = 5 };
    unsigned seed = 2;
    static float in[N * H * W * C], out[N * H * W * C], weight[49 * C], bias[C];
    for (int i = 0; i < N * H * W * C; i++)
        in[i] = uniform(&seed);
    for (int i = 0; i < 49 * C; i++)
        weight[i] = uniform(&seed);
    for (int c = 0; c < C; c++)
        bias[c] = uniform(&seed);
    cpu_depthwise_conv7(out, in, weight, bias, N, H, W, C);
    double worst = 0;
    for (int n = 0; n < N; n++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++) {
                    double ref = bias[c];
                    for (int ky = 0; ky < 7; ky++)
                        for (int kx = 0; kx < 7; kx++) {
                            int iy = y + ky - 3, ix = x + kx - 3;
                            if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                ref += (double)in[((n * H + iy) * W + ix) * C + c] * weight[(ky * 7 + kx) * C + c];
                        }
                    worst = fmax(worst, fabs(ref - out[((n * H + y) * W + x) * C + c]));
                }
    check("cpu_depthwise_conv7 matches a direct convolution (odd sizes, borders)", worst < 1e-5, worst);
}

static void test_patches(void) {
    enum { N = 1, H = 5, W = 6, C = 2, K = 2 }; /* 5 rows: the last is dropped, as torch floors */
    float in[N * H * W * C], patches[N * (H / K) * (W / K) * K * K * C];
    for (int i = 0; i < N * H * W * C; i++)
        in[i] = (float)i;
    cpu_gather_patches(patches, in, N, H, W, C, K);
    int ok = 1;
    for (int oy = 0; oy < H / K; oy++)
        for (int ox = 0; ox < W / K; ox++)
            for (int ky = 0; ky < K; ky++)
                for (int kx = 0; kx < K; kx++)
                    for (int c = 0; c < C; c++) {
                        float got = patches[(((oy * (W / K) + ox) * K + ky) * K + kx) * C + c];
                        ok &= got == in[((oy * K + ky) * W + ox * K + kx) * C + c];
                    }
    check("cpu_gather_patches lays patches out as [ky, kx, c]", ok, 0);
}

static void test_top_k(void) {
    const float logits[6] = {1.0f, 3.0f, 3.0f, -2.0f, 0.5f, 2.0f};
    cnx_prediction top[6];
    int ok = cnx_top_k(logits, 6, 6, top) == CNX_OK;
    const int order[6] = {1, 2, 5, 0, 4, 3}; /* ties go to the lower index */
    double total = 0;
    for (int i = 0; i < 6; i++) {
        ok &= top[i].class_index == order[i];
        total += top[i].probability;
    }
    check("cnx_top_k orders by probability, ties to the lower index", ok, 0);
    check("softmax sums to 1", fabs(total - 1.0) < 1e-6, total - 1.0);
    const float huge[3] = {1000.0f, 999.0f, -1000.0f};
    ok = cnx_top_k(huge, 3, 2, top) == CNX_OK && top[0].class_index == 0 &&
         fabs(top[0].probability - 1.0 / (1.0 + exp(-1.0))) < 1e-6;
    check("softmax is stable for large logits", ok, top[0].probability);
    check("cnx_top_k refuses k > classes", cnx_top_k(logits, 6, 7, top) == CNX_ERROR_INVALID_ARGUMENT, 0);
    const float bad[2] = {NAN, 1.0f};
    check("cnx_top_k refuses NaN logits", cnx_top_k(bad, 2, 1, top) == CNX_ERROR_INVALID_ARGUMENT, 0);
}

int main(void) {
    test_erf();
    test_layernorm();
    test_layernorm_eps();
    test_grn();
    test_depthwise();
    test_patches();
    test_top_k();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
