#include "images.h"

#include <optional>
#include <string>
#include <vector>

#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "errors.h"
#include "image_views.h"
#include "numpy_arrays.h"
#include "preprocess_params.h"

namespace nb = nanobind;

namespace {

// A decoded file that frees itself.
struct DecodedImage {
    cnx_image image{};
    ~DecodedImage() { cnx_image_free(&image); }
};

cnx_status decode_file(const std::string &path, int64_t max_pixels, DecodedImage &out) {
    nb::gil_scoped_release unlocked;
    return cnx_image_decode_file(path.c_str(), max_pixels, &out.image);
}

// A file as Pillow's Image.open(path).convert("RGB"): uint8 [H, W, 3].
nb::object read_image(const std::string &path, int64_t max_pixels) {
    DecodedImage decoded;
    check_status(decode_file(path, max_pixels, decoded));
    const cnx_image &im = decoded.image;
    std::vector<uint8_t> rgb(im.rgb, im.rgb + (size_t)im.width * (size_t)im.height * 3);
    return numpy_array(std::move(rgb), {(size_t)im.height, (size_t)im.width, 3});
}

// torchvision's defaults with the caller's overrides.
cnx_preprocess params_from(const nb::dict &overrides) {
    cnx_preprocess params = cnx_default_preprocess();
    apply_preprocess_overrides(params, overrides);
    return params;
}

// The model input of one image: float32 [3, crop, crop], or with `pixels`
// the uint8 pixels before the scaling.
nb::object preprocess(PixelArray image, nb::dict overrides, bool pixels) {
    cnx_image view = image_view(image, "image");
    cnx_preprocess params = params_from(overrides);
    if (params.crop <= 0 || params.crop > CNX_MAX_SIDE)
        throw nb::value_error(("crop must be in 1.." + std::to_string(CNX_MAX_SIDE)).c_str());
    size_t side = (size_t)params.crop, size = 3 * side * side;
    cnx_status status;
    nb::object out;
    if (pixels) {
        std::vector<uint8_t> planar(size);
        {
            nb::gil_scoped_release unlocked;
            status = cnx_preprocess_pixels(&view, &params, planar.data());
        }
        check_status(status);
        out = numpy_array(std::move(planar), {3, side, side});
    } else {
        std::vector<float> input(size);
        {
            nb::gil_scoped_release unlocked;
            status = cnx_preprocess_image(&view, &params, input.data());
        }
        check_status(status);
        out = numpy_array(std::move(input), {3, side, side});
    }
    return out;
}

// Per-channel mean and sample std on the [0,1] scale over the files' pixels
// (after Resize/CenterCrop when `overrides` is given). A file that cannot be
// read is left out, its message in the returned list; when none could be
// read, the first one's error is raised.
nb::tuple stats(const std::vector<std::string> &paths, std::optional<nb::dict> overrides,
                int64_t max_pixels) {
    std::optional<cnx_preprocess> params;
    if (overrides)
        params = params_from(*overrides);
    cnx_pixel_stats sums{};
    std::vector<std::string> errors;
    cnx_status first_failure = CNX_OK;
    for (const std::string &path : paths) {
        DecodedImage decoded;
        cnx_status status = decode_file(path, max_pixels, decoded);
        std::string error = status != CNX_OK ? cnx_last_error() : "";
        if (status == CNX_OK) {
            {
                nb::gil_scoped_release unlocked;
                status = cnx_pixel_stats_add(&sums, &decoded.image, params ? &*params : nullptr);
            }
            if (status != CNX_OK)
                error = path + ": " + cnx_last_error();
        }
        if (status != CNX_OK) {
            errors.push_back(error);
            if (first_failure == CNX_OK)
                first_failure = status;
        }
    }
    if (sums.count == 0 && first_failure != CNX_OK)
        raise_status(first_failure, errors.front());
    double mean[3], std[3];
    check_status(cnx_pixel_stats_result(&sums, mean, std));
    return nb::make_tuple(nb::make_tuple(mean[0], mean[1], mean[2]),
                          nb::make_tuple(std[0], std[1], std[2]), sums.count,
                          paths.size() - errors.size(), nb::cast(errors));
}

} // namespace

void bind_images(nb::module_ &m) {
    m.def("default_preprocess", [] { return preprocess_to_dict(cnx_default_preprocess()); });
    m.def("read_image", &read_image, nb::arg("path"), nb::arg("max_pixels"));
    m.def("preprocess", &preprocess, nb::arg("image"), nb::arg("overrides"), nb::arg("pixels"));
    m.def("stats", &stats, nb::arg("paths"), nb::arg("overrides").none(), nb::arg("max_pixels"));
}
