/* The ConvNeXt loader on generated files.
 *   test_convnext_weights load WORK_DIR       both namings, every dtype, metadata
 *   test_convnext_weights malformed WORK_DIR  every way a file can be wrong */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convnext_weights.h"
#include "safetensors_writer.h"
#include "test_check.h"

static char dir[2048];

/* ------------------------------------------------------------- helpers */

/* Where the loader must have put a parameter, by the test's own reckoning. */
static const float *loaded_array(const cnx_convnext_weights *w, const writer_tensor *t) {
    const cnx_downsample_weights *d = t->stage >= 1 ? &w->downsample[t->stage] : NULL;
    const cnx_block_weights *b = t->block >= 0 ? &w->blocks[t->stage][t->block] : NULL;
    switch (t->role) {
    case CNX_ROLE_STEM_CONV_WEIGHT: return w->stem_weight;
    case CNX_ROLE_STEM_CONV_BIAS: return w->stem_bias;
    case CNX_ROLE_STEM_NORM_WEIGHT: return w->stem_norm_weight;
    case CNX_ROLE_STEM_NORM_BIAS: return w->stem_norm_bias;
    case CNX_ROLE_HEAD_NORM_WEIGHT: return w->head_norm_weight;
    case CNX_ROLE_HEAD_NORM_BIAS: return w->head_norm_bias;
    case CNX_ROLE_HEAD_FC_WEIGHT: return w->head_weight;
    case CNX_ROLE_HEAD_FC_BIAS: return w->head_bias;
    case CNX_ROLE_DOWN_NORM_WEIGHT: return d->norm_weight;
    case CNX_ROLE_DOWN_NORM_BIAS: return d->norm_bias;
    case CNX_ROLE_DOWN_CONV_WEIGHT: return d->conv_weight;
    case CNX_ROLE_DOWN_CONV_BIAS: return d->conv_bias;
    case CNX_ROLE_BLOCK_DW_WEIGHT: return b->dw_weight;
    case CNX_ROLE_BLOCK_DW_BIAS: return b->dw_bias;
    case CNX_ROLE_BLOCK_NORM_WEIGHT: return b->norm_weight;
    case CNX_ROLE_BLOCK_NORM_BIAS: return b->norm_bias;
    case CNX_ROLE_BLOCK_FC1_WEIGHT: return b->fc1_weight;
    case CNX_ROLE_BLOCK_FC1_BIAS: return b->fc1_bias;
    case CNX_ROLE_BLOCK_GRN_WEIGHT: return b->grn_weight;
    case CNX_ROLE_BLOCK_GRN_BIAS: return b->grn_bias;
    case CNX_ROLE_BLOCK_FC2_WEIGHT: return b->fc2_weight;
    case CNX_ROLE_BLOCK_FC2_BIAS: return b->fc2_bias;
    case CNX_ROLE_BLOCK_LAYER_SCALE: return b->layer_scale;
    case CNX_ROLE_COUNT: break;
    }
    return NULL;
}

/* Writes m, loads it, and checks structure and every value. */
static void check_round_trip(const char *label, const writer_model *m, const convnext_spec *spec,
                             const char *want_dtype, const char *want_architecture) {
    char path[4096], name[128];
    snprintf(name, sizeof name, "%s.safetensors", label);
    test_path(path, sizeof path, dir, name);
    CHECK(writer_write(m, path) == 0, "%s: write", label);

    cnx_convnext_weights w;
    cnx_status status = cnx_convnext_weights_load(path, &w);
    CHECK(status == CNX_OK, "%s: load: %s", label, cnx_last_error());
    if (status != CNX_OK) return;

    CHECK(w.num_stages == spec->num_stages, "%s: %d stages", label, w.num_stages);
    int64_t parameters = 0;
    for (size_t i = 0; i < m->count; i++) parameters += m->tensors[i].numel;
    CHECK(w.num_parameters == parameters, "%s: %lld parameters, want %lld", label,
          (long long)w.num_parameters, (long long)parameters);
    for (int s = 0; s < spec->num_stages; s++)
        CHECK(w.depths[s] == spec->depths[s] && w.widths[s] == spec->widths[s],
              "%s: stage %d depth %d width %d", label, s, w.depths[s], w.widths[s]);
    CHECK(w.num_classes == spec->num_classes, "%s: %d classes", label, w.num_classes);
    CHECK(strcmp(w.architecture, want_architecture) == 0, "%s: architecture %s", label,
          w.architecture);
    CHECK(strcmp(w.weights_dtype, want_dtype) == 0, "%s: dtype %s", label, w.weights_dtype);
    CHECK(strcmp(w.naming, cnx_naming_string(spec->naming)) == 0, "%s: naming %s", label,
          w.naming);
    CHECK(w.has_grn == spec->grn && w.has_layer_scale == !spec->grn,
          "%s: has_grn %d has_layer_scale %d", label, w.has_grn, w.has_layer_scale);
    CHECK(w.head_norm_eps == 1e-6f, "%s: head LayerNorm eps %g", label, (double)w.head_norm_eps);
    CHECK(w.downsample[0].conv_weight == NULL, "%s: stage 0 has no downsample", label);

    int wrong = 0;
    const float *arena_end = w.arena + w.num_parameters;
    for (size_t i = 0; i < m->count; i++) {
        const writer_tensor *t = &m->tensors[i];
        const float *got = loaded_array(&w, t);
        if (!got || got < w.arena || got + t->numel > arena_end) {
            wrong++;
            fprintf(stderr, "%s: %s not in the arena\n", label, t->name);
            continue;
        }
        if (memcmp(got, t->values, (size_t)t->numel * sizeof(float)) != 0) {
            wrong++;
            fprintf(stderr, "%s: %s values differ\n", label, t->name);
        }
    }
    CHECK(wrong == 0, "%s: %d tensors loaded wrong", label, wrong);
    cnx_convnext_weights_free(&w);
    CHECK(w.arena == NULL && w.blocks[0] == NULL, "%s: free zeroes", label);
}

