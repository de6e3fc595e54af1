#include "numpy_arrays.h"

#include <cmath>
#include <cstdint>

nanobind::object top_indices(const std::vector<cnx_prediction> &top, size_t n, size_t k) {
    std::vector<int32_t> indices(n * k);
    for (size_t i = 0; i < n * k; i++)
        indices[i] = top[i].class_index;
    return numpy_array(std::move(indices), {n, k});
}

nanobind::object top_probabilities(const std::vector<cnx_prediction> &top, size_t n, size_t k) {
    std::vector<float> probs(n * k);
    for (size_t i = 0; i < n * k; i++)
        probs[i] = top[i].class_index < 0 ? NAN : top[i].probability;
    return numpy_array(std::move(probs), {n, k});
}
