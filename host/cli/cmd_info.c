/* cnx info: what a weights file holds and the preprocessing it carries. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cnx.h"
#include "commands.h"
#include "json_output.h"

static const char usage[] =
    "usage: cnx info [--json] [--test-size] WEIGHTS.safetensors|CHECKPOINT_DIR\n"
    "\n"
    "Validates a weights file (or a timm / Hugging Face checkpoint folder) and\n"
    "prints its architecture, parameter count and the preprocessing it carries\n"
    "(resize, crop, mean, std, interpolation, crop mode, crop offset, rescale\n"
    "factor), with where each value came from: the file's metadata, the folder's\n"
    "config.json or preprocessor_config.json, or torchvision's defaults.\n"
    "--test-size: timm's test_input_size and test_crop_pct.\n"
    "exit status: 0 valid, 2 usage error or invalid weights\n";

/* The preprocessing as the transforms it reproduces. */
static void print_pipeline(const cnx_preprocess *p) {
    const char *filter = cnx_interpolation_name(p->interpolation);
    switch (p->crop_mode) {
    case CNX_CROP_MODE_SQUASH: printf("Resize(%dx%d, %s)", p->resize, p->resize, filter); break;
    case CNX_CROP_MODE_BORDER:
        printf("ResizeKeepRatio(longest %d, %s) -> CenterCropOrPad(%d, fill=round(255*mean))",
               p->resize, filter, p->crop);
        break;
    default: printf("Resize(%d, %s)", p->resize, filter); break;
    }
    if (p->crop_mode != CNX_CROP_MODE_BORDER)
        printf(" -> CenterCrop(%d%s)", p->crop,
               p->crop_offset == CNX_CROP_OFFSET_FLOOR ? ", floor offset" : "");
    if (p->rescale_factor > 0)
        printf(" -> *%.17g (float64)", p->rescale_factor);
    else
        printf(" -> /255");
    if (p->normalize)
        printf(" -> Normalize(mean=%g,%g,%g std=%g,%g,%g)", p->mean[0], p->mean[1], p->mean[2],
               p->std[0], p->std[1], p->std[2]);
}

/* Each source with the values it gave, e.g.
 * "from:          config.json (resize, crop, ...), metadata (mean, std)". */
static void print_sources(const cnx_preprocess_sources *from) {
    const struct {
        const char *name;
        cnx_value_source source;
    } values[] = {
        {"resize", from->resize},           {"crop", from->crop},
        {"interpolation", from->interpolation}, {"crop mode", from->crop_mode},
        {"crop offset", from->crop_offset}, {"scaling", from->rescale_factor},
        {"normalize", from->normalize},     {"mean", from->mean},
        {"std", from->std},
    };
    const size_t count = sizeof values / sizeof values[0];
    printf("from:         ");
    const char *separator = " ";
    for (int source = CNX_SOURCE_DEFAULT; source <= CNX_SOURCE_TRANSFORMERS_CONFIG; source++) {
        int listed = 0;
        for (size_t i = 0; i < count; i++) {
            if (values[i].source != (cnx_value_source)source)
                continue;
            if (listed)
                printf(", %s", values[i].name);
            else
                printf("%s%s (%s", separator, cnx_value_source_name((cnx_value_source)source),
                       values[i].name);
            listed = 1;
        }
        if (listed) {
            printf(")");
            separator = "; ";
        }
    }
    printf("\n");
}

static void print_text(const char *path, const cnx_model_info *m) {
    const cnx_preprocess *p = &m->preprocess;
    printf("file:          %s\n", path);
    printf("architecture:  %s\n", m->architecture);
    printf("depths:       ");
    for (int s = 0; s < m->num_stages; s++)
        printf(" %d", m->depths[s]);
    printf("\nwidths:       ");
    for (int s = 0; s < m->num_stages; s++)
        printf(" %d", m->widths[s]);
    printf("\nclasses:       %d\n", m->num_classes);
    printf("parameters:    %" PRId64 "\n", m->num_parameters);
    printf("dtype:         %s\n", m->weights_dtype);
    printf("naming:        %s\n", m->naming);
    printf("model:         ConvNeXt %s\n", m->has_grn ? "V2 (GRN, no layer scale)" : "V1");
    printf("class names:   %s\n", m->has_class_names ? "from the checkpoint"
                                   : m->num_classes == 1000 ? "ImageNet-1k (built in)" : "none");
    printf("source:        %s\n", m->source[0] ? m->source : "(not recorded)");
    printf("preprocessing: ");
    print_pipeline(p);
    printf("%s\n", m->has_preprocess_metadata
                       ? "" : "  (not in the file: torchvision's ImageNet defaults)");
    print_sources(&m->preprocess_sources);
}