static void load_spec(const char *label, const convnext_spec *spec, const char *architecture) {
    writer_model m;
    writer_build_convnext(&m, spec);
    check_round_trip(label, &m, spec, spec->dtype, architecture);
    writer_free(&m);
}

/* --------------------------------------------------------------- load */

static void test_namings_and_dtypes(void) {
    const char *dtypes[] = {"F32", "F16", "BF16"};
    for (int naming = 0; naming < CNX_NAMING_COUNT; naming++) {
        for (int d = 0; d < 3; d++) {
            char label[64];
            snprintf(label, sizeof label, "small_%s_%s", cnx_naming_string((cnx_naming)naming),
                     dtypes[d]);
            convnext_spec spec = writer_small_spec((cnx_naming)naming, dtypes[d]);
            load_spec(label, &spec, "convnext");
        }
    }
    /* ConvNeXt V2: GRN in every block, no layer scale. */
    for (int naming = CNX_NAMING_TIMM; naming <= CNX_NAMING_TRANSFORMERS; naming++) {
        char label[64];
        snprintf(label, sizeof label, "small_v2_%s", cnx_naming_string((cnx_naming)naming));
        convnext_spec spec = writer_small_spec((cnx_naming)naming, "F32");
        spec.grn = 1;
        load_spec(label, &spec, "convnextv2");
    }
    convnext_spec spec = writer_small_spec(CNX_NAMING_TIMM, "F16");
    spec.conv_mlp = 1;
    load_spec("small_timm_conv_mlp", &spec, "convnext");

    spec = writer_small_spec(CNX_NAMING_TORCHVISION, "F32");
    spec.prefix = "module.";
    load_spec("small_module_prefix", &spec, "convnext");
    spec = writer_small_spec(CNX_NAMING_TIMM, "BF16");
    spec.prefix = "model.";
    load_spec("small_model_prefix", &spec, "convnext");

    /* Fewer stages, uneven widths, one class. */
    convnext_spec three = {CNX_NAMING_TORCHVISION, 3, {2, 1, 3}, {4, 12, 20}, 1, "F32", 0, 0, ""};
    load_spec("three_stages", &three, "convnext");
    convnext_spec one = {CNX_NAMING_TIMM, 1, {2}, {6}, 3, "F16", 0, 0, ""};
    load_spec("one_stage", &one, "convnext");
}

static void test_file_order_and_mixed_dtypes(void) {
    convnext_spec spec = writer_small_spec(CNX_NAMING_TORCHVISION, "F32");
    writer_model m;
    writer_build_convnext(&m, &spec);
    writer_reverse(&m);
    check_round_trip("reversed_order", &m, &spec, "F32", "convnext");
    for (size_t i = 0; i < m.count; i += 3) snprintf(m.tensors[i].dtype, 8, "BF16");
    for (size_t i = 1; i < m.count; i += 3) snprintf(m.tensors[i].dtype, 8, "F16");
    check_round_trip("mixed_dtypes", &m, &spec, "mixed", "convnext");
    writer_free(&m);
}

