/* CPU ConvNeXt (V1 and V2) forward. Activations stay NHWC so every pointwise
 * layer is a single sgemm over batch*height*width rows. At creation the
 * LayerNorm affines are folded into the Linear or conv that follows them, and
 * layer scale (where the model has one) into the second Linear, so a block
 * is: depthwise conv, normalize, GEMM + bias + GELU, [GRN,] GEMM accumulated
 * onto the residual. */
#include "cpu_backend.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"
#include "error.h"
#include "layernorm_folding.h"

typedef struct {
    float *dw_weight; /* [7, 7, C] */
    const float *dw_bias;
    float *fc1_weight; /* [4C, C], LayerNorm gain folded in */
    float *fc1_bias;   /* [4C], LayerNorm bias folded in */
    const float *grn_weight; /* [4C] (the weights' own arrays), NULL: no GRN (V1) */
    const float *grn_bias;   /* [4C] */
    float *fc2_weight; /* [C, 4C], layer scale (if any) folded in */
    float *fc2_bias;   /* [C], layer scale (if any) folded in */
} cpu_block;

typedef struct {
    float *weight; /* [C, k, k, C_in] (patch order), LayerNorm folded in for downsampling */
    float *bias;
} cpu_patch_conv;

struct cpu_backend {
    const cnx_convnext_weights *weights;
    cpu_patch_conv stem;
    cpu_patch_conv downsample[CNX_MAX_STAGES];
    cpu_block *blocks[CNX_MAX_STAGES];
    float *head_weight; /* [classes, C_last], head LayerNorm folded in */
    float *head_bias;

    int max_batch;
    int has_grn;               /* some block has GRN (V2) */
    size_t planned_pixels;     /* input height * width the buffers fit */
    float *input_nhwc;         /* [n, H, W, 3] */
    float *patches;            /* im2col rows for the stem and downsampling */
    float *residual;           /* x: [n, h, w, C] */
    float *normalized;         /* depthwise conv output, normalized */
    float *hidden;             /* [n, h, w, 4C] */
    float *grn_scale;          /* [n, 4 * widest C]: GRN's Nx (V2 only, else NULL) */
    float *pooled;             /* [n, C_last] */
};

/* out[rows, cols] = a[rows, inner] . b[cols, inner]^T + beta * out */
static void gemm_abt(float *out, const float *a, const float *b, size_t rows,
                     int cols, int inner, float beta) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, cols, inner,
                1.0f, a, inner, b, inner, beta, out, cols);
}

/* A conv [out, in, k, k] in the patch order [out, k, k, in], with an
 * optional preceding LayerNorm folded in (layernorm_folding.h). */
static cnx_status make_patch_conv(cpu_patch_conv *conv, const float *weight,
                                  const float *bias, int out_ch, int in_ch, int k,
                                  const float *norm_gain, const float *norm_bias) {
    conv->weight = malloc(sizeof(float) * out_ch * (size_t)k * k * in_ch);
    conv->bias = malloc(sizeof(float) * out_ch);
    if (!conv->weight || !conv->bias)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory for the CPU weights");
    cnx_fold_layernorm_into_conv(conv->weight, conv->bias, weight, bias, out_ch, in_ch, k,
                                 norm_gain, norm_bias);
    return CNX_OK;
}

/* Linear [out, in] with a preceding LayerNorm folded in (see above). */
static cnx_status make_normalized_linear(float **weight_out, float **bias_out,
                                         const float *weight, const float *bias,
                                         int out_features, int in_features,
                                         const float *norm_gain, const float *norm_bias) {
    cpu_patch_conv as_conv;
    cnx_status status = make_patch_conv(&as_conv, weight, bias, out_features,
                                        in_features, 1, norm_gain, norm_bias);
    *weight_out = as_conv.weight;
    *bias_out = as_conv.bias;
    return status;
}

static cnx_status make_block(cpu_block *block, const cnx_block_weights *w, int channels) {
    const int hidden = 4 * channels;
    block->dw_bias = w->dw_bias;
    block->grn_weight = w->grn_weight;
    block->grn_bias = w->grn_bias;
    block->dw_weight = malloc(sizeof(float) * 49 * channels);
    block->fc2_weight = malloc(sizeof(float) * channels * hidden);
    block->fc2_bias = malloc(sizeof(float) * channels);
    if (!block->dw_weight || !block->fc2_weight || !block->fc2_bias)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory for the CPU weights");
    for (int c = 0; c < channels; c++)
        for (int t = 0; t < 49; t++)
            block->dw_weight[(size_t)t * channels + c] = w->dw_weight[(size_t)c * 49 + t];
    /* No layer scale (V2): a scale of 1, the weights as they are. */
    for (int o = 0; o < channels; o++) {
        const float scale = w->layer_scale ? w->layer_scale[o] : 1.0f;
        for (int i = 0; i < hidden; i++)
            block->fc2_weight[(size_t)o * hidden + i] = w->fc2_weight[(size_t)o * hidden + i] * scale;
        block->fc2_bias[o] = w->fc2_bias[o] * scale;
    }
    return make_normalized_linear(&block->fc1_weight, &block->fc1_bias, w->fc1_weight,
                                  w->fc1_bias, hidden, channels, w->norm_weight, w->norm_bias);
}

