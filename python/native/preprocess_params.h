// cnx_preprocess <-> the dicts the Python API speaks: {"resize": 236,
// "crop": 224, "mean": (r, g, b), "std": (r, g, b), "normalize": True,
// "interpolation": "bilinear", "crop_mode": "center", "crop_offset": "round",
// "rescale_factor": 0.0}.
#pragma once

#include <nanobind/nanobind.h>

#include "cnx.h"

nanobind::dict preprocess_to_dict(const cnx_preprocess &params);

// Sets the fields `overrides` names; an unknown key or a bad value raises
// ValueError or TypeError naming it.
void apply_preprocess_overrides(cnx_preprocess &params, const nanobind::dict &overrides);