/* A known size, named from its shapes; the metadata's name does not matter. */
static void test_architecture_names(void) {
    convnext_spec atto = {CNX_NAMING_TIMM, 4, {2, 2, 6, 2}, {40, 80, 160, 320}, 1000, "BF16",
                          1, 0, ""};
    writer_model m;
    writer_build_convnext(&m, &atto);
    snprintf(m.metadata, sizeof m.metadata, "{\"architecture\":\"convnext_huge\"}");
    check_round_trip("atto_timm", &m, &atto, "BF16", "convnext_atto");
    writer_free(&m);

    convnext_spec femto = {CNX_NAMING_TORCHVISION, 4, {2, 2, 6, 2}, {48, 96, 192, 384}, 10,
                           "BF16", 0, 0, ""};
    load_spec("femto_torchvision", &femto, "convnext_femto");
    /* Tiny's depths with widths that do not double: unnamed. */
    convnext_spec odd = {CNX_NAMING_TORCHVISION, 4, {3, 3, 9, 3}, {8, 16, 32, 48}, 10, "BF16",
                         0, 0, ""};
    load_spec("tiny_depths_odd_widths", &odd, "convnext");
    /* V2 sizes are named apart from V1's. */
    convnext_spec v2_atto = {CNX_NAMING_TRANSFORMERS, 4, {2, 2, 6, 2}, {40, 80, 160, 320}, 7,
                             "F16", 0, 1, ""};
    load_spec("atto_v2_transformers", &v2_atto, "convnextv2_atto");
}

static cnx_status load_with_metadata(const char *label, const char *metadata,
                                     cnx_convnext_weights *w, char *path, size_t path_size) {
    convnext_spec spec = writer_small_spec(CNX_NAMING_TORCHVISION, "F32");
    writer_model m;
    writer_build_convnext(&m, &spec);
    snprintf(m.metadata, sizeof m.metadata, "%s", metadata);
    char name[128];
    snprintf(name, sizeof name, "%s.safetensors", label);
    test_path(path, path_size, dir, name);
    writer_write(&m, path);
    writer_free(&m);
    return cnx_convnext_weights_load(path, w);
}

static int same_preprocess(const cnx_preprocess *a, const cnx_preprocess *b) {
    return a->resize == b->resize && a->crop == b->crop && a->normalize == b->normalize &&
           memcmp(a->mean, b->mean, sizeof a->mean) == 0 &&
           memcmp(a->std, b->std, sizeof a->std) == 0 && a->interpolation == b->interpolation &&
           a->crop_mode == b->crop_mode && a->crop_offset == b->crop_offset &&
           a->rescale_factor == b->rescale_factor;
}

