// The module's image functions: decoding, Pillow-exact preprocessing and
// dataset statistics, without an engine.
#pragma once

#include <nanobind/nanobind.h>

// Registers cnx._native.read_image, preprocess and stats.
void bind_images(nanobind::module_ &m);
