// Handing results to Python as numpy arrays that own their memory.
#pragma once

#include <initializer_list>
#include <utility>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include "cnx.h"

// values, C order, of the given shape (whose product is values.size()).
template <class T>
nanobind::object numpy_array(std::vector<T> &&values, std::initializer_list<size_t> shape) {
    auto *owned = new std::vector<T>(std::move(values));
    nanobind::capsule owner(owned,
                            [](void *p) noexcept { delete static_cast<std::vector<T> *>(p); });
    return nanobind::cast(nanobind::ndarray<nanobind::numpy, T>(owned->data(), shape.size(),
                                                                shape.begin(), owner));
}

// The class indices (int32; -1 for a failed image) and the probabilities
// (float32; NaN for a failed image) of n rows of k predictions.
nanobind::object top_indices(const std::vector<cnx_prediction> &top, size_t n, size_t k);
nanobind::object top_probabilities(const std::vector<cnx_prediction> &top, size_t n, size_t k);