static void test_metadata(void) {
    char path[4096];
    cnx_convnext_weights w;
    cnx_preprocess defaults = cnx_default_preprocess();
    CHECK(defaults.resize == 236 && defaults.crop == 224 && defaults.normalize == 1 &&
              defaults.mean[0] == 0.485f && defaults.std[2] == 0.225f,
          "cnx_default_preprocess");

    CHECK(load_with_metadata("metadata_none", "", &w, path, sizeof path) == CNX_OK,
          "no metadata: %s", cnx_last_error());
    CHECK(!w.has_preprocess_metadata && same_preprocess(&w.preprocess, &defaults) &&
              w.preprocess.interpolation == CNX_INTERPOLATION_BILINEAR && w.source[0] == '\0',
          "no metadata gives the defaults");
    cnx_convnext_weights_free(&w);

    CHECK(load_with_metadata("metadata_full",
                             "{\"architecture\":\"convnext_tiny\",\"source\":\"torchvision "
                             "ConvNeXt_Tiny_Weights.IMAGENET1K_V1\",\"interpolation\":"
                             "\"bilinear\",\"resize\":\"232\",\"crop\":\"192\",\"mean\":\"0.5,"
                             "0.25,0.125\",\"std\":\"0.5, 0.75 ,1e0\",\"format\":\"pt\"}",
                             &w, path, sizeof path) == CNX_OK,
          "full metadata: %s", cnx_last_error());
    cnx_preprocess want = {.resize = 232, .crop = 192, .mean = {0.5f, 0.25f, 0.125f},
                           .std = {0.5f, 0.75f, 1.0f}, .normalize = 1};
    CHECK(w.has_preprocess_metadata && same_preprocess(&w.preprocess, &want),
          "full metadata parsed: resize %d crop %d mean %g std %g", w.preprocess.resize,
          w.preprocess.crop, (double)w.preprocess.mean[0], (double)w.preprocess.std[1]);
    CHECK(strcmp(w.source, "torchvision ConvNeXt_Tiny_Weights.IMAGENET1K_V1") == 0,
          "source: %s", w.source);
    CHECK(strcmp(w.architecture, "convnext") == 0, "architecture comes from the shapes");
    cnx_convnext_weights_free(&w);

    /* The converter's exact strings give torch's float32 values. */
    CHECK(load_with_metadata("metadata_imagenet",
                             "{\"mean\":\"0.485,0.456,0.406\",\"std\":\"0.229,0.224,0.225\"}",
                             &w, path, sizeof path) == CNX_OK,
          "ImageNet metadata: %s", cnx_last_error());
    CHECK(w.has_preprocess_metadata && same_preprocess(&w.preprocess, &defaults),
          "ImageNet metadata equals the defaults");
    cnx_convnext_weights_free(&w);

    CHECK(load_with_metadata("metadata_crop_only", "{\"crop\":\"160\"}", &w, path,
                             sizeof path) == CNX_OK,
          "crop only: %s", cnx_last_error());
    want = defaults;
    want.crop = 160;
    CHECK(w.has_preprocess_metadata && same_preprocess(&w.preprocess, &want),
          "missing keys take the defaults");
    cnx_convnext_weights_free(&w);

    /* timm's and Hugging Face's choices. */
    CHECK(load_with_metadata("metadata_choices",
                             "{\"interpolation\":\"bicubic\",\"crop_mode\":\"border\","
                             "\"crop_offset\":\"floor\",\"rescale_factor\":"
                             "\"0.00392156862745098\"}",
                             &w, path, sizeof path) == CNX_OK,
          "choices: %s", cnx_last_error());
    want = defaults;
    want.interpolation = CNX_INTERPOLATION_BICUBIC;
    want.crop_mode = CNX_CROP_MODE_BORDER;
    want.crop_offset = CNX_CROP_OFFSET_FLOOR;
    want.rescale_factor = 1.0 / 255.0;
    CHECK(w.has_preprocess_metadata && same_preprocess(&w.preprocess, &want),
          "choices parsed: interpolation %d crop_mode %d crop_offset %d rescale %.17g",
          (int)w.preprocess.interpolation, (int)w.preprocess.crop_mode,
          (int)w.preprocess.crop_offset, w.preprocess.rescale_factor);
    cnx_convnext_weights_free(&w);

    struct { const char *metadata, *word; cnx_status status; } bad[] = {
        {"{\"resize\":\"abc\"}", "resize", CNX_ERROR_WEIGHTS},
        {"{\"resize\":\"0\"}", "resize", CNX_ERROR_WEIGHTS},
        {"{\"resize\":\"-5\"}", "resize", CNX_ERROR_WEIGHTS},
        {"{\"resize\":\"\"}", "resize", CNX_ERROR_WEIGHTS},
        {"{\"resize\":\"99999999999\"}", "resize", CNX_ERROR_WEIGHTS},
        {"{\"crop\":\"224.0\"}", "crop", CNX_ERROR_WEIGHTS},
        {"{\"crop\":\" 224\"}", "crop", CNX_ERROR_WEIGHTS},
        {"{\"mean\":\"0.5,0.5\"}", "mean", CNX_ERROR_WEIGHTS},
        {"{\"mean\":\"0.5,0.5,0.5,0.5\"}", "mean", CNX_ERROR_WEIGHTS},
        {"{\"mean\":\"a,b,c\"}", "mean", CNX_ERROR_WEIGHTS},
        {"{\"mean\":\"0.5,,0.5\"}", "mean", CNX_ERROR_WEIGHTS},
        {"{\"mean\":\"0.5,nan,0.5\"}", "mean", CNX_ERROR_WEIGHTS},
        {"{\"mean\":\"1e999,0,0\"}", "mean", CNX_ERROR_WEIGHTS},
        {"{\"std\":\"0.2,0,0.2\"}", "std", CNX_ERROR_WEIGHTS},
        {"{\"std\":\"0.2,-0.1,0.2\"}", "std", CNX_ERROR_WEIGHTS},
        {"{\"std\":\"inf,1,1\"}", "std", CNX_ERROR_WEIGHTS},
        {"{\"std\":\"1e-50,1,1\"}", "std", CNX_ERROR_WEIGHTS},
        {"{\"interpolation\":\"cubic\"}", "interpolation", CNX_ERROR_WEIGHTS},
        {"{\"interpolation\":\"nearest\",\"crop\":\"224\"}", "nearest",
         CNX_ERROR_UNSUPPORTED},
        {"{\"crop_mode\":\"centre\"}", "crop_mode", CNX_ERROR_WEIGHTS},
        {"{\"crop_offset\":\"ceil\"}", "crop_offset", CNX_ERROR_WEIGHTS},
        {"{\"rescale_factor\":\"0\"}", "rescale_factor", CNX_ERROR_WEIGHTS},
        {"{\"rescale_factor\":\"-1\"}", "rescale_factor", CNX_ERROR_WEIGHTS},
        {"{\"rescale_factor\":\"1,2,3\"}", "rescale_factor", CNX_ERROR_WEIGHTS},
        {"{\"crop\":224}", "not a string", CNX_ERROR_WEIGHTS},
        {"{\"source\":[\"x\"]}", "not a string", CNX_ERROR_WEIGHTS},
        {"[\"crop\",\"224\"]", "__metadata__", CNX_ERROR_WEIGHTS},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "metadata_bad_%02zu", i);
        cnx_status status = load_with_metadata(label, bad[i].metadata, &w, path, sizeof path);
        CHECK_FAILS(status, bad[i].status, path, bad[i].word, bad[i].metadata);
        CHECK(w.arena == NULL && w.num_stages == 0, "%s: failure leaves weights zeroed", label);
    }
}

/* ---------------------------------------------------------- malformed */

