/* Softmax and top-k over one row of logits. */
#include <math.h>

#include "error.h"

/* Whether a ranks above b: higher probability first, then the lower index. */
static int ranks_above(const cnx_prediction *a, const cnx_prediction *b) {
    return a->probability > b->probability ||
           (a->probability == b->probability && a->class_index < b->class_index);
}

cnx_status cnx_top_k(const float *logits, int num_classes, int k, cnx_prediction *top) {
    if (!logits || !top || num_classes <= 0)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_top_k: NULL logits or output, or no classes");
    if (k < 1 || k > num_classes)
        return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_top_k: k = %d, expected 1..%d", k, num_classes);
    float largest = -INFINITY;
    for (int i = 0; i < num_classes; i++) {
        if (!isfinite(logits[i]))
            return cnx_fail(CNX_ERROR_INVALID_ARGUMENT, "cnx_top_k: logit %d is not finite", i);
        largest = fmaxf(largest, logits[i]);
    }
    /* Shifting by the largest logit keeps exp() in range; the sum in double
     * keeps a thousand small terms accurate. */
    double sum = 0.0;
    for (int i = 0; i < num_classes; i++)
        sum += exp((double)logits[i] - largest);
    int filled = 0;
    for (int i = 0; i < num_classes; i++) {
        cnx_prediction candidate = {i, (float)(exp((double)logits[i] - largest) / sum), logits[i]};
        if (filled == k && !ranks_above(&candidate, &top[k - 1]))
            continue;
        /* Insertion into the sorted top list; k is small in practice. */
        int at = filled < k ? filled++ : k - 1;
        while (at > 0 && ranks_above(&candidate, &top[at - 1])) {
            top[at] = top[at - 1];
            at--;
        }
        top[at] = candidate;
    }
    return CNX_OK;
}