/* Activation sizes for n images of `pixels` input pixels, per stage. */
static size_t stage_floats(const cnx_convnext_weights *w, size_t pixels, int widen) {
    size_t most = 0;
    size_t stage_pixels = pixels / 16;
    for (int s = 0; s < w->num_stages; s++) {
        size_t floats = stage_pixels * (size_t)w->widths[s] * widen;
        if (floats > most)
            most = floats;
        stage_pixels /= 4;
    }
    return most;
}

static void free_activations(cpu_backend *b) {
    free(b->input_nhwc);
    free(b->patches);
    free(b->residual);
    free(b->normalized);
    free(b->hidden);
    free(b->grn_scale);
    free(b->pooled);
    b->input_nhwc = b->patches = b->residual = b->normalized = b->hidden = b->pooled = NULL;
    b->grn_scale = NULL;
    b->planned_pixels = 0; /* a failed grow must not leave a capacity behind */
}

/* Buffers for max_batch images of `pixels` pixels each. */
static cnx_status allocate_activations(cpu_backend *b, size_t pixels) {
    const cnx_convnext_weights *w = b->weights;
    const size_t n = (size_t)b->max_batch;
    free_activations(b);
    const size_t x_floats = n * stage_floats(w, pixels, 1);
    b->input_nhwc = malloc(sizeof(float) * n * pixels * 3);
    /* Patches: the stem's (48 per output pixel = the input's size) or a
     * downsampling's (4 * C_prev per output pixel = the previous stage's size). */
    b->patches = malloc(sizeof(float) * (x_floats > n * pixels * 3 ? x_floats : n * pixels * 3));
    b->residual = malloc(sizeof(float) * x_floats);
    b->normalized = malloc(sizeof(float) * x_floats);
    b->hidden = malloc(sizeof(float) * n * stage_floats(w, pixels, 4));
    b->pooled = malloc(sizeof(float) * n * w->widths[w->num_stages - 1]);
    int widest = 0;
    for (int s = 0; s < w->num_stages; s++)
        widest = w->widths[s] > widest ? w->widths[s] : widest;
    if (b->has_grn)
        b->grn_scale = malloc(sizeof(float) * n * 4 * (size_t)widest);
    if (!b->input_nhwc || !b->patches || !b->residual || !b->normalized || !b->hidden ||
        !b->pooled || (b->has_grn && !b->grn_scale)) {
        free_activations(b);
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY,
                        "out of memory for CPU activations (batch %d, %zu pixels per image)",
                        b->max_batch, pixels);
    }
    b->planned_pixels = pixels;
    return CNX_OK;
}

void cpu_backend_destroy(cpu_backend *b) {
    if (!b)
        return;
    free(b->stem.weight);
    free(b->stem.bias);
    for (int s = 0; s < CNX_MAX_STAGES; s++) {
        free(b->downsample[s].weight);
        free(b->downsample[s].bias);
        if (b->blocks[s]) {
            for (int j = 0; j < b->weights->depths[s]; j++) {
                cpu_block *block = &b->blocks[s][j];
                free(block->dw_weight);
                free(block->fc1_weight);
                free(block->fc1_bias);
                free(block->fc2_weight);
                free(block->fc2_bias);
            }
            free(b->blocks[s]);
        }
    }
    free(b->head_weight);
    free(b->head_bias);
    free_activations(b);
    free(b);
}

int cpu_backend_thread_count(int requested) {
    return requested > 0 ? requested : omp_get_max_threads();
}

