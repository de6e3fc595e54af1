/* The preprocessing flags shared by classify, eval, preprocess and stats:
 * --resize N --crop N --mean r,g,b --std r,g,b --no-normalize. */
#ifndef CNX_CLI_PREPROCESS_FLAGS_H
#define CNX_CLI_PREPROCESS_FLAGS_H

#include <getopt.h>

#include "cnx.h"

enum {
    OPTION_RESIZE = 1000,
    OPTION_CROP,
    OPTION_MEAN,
    OPTION_STD,
    OPTION_NO_NORMALIZE,
};

/* Entries for a getopt_long option table. */
#define PREPROCESS_LONG_OPTIONS                                                 \
    {"resize", required_argument, NULL, OPTION_RESIZE},                        \
    {"crop", required_argument, NULL, OPTION_CROP},                            \
    {"mean", required_argument, NULL, OPTION_MEAN},                            \
    {"std", required_argument, NULL, OPTION_STD},                              \
    {"no-normalize", no_argument, NULL, OPTION_NO_NORMALIZE}

#define PREPROCESS_FLAGS_HELP                                                       \
    "  --resize N         short side after resizing (default: the weights' metadata)\n" \
    "  --crop N           center crop side (default: the weights' metadata)\n"          \
    "  --mean R,G,B       normalization mean (default: the weights' metadata)\n"        \
    "  --std R,G,B        normalization std (default: the weights' metadata)\n"         \
    "  --no-normalize     only scale by 1/255, no mean/std\n"

typedef struct preprocess_overrides {
    int have_resize, have_crop, have_mean, have_std, no_normalize;
    cnx_preprocess values;
} preprocess_overrides;

/* Handles one getopt_long result. Returns 1 if it was a preprocessing flag,
 * 0 if not, -1 for a bad value (after printing the error). */
int preprocess_overrides_parse(preprocess_overrides *overrides, int option, const char *value);

/* Replaces the fields of *params that the flags set. */
void preprocess_overrides_apply(const preprocess_overrides *overrides, cnx_preprocess *params);

/* The preprocessing a weights file carries. Returns 0, or -1 after printing
 * the error. */
int preprocess_from_weights(const char *path, cnx_preprocess *params);

/* Parses "a,b,c" into three floats. Returns 0 or -1. */
int parse_float3(const char *text, float out[3]);

/* Parses a positive int no larger than max. Returns 0 or -1. */
int parse_positive_int(const char *text, int max, int *out);

#endif