typedef void (*mutation)(writer_model *m);

static void drop_fc1_bias(writer_model *m) { writer_remove(m, "features.5.1.block.3.bias"); }
static void drop_downsample(writer_model *m) { writer_remove(m, "features.4.1.weight"); }
static void drop_head(writer_model *m) { writer_remove(m, "classifier.2.bias"); }
static void drop_layer_scale(writer_model *m) { writer_remove(m, "features.3.0.layer_scale"); }
static void add_extra(writer_model *m) {
    int64_t shape[1] = {4};
    writer_add(m, "features.0.0.extra", "F32", 1, shape);
}
static void add_unrelated(writer_model *m) {
    int64_t shape[1] = {4};
    writer_add(m, "num_batches_tracked", "F32", 1, shape);
}
static void add_stage_0_downsample(writer_model *m) {
    int64_t shape[1] = {8};
    writer_add(m, "features.0.2.weight", "F32", 1, shape);
}
static void add_fifth_stage(writer_model *m) {
    int64_t shape[4] = {64, 1, 7, 7};
    writer_add(m, "features.9.0.block.0.weight", "F32", 4, shape);
}
static void add_timm_name(writer_model *m) {
    int64_t shape[1] = {5};
    writer_add(m, "head.fc.bias", "F32", 1, shape);
}
static void add_prefixed_duplicate(writer_model *m) {
    int64_t shape[1] = {8};
    writer_add(m, "module.features.0.0.bias", "F32", 1, shape);
}
static void skip_block_index(writer_model *m) {
    /* Stage 2 has blocks 0 and 1: rename block 1 to block 2. */
    for (size_t i = 0; i < m->count; i++) {
        char *name = m->tensors[i].name;
        if (strncmp(name, "features.5.1.", 13) == 0) name[11] = '2';
    }
}
static void drop_stage_blocks(writer_model *m) {
    /* Stage 1 keeps its downsample but loses its only block. */
    for (size_t i = m->count; i-- > 0;)
        if (strncmp(m->tensors[i].name, "features.3.0.", 13) == 0)
            writer_remove(m, m->tensors[i].name);
}
static void reshape(writer_model *m, const char *name, int ndim, int64_t a, int64_t b,
                    int64_t c, int64_t d) {
    int64_t shape[4] = {a, b, c, d};
    writer_reshape(writer_find(m, name), ndim, shape);
}
static void wrong_fc1_shape(writer_model *m) {
    reshape(m, "features.5.0.block.3.weight", 2, 128, 33, 0, 0);
}
static void fc1_transposed(writer_model *m) {
    reshape(m, "features.5.0.block.3.weight", 2, 32, 128, 0, 0);
}
static void fc1_as_conv_in_torchvision(writer_model *m) {
    reshape(m, "features.5.0.block.3.weight", 4, 128, 32, 1, 1);
}
static void wrong_downsample_input(writer_model *m) {
    reshape(m, "features.4.1.weight", 4, 32, 12, 2, 2);
}
static void wrong_stem(writer_model *m) { reshape(m, "features.0.0.weight", 4, 8, 3, 3, 3); }
static void wrong_dw_kernel(writer_model *m) {
    reshape(m, "features.1.0.block.0.weight", 4, 8, 1, 5, 5);
}
static void wrong_second_dw(writer_model *m) {
    reshape(m, "features.5.1.block.0.weight", 4, 24, 1, 7, 7);
}
static void wrong_head_width(writer_model *m) {
    reshape(m, "classifier.2.weight", 2, 5, 32, 0, 0);
}
static void wrong_head_bias(writer_model *m) { reshape(m, "classifier.2.bias", 1, 6, 0, 0, 0); }
static void zero_classes(writer_model *m) {
    reshape(m, "classifier.2.weight", 2, 0, 64, 0, 0);
    reshape(m, "classifier.2.bias", 1, 0, 0, 0, 0);
}
static void layer_scale_flat(writer_model *m) {
    reshape(m, "features.1.0.layer_scale", 1, 8, 0, 0, 0);
}
static void stem_f64(writer_model *m) {
    snprintf(writer_find(m, "features.0.0.weight")->dtype, 8, "F64");
}
static void bias_i64(writer_model *m) {
    snprintf(writer_find(m, "classifier.2.bias")->dtype, 8, "I64");
}
static void nan_f32(writer_model *m) { writer_find(m, "features.3.0.block.2.weight")->values[3] = NAN; }
static void inf_f32(writer_model *m) { writer_find(m, "classifier.2.weight")->values[7] = INFINITY; }
static void nan_f16(writer_model *m) {
    writer_tensor *t = writer_find(m, "features.1.0.block.5.weight");
    snprintf(t->dtype, 8, "F16");
    t->values[3] = NAN;
}
static void inf_bf16(writer_model *m) {
    writer_tensor *t = writer_find(m, "features.7.0.layer_scale");
    snprintf(t->dtype, 8, "BF16");
    t->values[3] = -INFINITY;
}