cnx_status cpu_backend_create(const cnx_convnext_weights *w, int max_batch,
                              int input_size, int num_threads, cpu_backend **out) {
    *out = NULL;
    int has_grn;
    CNX_TRY(cnx_convnext_weights_check(w, &has_grn));
    cpu_backend *b = calloc(1, sizeof *b);
    if (!b)
        return cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory");
    b->weights = w;
    b->has_grn = has_grn;
    b->max_batch = max_batch;
    if (num_threads > 0) {
        /* Both pools are process-wide: OpenBLAS for GEMMs, OpenMP for the rest. */
        openblas_set_num_threads(num_threads);
        omp_set_num_threads(num_threads);
    }
    cnx_status status = make_patch_conv(&b->stem, w->stem_weight, w->stem_bias,
                                        w->widths[0], 3, 4, NULL, NULL);
    for (int s = 1; s < w->num_stages && status == CNX_OK; s++) {
        const cnx_downsample_weights *d = &w->downsample[s];
        status = make_patch_conv(&b->downsample[s], d->conv_weight, d->conv_bias,
                                 w->widths[s], w->widths[s - 1], 2, d->norm_weight, d->norm_bias);
    }
    for (int s = 0; s < w->num_stages && status == CNX_OK; s++) {
        b->blocks[s] = calloc((size_t)w->depths[s], sizeof(cpu_block));
        if (!b->blocks[s]) {
            status = cnx_fail(CNX_ERROR_OUT_OF_MEMORY, "out of memory for the CPU weights");
            break;
        }
        for (int j = 0; j < w->depths[s] && status == CNX_OK; j++)
            status = make_block(&b->blocks[s][j], &w->blocks[s][j], w->widths[s]);
    }
    if (status == CNX_OK)
        status = make_normalized_linear(&b->head_weight, &b->head_bias, w->head_weight,
                                        w->head_bias, w->num_classes, w->widths[w->num_stages - 1],
                                        w->head_norm_weight, w->head_norm_bias);
    if (status == CNX_OK)
        status = allocate_activations(b, (size_t)input_size * input_size);
    if (status != CNX_OK) {
        cpu_backend_destroy(b);
        return status;
    }
    *out = b;
    return CNX_OK;
}

static void run_block(cpu_backend *b, const cpu_block *block, int n, int h, int w, int channels) {
    const size_t rows = (size_t)n * h * w;
    const int hidden = 4 * channels;
    cpu_depthwise_conv7(b->normalized, b->residual, block->dw_weight, block->dw_bias, n, h, w, channels);
    cpu_layernorm(b->normalized, rows, channels, NULL, NULL, CNX_LAYERNORM_EPS);
    gemm_abt(b->hidden, b->normalized, block->fc1_weight, rows, hidden, channels, 0.0f);
    cpu_bias_gelu(b->hidden, rows, hidden, block->fc1_bias);
    if (block->grn_weight)
        cpu_grn(b->hidden, b->grn_scale, n, (size_t)h * w, hidden, block->grn_weight, block->grn_bias);
    cpu_add_bias(b->residual, rows, channels, block->fc2_bias);
    gemm_abt(b->residual, b->hidden, block->fc2_weight, rows, channels, hidden, 1.0f);
}

/* A k x k stride-k conv: gather patches, then one GEMM into the residual. */
static void run_patch_conv(cpu_backend *b, const cpu_patch_conv *conv, const float *in,
                           int n, int h, int w, int in_ch, int out_ch, int k) {
    const size_t rows = (size_t)n * (h / k) * (w / k);
    cpu_gather_patches(b->patches, in, n, h, w, in_ch, k);
    gemm_abt(b->residual, b->patches, conv->weight, rows, out_ch, k * k * in_ch, 0.0f);
    cpu_add_bias(b->residual, rows, out_ch, conv->bias);
}

cnx_status cpu_backend_forward(cpu_backend *b, const float *input, int n, int height,
                               int width, float *logits) {
    const cnx_convnext_weights *w = b->weights;
    if ((size_t)height * width > b->planned_pixels) {
        /* A larger input than planned: grow once, off the steady-state path. */
        cnx_status status = allocate_activations(b, (size_t)height * width);
        if (status != CNX_OK)
            return status;
    }
    cpu_nchw_to_nhwc(b->input_nhwc, input, n, 3, height, width);
    run_patch_conv(b, &b->stem, b->input_nhwc, n, height, width, 3, w->widths[0], 4);
    int h = height / 4, wd = width / 4;
    cpu_layernorm(b->residual, (size_t)n * h * wd, w->widths[0], w->stem_norm_weight, w->stem_norm_bias,
                  CNX_LAYERNORM_EPS);
    for (int s = 0; s < w->num_stages; s++) {
        if (s > 0) {
            cpu_layernorm(b->residual, (size_t)n * h * wd, w->widths[s - 1], NULL, NULL, CNX_LAYERNORM_EPS);
            run_patch_conv(b, &b->downsample[s], b->residual, n, h, wd, w->widths[s - 1], w->widths[s], 2);
            h /= 2;
            wd /= 2;
        }
        for (int j = 0; j < w->depths[s]; j++)
            run_block(b, &b->blocks[s][j], n, h, wd, w->widths[s]);
    }
    const int last = w->widths[w->num_stages - 1];
    cpu_global_average_pool(b->pooled, b->residual, n, h * wd, last);
    cpu_layernorm(b->pooled, (size_t)n, last, NULL, NULL, w->head_norm_eps);
    gemm_abt(logits, b->pooled, b->head_weight, (size_t)n, w->num_classes, last, 0.0f);
    cpu_add_bias(logits, (size_t)n, w->num_classes, b->head_bias);
    return CNX_OK;
}
