/* The names of cnx_precision, as the CLI's --precision, the Python package
 * and the Triton backend's config spell them. */
#include <string.h>

#include "cnx.h"

static const char *const precision_names[] = {
    [CNX_PRECISION_FP32] = "fp32",
    [CNX_PRECISION_TF32] = "tf32",
    [CNX_PRECISION_FP16] = "fp16",
    [CNX_PRECISION_BF16] = "bf16",
};
enum { PRECISION_COUNT = sizeof precision_names / sizeof precision_names[0] };

const char *cnx_precision_name(cnx_precision precision) {
    return (int)precision >= 0 && (int)precision < PRECISION_COUNT ? precision_names[precision]
                                                                    : "unknown";
}

int cnx_precision_parse(const char *name, cnx_precision *out) {
    for (int i = 0; name && i < PRECISION_COUNT; i++)
        if (strcmp(name, precision_names[i]) == 0) {
            *out = (cnx_precision)i;
            return 0;
        }
    return -1;
}