typedef struct malformed_case {
    const char *label;
    mutation mutate;
    cnx_status status;
    const char *word;
} malformed_case;

static const malformed_case malformed_cases[] = {
    {"missing_block_tensor", drop_fc1_bias, CNX_ERROR_WEIGHTS, "missing tensor features.5.1.block.3.bias"},
    {"missing_downsample", drop_downsample, CNX_ERROR_WEIGHTS, "missing tensor features.4.1.weight"},
    {"missing_head", drop_head, CNX_ERROR_WEIGHTS, "missing tensor classifier.2.bias"},
    {"missing_layer_scale", drop_layer_scale, CNX_ERROR_WEIGHTS, "missing tensor features.3.0.layer_scale"},
    {"extra_tensor", add_extra, CNX_ERROR_WEIGHTS, "unexpected tensor features.0.0.extra"},
    {"unrelated_tensor", add_unrelated, CNX_ERROR_WEIGHTS, "unexpected tensor num_batches_tracked"},
    {"stage_0_downsample", add_stage_0_downsample, CNX_ERROR_WEIGHTS, "unexpected tensor features.0.2.weight"},
    {"fifth_stage", add_fifth_stage, CNX_ERROR_UNSUPPORTED, "at most 4 stages"},
    {"mixed_naming", add_timm_name, CNX_ERROR_WEIGHTS, "mixes torchvision"},
    {"prefixed_duplicate", add_prefixed_duplicate, CNX_ERROR_WEIGHTS, "same parameter"},
    {"non_contiguous_blocks", skip_block_index, CNX_ERROR_WEIGHTS, "not contiguous"},
    {"stage_without_blocks", drop_stage_blocks, CNX_ERROR_WEIGHTS, "stage 1 has no blocks"},
    {"wrong_fc1_shape", wrong_fc1_shape, CNX_ERROR_WEIGHTS, "has shape [128, 33], expected [128, 32]"},
    {"fc1_transposed", fc1_transposed, CNX_ERROR_WEIGHTS, "expected [128, 32]"},
    {"fc1_as_conv_in_torchvision", fc1_as_conv_in_torchvision, CNX_ERROR_WEIGHTS, "expected [128, 32]"},
    {"wrong_downsample_input", wrong_downsample_input, CNX_ERROR_WEIGHTS, "expected [32, 16, 2, 2]"},
    {"wrong_stem", wrong_stem, CNX_ERROR_WEIGHTS, "expected [8, 3, 4, 4]"},
    {"wrong_dw_kernel", wrong_dw_kernel, CNX_ERROR_WEIGHTS, "[8, 1, 5, 5]"},
    {"wrong_second_dw", wrong_second_dw, CNX_ERROR_WEIGHTS, "expected [32, 1, 7, 7]"},
    {"wrong_head_width", wrong_head_width, CNX_ERROR_WEIGHTS, "classifier.2.weight has shape"},
    {"wrong_head_bias", wrong_head_bias, CNX_ERROR_WEIGHTS, "expected [5]"},
    {"zero_classes", zero_classes, CNX_ERROR_WEIGHTS, "classifier.2.weight"},
    {"layer_scale_flat", layer_scale_flat, CNX_ERROR_WEIGHTS, "expected [8, 1, 1]"},
    {"dtype_f64", stem_f64, CNX_ERROR_UNSUPPORTED,
     "tensor features.0.0.weight has dtype F64; cnx reads F32, F16 or BF16"},
    {"dtype_i64", bias_i64, CNX_ERROR_UNSUPPORTED, "dtype I64"},
    {"nan_f32", nan_f32, CNX_ERROR_WEIGHTS, "features.3.0.block.2.weight has a non-finite value (NaN) at element 3"},
    {"inf_f32", inf_f32, CNX_ERROR_WEIGHTS, "(+Inf) at element 7"},
    {"nan_f16", nan_f16, CNX_ERROR_WEIGHTS, "features.1.0.block.5.weight has a non-finite value (NaN)"},
    {"inf_bf16", inf_bf16, CNX_ERROR_WEIGHTS, "(-Inf) at element 3"},
};

static void test_malformed_models(void) {
    for (size_t i = 0; i < sizeof malformed_cases / sizeof malformed_cases[0]; i++) {
        const malformed_case *c = &malformed_cases[i];
        convnext_spec spec = writer_small_spec(CNX_NAMING_TORCHVISION, "F32");
        writer_model m;
        writer_build_convnext(&m, &spec);
        c->mutate(&m);
        char path[4096], name[128];
        snprintf(name, sizeof name, "bad_%s.safetensors", c->label);
        test_path(path, sizeof path, dir, name);
        writer_write(&m, path);
        writer_free(&m);

        cnx_convnext_weights w;
        CHECK_FAILS(cnx_convnext_weights_load(path, &w), c->status, path, c->word, c->label);
        CHECK(w.arena == NULL && w.block_storage == NULL && w.num_stages == 0,
              "%s: failure leaves weights zeroed", c->label);
    }
}

