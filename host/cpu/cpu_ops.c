/* CPU loops for ConvNeXt. Channels are innermost (NHWC) so that the inner
 * loops run over contiguous memory and the compiler can vectorize them;
 * OpenMP splits the outer loops across cores. */
#include "cpu_ops.h"

#include <math.h>
#include <string.h>

/* The loops that are compute-bound get an AVX2+FMA clone next to the baseline
 * x86-64 one; the loader picks by CPU at run time (GCC function multiversioning),
 * so one binary runs everywhere and uses 8-wide vectors where they exist. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CNX_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CNX_VECTOR_CLONES
#endif

CNX_VECTOR_CLONES
void cpu_layernorm(float *x, size_t pixels, int channels, const float *gain,
                   const float *bias, float eps) {
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++) {
        float *row = x + p * (size_t)channels;
        /* Two passes: the mean first keeps the variance accurate in fp32. */
        float sum = 0.0f;
        for (int c = 0; c < channels; c++)
            sum += row[c];
        const float mean = sum / (float)channels;
        float squares = 0.0f;
        for (int c = 0; c < channels; c++) {
            const float d = row[c] - mean;
            squares += d * d;
        }
        const float inv_std = 1.0f / sqrtf(squares / (float)channels + eps);
        if (gain) {
            for (int c = 0; c < channels; c++)
                row[c] = (row[c] - mean) * inv_std * gain[c] + bias[c];
        } else {
            for (int c = 0; c < channels; c++)
                row[c] = (row[c] - mean) * inv_std;
        }
    }
}

CNX_VECTOR_CLONES
void cpu_depthwise_conv7(float *out, const float *in, const float *weight,
                         const float *bias, int batch, int height, int width,
                         int channels) {
    const size_t row_stride = (size_t)width * channels;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < batch; n++) {
        for (int y = 0; y < height; y++) {
            const float *image = in + (size_t)n * height * row_stride;
            float *out_row = out + ((size_t)n * height + y) * row_stride;
            for (int x = 0; x < width; x++)
                memcpy(out_row + (size_t)x * channels, bias, sizeof(float) * channels);
            for (int ky = 0; ky < 7; ky++) {
                const int iy = y + ky - 3;
                if (iy < 0 || iy >= height)
                    continue;
                const float *in_row = image + (size_t)iy * row_stride;
                for (int kx = 0; kx < 7; kx++) {
                    const float *w = weight + (size_t)(ky * 7 + kx) * channels;
                    /* Output columns whose input column x + kx - 3 is inside. */
                    const int x_begin = kx < 3 ? 3 - kx : 0;
                    const int x_end = width + 3 - kx < width ? width + 3 - kx : width;
                    for (int x = x_begin; x < x_end; x++) {
                        float *restrict o = out_row + (size_t)x * channels;
                        const float *restrict i = in_row + (size_t)(x + kx - 3) * channels;
                        for (int c = 0; c < channels; c++)
                            o[c] += i[c] * w[c];
                    }
                }
            }
        }
    }
}

/* A rational approximation of erf on [-4, 4] (erf is +-1 to fp32 precision
 * outside), odd numerator over even denominator; the same published
 * coefficients Eigen and XLA use for float. No branches or libm calls, so the
 * GELU loop vectorizes; libm's erff would make GELU cost more than the GEMMs. */
float cpu_erf(float x) {
    /* Comparisons, not fminf/fmaxf: those are libm calls unless NaNs are
     * ruled out, and a call in the loop stops it from vectorizing. */
    x = x < -4.0f ? -4.0f : x;
    x = x > 4.0f ? 4.0f : x;
    const float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    p = p * x;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return p / q;
}

CNX_VECTOR_CLONES
void cpu_bias_gelu(float *x, size_t rows, int channels, const float *bias) {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        float *restrict row = x + r * (size_t)channels;
        for (int c = 0; c < channels; c++) {
            const float v = row[c] + bias[c];
            row[c] = 0.5f * v * (1.0f + cpu_erf(v * 0.70710678118654752f));
        }
    }
}

/* GRN's sums of squares run over GRN_CHUNK channels of one image at a time:
 * one task per (image, chunk), every pixel in order, so that the sums do not
 * depend on the thread count; 16 doubles are four AVX2 registers. */
enum { GRN_CHUNK = 16 };

