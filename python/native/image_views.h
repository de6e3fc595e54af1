// Decoded images from Python: uint8 numpy arrays [H, W, 3] seen as cnx_image
// without a copy.
#pragma once

#include <cstdint>
#include <string>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include "cnx.h"

using PixelArray = nanobind::ndarray<const uint8_t, nanobind::ndim<3>, nanobind::c_contig,
                                     nanobind::device::cpu>;

// The array as a cnx_image; ValueError naming `what` unless it has 3 channels.
cnx_image image_view(const PixelArray &pixels, const std::string &what);