static void print_floats(const float v[3]) {
    printf("[");
    for (int c = 0; c < 3; c++) {
        printf(c ? ", " : "");
        json_write_float(stdout, v[c]);
    }
    printf("]");
}

static void print_json(const char *path, const cnx_model_info *m) {
    printf("{\"file\": ");
    json_write_string(stdout, path);
    printf(", \"architecture\": ");
    json_write_string(stdout, m->architecture);
    printf(", \"depths\": [");
    for (int s = 0; s < m->num_stages; s++)
        printf("%s%d", s ? ", " : "", m->depths[s]);
    printf("], \"widths\": [");
    for (int s = 0; s < m->num_stages; s++)
        printf("%s%d", s ? ", " : "", m->widths[s]);
    printf("], \"classes\": %d, \"parameters\": %" PRId64 ", \"dtype\": ", m->num_classes,
           m->num_parameters);
    json_write_string(stdout, m->weights_dtype);
    printf(", \"naming\": ");
    json_write_string(stdout, m->naming);
    printf(", \"source\": ");
    json_write_string(stdout, m->source);
    printf(", \"preprocess\": {\"resize\": %d, \"crop\": %d, \"mean\": ", m->preprocess.resize,
           m->preprocess.crop);
    print_floats(m->preprocess.mean);
    printf(", \"std\": ");
    print_floats(m->preprocess.std);
    printf(", \"interpolation\": \"%s\", \"crop_mode\": \"%s\", \"crop_offset\": \"%s\", "
           "\"rescale_factor\": ", cnx_interpolation_name(m->preprocess.interpolation),
           cnx_crop_mode_name(m->preprocess.crop_mode),
           cnx_crop_offset_name(m->preprocess.crop_offset));
    if (m->preprocess.rescale_factor > 0)
        printf("%.17g", m->preprocess.rescale_factor);
    else
        printf("null");
    const cnx_preprocess_sources *from = &m->preprocess_sources;
    printf(", \"from_file\": %s, \"sources\": {\"resize\": \"%s\", \"crop\": \"%s\", "
           "\"mean\": \"%s\", \"std\": \"%s\", \"normalize\": \"%s\", \"interpolation\": \"%s\", "
           "\"crop_mode\": \"%s\", \"crop_offset\": \"%s\", \"rescale_factor\": \"%s\"}}",
           m->has_preprocess_metadata ? "true" : "false", cnx_value_source_name(from->resize),
           cnx_value_source_name(from->crop), cnx_value_source_name(from->mean),
           cnx_value_source_name(from->std), cnx_value_source_name(from->normalize),
           cnx_value_source_name(from->interpolation), cnx_value_source_name(from->crop_mode),
           cnx_value_source_name(from->crop_offset),
           cnx_value_source_name(from->rescale_factor));
    printf(", \"version\": %d, \"class_names\": %s}\n", m->has_grn ? 2 : 1,
           m->has_class_names ? "true" : "false");
}

int cmd_info(int argc, char **argv) {
    int json = 0, use_test_size = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return EXIT_ALL_OK;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--test-size")) {
            use_test_size = 1;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "cnx info: unexpected argument '%s'\n", argv[i]);
            fputs(usage, stderr);
            return EXIT_USAGE;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    cnx_options options = cnx_default_options();
    options.device = CNX_DEVICE_CPU; /* info needs no GPU */
    options.max_batch = 1;
    options.use_test_size = use_test_size;
    cnx_engine *engine;
    if (cnx_engine_create(path, &options, &engine) != CNX_OK) {
        fprintf(stderr, "cnx: %s\n", cnx_last_error());
        return EXIT_USAGE;
    }
    cnx_model_info info;
    cnx_engine_info(engine, &info);
    if (json)
        print_json(path, &info);
    else
        print_text(path, &info);
    cnx_engine_destroy(engine);
    return EXIT_ALL_OK;
}