/* Writes m as LABEL.safetensors and checks that loading fails with status
 * and a message holding word. */
static void check_fails(writer_model *m, const char *label, cnx_status status, const char *word) {
    char path[4096], name[128];
    snprintf(name, sizeof name, "%s.safetensors", label);
    test_path(path, sizeof path, dir, name);
    writer_write(m, path);
    cnx_convnext_weights w;
    CHECK_FAILS(cnx_convnext_weights_load(path, &w), status, path, word, label);
}

/* V2 and transformers files: GRN on every block or on none, layer scale
 * likewise, and transformers names in the messages. */
static void test_malformed_v2(void) {
    convnext_spec spec = writer_small_spec(CNX_NAMING_TRANSFORMERS, "F32");
    spec.grn = 1;
    writer_model m;
    writer_build_convnext(&m, &spec);
    writer_remove(&m, "convnextv2.encoder.stages.2.layers.1.grn.bias");
    check_fails(&m, "bad_v2_missing_grn", CNX_ERROR_WEIGHTS,
                "missing tensor encoder.stages.2.layers.1.grn.bias");
    writer_free(&m);

    writer_build_convnext(&m, &spec);
    int64_t flat[1] = {128};
    writer_reshape(writer_find(&m, "convnextv2.encoder.stages.2.layers.1.grn.weight"), 1, flat);
    check_fails(&m, "bad_v2_grn_shape", CNX_ERROR_WEIGHTS, "expected [1, 1, 1, 128]");
    writer_free(&m);

    spec.naming = CNX_NAMING_TIMM;
    writer_build_convnext(&m, &spec);
    int64_t gamma[1] = {32};
    writer_add(&m, "stages.2.blocks.0.gamma", "F32", 1, gamma);
    check_fails(&m, "bad_v2_some_layer_scale", CNX_ERROR_WEIGHTS,
                "missing tensor stages.0.blocks.0.gamma");
    writer_free(&m);

    spec = writer_small_spec(CNX_NAMING_TRANSFORMERS, "F32");
    writer_build_convnext(&m, &spec);
    writer_add(&m, "stem.0.weight", "F32", 1, gamma);
    check_fails(&m, "bad_mixed_transformers_timm", CNX_ERROR_WEIGHTS,
                "mixes timm tensor names (stem.0.weight) with transformers names");
    writer_free(&m);
}

/* timm files fail the same way, with timm names in the messages. */
static void test_malformed_timm(void) {
    convnext_spec spec = writer_small_spec(CNX_NAMING_TIMM, "BF16");
    writer_model m;
    writer_build_convnext(&m, &spec);
    writer_remove(&m, "stages.2.blocks.1.gamma");
    char path[4096];
    test_path(path, sizeof path, dir, "bad_timm_missing_gamma.safetensors");
    writer_write(&m, path);
    cnx_convnext_weights w;
    CHECK_FAILS(cnx_convnext_weights_load(path, &w), CNX_ERROR_WEIGHTS, path,
                "missing tensor stages.2.blocks.1.gamma", "timm missing gamma");

    int64_t gamma[3] = {32, 1, 1};
    writer_add(&m, "stages.2.blocks.1.gamma", "BF16", 3, gamma);
    test_path(path, sizeof path, dir, "bad_timm_gamma_shape.safetensors");
    writer_write(&m, path);
    CHECK_FAILS(cnx_convnext_weights_load(path, &w), CNX_ERROR_WEIGHTS, path,
                "stages.2.blocks.1.gamma has shape [32, 1, 1], expected [32]",
                "timm gamma shape");

    int64_t stages[1] = {16};
    writer_add(&m, "stages.1.downsample.2.weight", "BF16", 1, stages);
    test_path(path, sizeof path, dir, "bad_timm_extra.safetensors");
    writer_write(&m, path);
    CHECK_FAILS(cnx_convnext_weights_load(path, &w), CNX_ERROR_WEIGHTS, path,
                "unexpected tensor stages.1.downsample.2.weight", "timm extra tensor");
    writer_free(&m);

    writer_model empty = {0};
    test_path(path, sizeof path, dir, "bad_no_tensors.safetensors");
    writer_write(&empty, path);
    CHECK_FAILS(cnx_convnext_weights_load(path, &w), CNX_ERROR_WEIGHTS, path, "no tensors",
                "no tensors");

    int64_t shape[1] = {3};
    writer_add(&empty, "encoder.weight", "F32", 1, shape);
    test_path(path, sizeof path, dir, "bad_other_model.safetensors");
    writer_write(&empty, path);
    CHECK_FAILS(cnx_convnext_weights_load(path, &w), CNX_ERROR_WEIGHTS, path,
                "no ConvNeXt tensors", "another model");
    writer_free(&empty);
}