static inline void grn_sum_squares(double *restrict sums, const float *column, size_t pixels,
                            int stride, int width) {
    if (width == GRN_CHUNK) { /* a fixed trip count: the loop vectorizes */
        for (int c = 0; c < GRN_CHUNK; c++)
            sums[c] = 0.0;
        for (size_t p = 0; p < pixels; p++) {
            const float *restrict row = column + p * (size_t)stride;
            for (int c = 0; c < GRN_CHUNK; c++)
                sums[c] += (double)row[c] * (double)row[c];
        }
        return;
    }
    for (int c = 0; c < width; c++)
        sums[c] = 0.0;
    for (size_t p = 0; p < pixels; p++) {
        const float *restrict row = column + p * (size_t)stride;
        for (int c = 0; c < width; c++)
            sums[c] += (double)row[c] * (double)row[c];
    }
}

CNX_VECTOR_CLONES
void cpu_grn(float *x, float *nx, int batch, size_t pixels, int channels,
             const float *gain, const float *bias) {
    const int chunks = (channels + GRN_CHUNK - 1) / GRN_CHUNK;
    /* Gx: the L2 norm of each channel over the image's pixels. */
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < batch; n++) {
        for (int k = 0; k < chunks; k++) {
            const int c0 = k * GRN_CHUNK;
            const int width = channels - c0 < GRN_CHUNK ? channels - c0 : GRN_CHUNK;
            double sums[GRN_CHUNK];
            grn_sum_squares(sums, x + (size_t)n * pixels * channels + c0, pixels, channels, width);
            for (int c = 0; c < width; c++)
                nx[(size_t)n * channels + c0 + c] = (float)sqrt(sums[c]);
        }
    }
    /* Nx = Gx / (mean of Gx + eps), in fp32 as torch computes it from fp32 Gx. */
    for (int n = 0; n < batch; n++) {
        float *restrict g = nx + (size_t)n * channels;
        double total = 0.0;
        for (int c = 0; c < channels; c++)
            total += g[c];
        const float denominator = (float)(total / channels) + CNX_GRN_EPS;
        for (int c = 0; c < channels; c++)
            g[c] = g[c] / denominator;
    }
    const size_t rows = (size_t)batch * pixels;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        float *restrict row = x + r * (size_t)channels;
        const float *restrict scale = nx + (r / pixels) * (size_t)channels;
        for (int c = 0; c < channels; c++) {
            const float v = row[c];
            row[c] = v + (bias[c] + gain[c] * (v * scale[c]));
        }
    }
}

void cpu_add_bias(float *x, size_t rows, int channels, const float *bias) {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        float *restrict row = x + r * (size_t)channels;
        for (int c = 0; c < channels; c++)
            row[c] += bias[c];
    }
}

void cpu_gather_patches(float *patches, const float *in, int batch, int height,
                        int width, int channels, int k) {
    const int out_h = height / k, out_w = width / k;
    const size_t run = (size_t)k * channels; /* k pixels of one input row */
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < batch; n++) {
        for (int oy = 0; oy < out_h; oy++) {
            for (int ox = 0; ox < out_w; ox++) {
                float *dst = patches + (((size_t)n * out_h + oy) * out_w + ox) * k * run;
                for (int ky = 0; ky < k; ky++) {
                    const float *src = in + (((size_t)n * height + oy * k + ky) * width + ox * k) * channels;
                    memcpy(dst + ky * run, src, sizeof(float) * run);
                }
            }
        }
    }
}

void cpu_nchw_to_nhwc(float *out, const float *in, int batch, int channels,
                      int height, int width) {
    const size_t plane = (size_t)height * width;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < batch; n++)
        for (size_t p = 0; p < plane; p++)
            for (int c = 0; c < channels; c++)
                out[((size_t)n * plane + p) * channels + c] = in[((size_t)n * channels + c) * plane + p];
}

void cpu_global_average_pool(float *out, const float *in, int batch,
                             int pixels, int channels) {
    for (int n = 0; n < batch; n++) {
        float *restrict o = out + (size_t)n * channels;
        memset(o, 0, sizeof(float) * channels);
        for (int p = 0; p < pixels; p++) {
            const float *restrict i = in + ((size_t)n * pixels + p) * channels;
            for (int c = 0; c < channels; c++)
                o[c] += i[c];
        }
        for (int c = 0; c < channels; c++)
            o[c] /= (float)pixels;
    }
}