/* The next place to cut a file of this layout: every byte around the
 * length field and the end of the header, about 100 places in between and
 * 100 in the data. Every byte would be thorough but slow on a network disk. */
static size_t next_cut(size_t cut, size_t header_end, size_t size) {
    if (cut < 64 || (cut + 16 >= header_end && cut < header_end + 16)) return cut + 1;
    size_t span = cut < header_end ? header_end : size - header_end;
    size_t next = cut + span / 97 + 1;
    /* Do not step over the densely cut stretch before the header's end. */
    if (cut < header_end - 16 && next > header_end - 16) next = header_end - 16;
    return next;
}

/* Cut a good file anywhere: the header, its length, the data. */
static void test_truncation(void) {
    convnext_spec spec = writer_small_spec(CNX_NAMING_TORCHVISION, "F16");
    writer_model m;
    writer_build_convnext(&m, &spec);
    size_t size, header_end;
    unsigned char *bytes = writer_serialize(&m, &size, &header_end);
    writer_free(&m);

    char path[4096];
    test_path(path, sizeof path, dir, "truncated.safetensors");
    int wrong = 0, cuts = 0;
    for (size_t cut = 0; cut < size; cut = next_cut(cut, header_end, size)) {
        writer_write_bytes(path, bytes, cut);
        cnx_convnext_weights w;
        cnx_status status = cnx_convnext_weights_load(path, &w);
        const char *message = cnx_last_error();
        cnx_status want = cut == 0 ? CNX_ERROR_IO : CNX_ERROR_WEIGHTS;
        const char *word = cut == 0 ? "empty" : "truncated";
        cuts++;
        if (status != want || !strstr(message, path) || !strstr(message, word)) {
            if (wrong++ < 5)
                fprintf(stderr, "cut at %zu of %zu: status %d, \"%s\"\n", cut, size, status,
                        message);
        }
    }
    writer_write_bytes(path, bytes, size - 1);
    cnx_convnext_weights w;
    CHECK_FAILS(cnx_convnext_weights_load(path, &w), CNX_ERROR_WEIGHTS, path, "truncated",
                "one byte short");
    CHECK(wrong == 0, "%d of %d truncated files misreported", wrong, cuts);
    CHECK(cuts > 250, "only %d cuts", cuts);
    free(bytes);
}

static void test_file_errors(void) {
    char path[4096];
    cnx_convnext_weights w;
    test_path(path, sizeof path, dir, "does_not_exist.safetensors");
    unlink(path);
    CHECK_FAILS(cnx_convnext_weights_load(path, &w), CNX_ERROR_IO, path, "cannot open",
                "nonexistent file");
    CHECK_FAILS(cnx_convnext_weights_load(dir, &w), CNX_ERROR_IO, dir, "directory",
                "directory");
    test_path(path, sizeof path, dir, "zero.safetensors");
    writer_write_bytes(path, "", 0);
    CHECK_FAILS(cnx_convnext_weights_load(path, &w), CNX_ERROR_IO, path, "empty",
                "zero-byte file");
    test_path(path, sizeof path, dir, "not_json.safetensors");
    writer_write_raw(path, "{\"features.0.0.weight\":", UINT64_MAX, NULL, 0);
    CHECK_FAILS(cnx_convnext_weights_load(path, &w), CNX_ERROR_WEIGHTS, path, "not valid JSON",
                "invalid JSON");
    test_path(path, sizeof path, dir, "not_object.safetensors");
    writer_write_raw(path, "[]      ", UINT64_MAX, NULL, 0);
    CHECK_FAILS(cnx_convnext_weights_load(path, &w), CNX_ERROR_WEIGHTS, path,
                "not a JSON object", "JSON array");
    test_path(path, sizeof path, dir, "overlap.safetensors");
    writer_write_raw(path,
                     "{\"features.0.0.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":"
                     "[0,8]},\"features.0.1.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
                     "\"data_offsets\":[4,12]}}",
                     UINT64_MAX, "0123456789ab", 12);
    CHECK_FAILS(cnx_convnext_weights_load(path, &w), CNX_ERROR_WEIGHTS, path, "overlap",
                "overlapping offsets");
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "load") != 0 && strcmp(argv[1], "malformed") != 0)) {
        fprintf(stderr, "usage: %s load|malformed WORK_DIR\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[2]);
    if (test_make_dir(dir) != 0) {
        fprintf(stderr, "cannot create %s\n", dir);
        return 2;
    }
    if (strcmp(argv[1], "load") == 0) {
        test_namings_and_dtypes();
        test_file_order_and_mixed_dtypes();
        test_architecture_names();
        test_metadata();
    } else {
        test_malformed_models();
        test_malformed_timm();
        test_malformed_v2();
        test_truncation();
        test_file_errors();
    }
    return test_summary();
}
