#include "engine.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "image_views.h"
#include "numpy_arrays.h"
#include "preprocess_params.h"

namespace nb = nanobind;

std::unique_lock<std::timed_mutex> NativeEngine::wait_for_turn() {
    std::unique_lock<std::timed_mutex> lock(call_mutex_, std::defer_lock);
    while (!lock.try_lock_for(poll_interval)) {
        nb::gil_scoped_acquire acquired;
        if (PyErr_CheckSignals() != 0)
            throw nb::python_error();
    }
    return lock;
}

void NativeEngine::add_user(const std::shared_ptr<EngineUser> &user) {
    users_.erase(std::remove_if(users_.begin(), users_.end(),
                                [](const std::weak_ptr<EngineUser> &u) { return u.expired(); }),
                 users_.end());
    users_.push_back(user);
}

cnx_model_info NativeEngine::info() {
    cnx_model_info info;
    call([&](cnx_engine *e) { return cnx_engine_info(e, &info); });
    return info;
}

std::optional<cnx_preprocess> NativeEngine::preprocess_with(
    const std::optional<nb::dict> &overrides) {
    if (!overrides || overrides->size() == 0)
        return std::nullopt;
    cnx_preprocess params = info().preprocess;
    apply_preprocess_overrides(params, *overrides);
    return params;
}

void NativeEngine::shut_down() {
    closed_ = true; // no call or stream starts from here on
    for (const std::weak_ptr<EngineUser> &weak : std::vector<std::weak_ptr<EngineUser>>(users_))
        if (std::shared_ptr<EngineUser> user = weak.lock())
            user->stop_for_engine_close();
    users_.clear();
    nb::gil_scoped_release unlocked; // the call in flight, and the GPU's work, may take a while
    std::lock_guard<std::timed_mutex> lock(call_mutex_);
    cnx_engine_destroy(engine_);
    engine_ = nullptr;
}

namespace {

using HostImages = nb::ndarray<const float, nb::ndim<4>, nb::c_contig, nb::device::cpu>;
using DeviceImages = nb::ndarray<const float, nb::ndim<4>, nb::c_contig, nb::device::cuda>;
using DeviceLogits = nb::ndarray<float, nb::ndim<2>, nb::c_contig, nb::device::cuda>;

cnx_options make_options(int device, int cuda_device, int precision, int max_batch, int threads,
                         int input_size, bool use_test_size) {
    cnx_options options = cnx_default_options();
    options.device = (cnx_device)device;
    options.cuda_device = cuda_device;
    options.precision = (cnx_precision)precision;
    options.max_batch = max_batch;
    options.num_threads = threads;
    options.input_size = input_size;
    options.use_test_size = use_test_size;
    return options;
}

// make(&engine) -> cnx_status with the GIL released, then the engine.
template <class Make>
NativeEngine *create_with(int cuda_device, Make &&make) {
    cnx_engine *engine = nullptr;
    cnx_status status;
    {
        nb::gil_scoped_release unlocked;
        status = make(&engine);
    }
    check_status(status);
    return new NativeEngine(engine, cuda_device);
}

NativeEngine *create(const std::string &weights, int device, int cuda_device, int precision,
                     int max_batch, int threads, int input_size, bool use_test_size) {
    cnx_options options = make_options(device, cuda_device, precision, max_batch, threads,
                                       input_size, use_test_size);
    return create_with(cuda_device, [&](cnx_engine **engine) {
        return cnx_engine_create(weights.c_str(), &options, engine);
    });
}

NativeEngine *create_random(const std::string &architecture, uint64_t seed, int device,
                            int cuda_device, int precision, int max_batch, int threads,
                            int input_size) {
    cnx_options options = make_options(device, cuda_device, precision, max_batch, threads,
                                       input_size, false);
    return create_with(cuda_device, [&](cnx_engine **engine) {
        return cnx_engine_create_random(architecture.c_str(), seed, &options, engine);
    });
}

nb::dict info_dict(NativeEngine &self) {
    cnx_model_info info;
    const char *fallback = nullptr; // lives as long as the engine
    self.call([&](cnx_engine *e) {
        fallback = cnx_engine_fallback_reason(e);
        return cnx_engine_info(e, &info);
    });
    nb::dict d;
    d["architecture"] = info.architecture;
    d["num_classes"] = info.num_classes;
    d["device"] = info.device == CNX_DEVICE_CUDA ? "cuda:" + std::to_string(self.cuda_device())
                                                : std::string("cpu");
    d["device_name"] = info.device_name;
    d["preprocess"] = preprocess_to_dict(info.preprocess);
    nb::list depths, widths;
    for (int s = 0; s < info.num_stages; s++) {
        depths.append(info.depths[s]);
        widths.append(info.widths[s]);
    }
    d["depths"] = depths;
    d["widths"] = widths;
    d["num_parameters"] = info.num_parameters;
    d["weights_dtype"] = info.weights_dtype;
    d["naming"] = info.naming;
    d["has_grn"] = info.has_grn != 0;
    d["source"] = info.source;
    d["fallback_reason"] = fallback ? nb::object(nb::str(fallback)) : nb::none();
    return d;
}

// Every class's name, or None when the model has none (neither names of its
// own nor 1000 classes, which get ImageNet's).
nb::object class_labels(NativeEngine &self) {
    std::vector<std::string> labels;
    bool complete = true;
    self.call([&](cnx_engine *e) {
        cnx_model_info info;
        cnx_status status = cnx_engine_info(e, &info);
        for (int c = 0; status == CNX_OK && complete && c < info.num_classes; c++) {
            const char *label = cnx_engine_class_label(e, c);
            complete = label != nullptr;
            if (label)
                labels.push_back(label);
        }
        return status;
    });
    return complete ? nb::cast(labels) : nb::none();
}

int checked_count(size_t n) {
    if (n > (size_t)std::numeric_limits<int>::max())
        throw nb::value_error("too many images for one call");
    return (int)n;
}

void check_channels(size_t channels) {
    if (channels != 3)
        throw nb::value_error(("forward takes float32 [N, 3, H, W]; got " +
                               std::to_string(channels) + " channels").c_str());
}

// Host arrays in, numpy logits out; the engine's own stream on a GPU.
nb::object forward(NativeEngine &self, HostImages x) {
    check_channels(x.shape(1));
    int n = checked_count(x.shape(0));
    size_t classes = (size_t)self.info().num_classes;
    std::vector<float> logits((size_t)n * classes);
    self.call([&](cnx_engine *e) {
        cnx_status status = cnx_engine_set_cuda_stream(e, nullptr);
        if (status != CNX_OK)
            return status;
        return cnx_engine_forward(e, x.data(), n, (int)x.shape(2), (int)x.shape(3),
                                  logits.data());
    });
    return numpy_array(std::move(logits), {(size_t)n, classes});
}

// CUDA arrays (DLPack: torch, CuPy) in and out, without a copy, queued on
// the caller's stream (0: the engine's own).
void forward_device(NativeEngine &self, DeviceImages x, DeviceLogits logits, uintptr_t stream) {
    check_channels(x.shape(1));
    int n = checked_count(x.shape(0));
    size_t classes = (size_t)self.info().num_classes;
    if (logits.shape(0) != (size_t)n || logits.shape(1) != classes)
        throw nb::value_error("forward: the logits array must be float32 [N, num_classes]");
    if (x.device_id() != self.cuda_device() || logits.device_id() != self.cuda_device())
        throw nb::value_error(("forward: the arrays are on cuda:" +
                               std::to_string(x.device_id()) + ", the engine on cuda:" +
                               std::to_string(self.cuda_device())).c_str());
    self.call([&](cnx_engine *e) {
        cnx_status status = cnx_engine_set_cuda_stream(e, (void *)stream);
        if (status != CNX_OK)
            return status;
        return cnx_engine_forward_device(e, x.data(), n, (int)x.shape(2), (int)x.shape(3),
                                         logits.data());
    });
}

// Decoded RGB8 images (uint8 [H, W, 3]) through the model. Returns
// (indices int32 [n, k], probs float32 [n, k], errors: "" or the cause per
// image); a failed image's row is -1 and NaN, and the others are unaffected.
nb::tuple classify_images(NativeEngine &self, std::vector<PixelArray> images, int k,
                          std::optional<nb::dict> overrides) {
    int n = checked_count(images.size());
    std::vector<cnx_image> views;
    for (size_t i = 0; i < images.size(); i++)
        views.push_back(image_view(images[i], "image " + std::to_string(i)));
    std::optional<cnx_preprocess> params = self.preprocess_with(overrides);
    const cnx_preprocess used = params ? *params : self.info().preprocess;
    std::vector<cnx_prediction> top((size_t)n * (size_t)k);
    std::vector<cnx_status> statuses(images.size(), CNX_OK);
    std::vector<std::string> errors(images.size());
    self.call([&](cnx_engine *e) {
        cnx_status status = cnx_engine_classify_images(e, views.data(), n,
                                                       params ? &used : nullptr, k, top.data(),
                                                       nullptr, statuses.data());
        bool images_failed = false;
        for (cnx_status s : statuses)
            images_failed |= s != CNX_OK;
        if (!images_failed || status == CNX_ERROR_DEVICE || status == CNX_ERROR_OUT_OF_MEMORY ||
            status == CNX_ERROR_INTERNAL)
            return status; // the call failed as a whole: raised
        // The call names only the first failed image; each one's own cause
        // comes from preprocessing it again, alone (a crop out of range
        // failed every image, and the status says why).
        bool crop_fits = used.crop > 0 && used.crop <= CNX_MAX_SIDE;
        std::vector<uint8_t> scratch(crop_fits ? 3 * (size_t)used.crop * (size_t)used.crop : 0);
        for (size_t i = 0; i < images.size(); i++)
            if (statuses[i] != CNX_OK)
                errors[i] = crop_fits && cnx_preprocess_pixels(&views[i], &used,
                                                               scratch.data()) != CNX_OK
                                ? cnx_last_error()
                                : cnx_status_string(statuses[i]);
        return CNX_OK;
    });
    return nb::make_tuple(top_indices(top, (size_t)n, (size_t)k),
                          top_probabilities(top, (size_t)n, (size_t)k), nb::cast(errors));
}

} // namespace

nb::class_<NativeEngine> bind_engine(nb::module_ &m) {
    return nb::class_<NativeEngine>(m, "Engine")
        .def_static("create", &create, nb::arg("weights"), nb::arg("device"),
                    nb::arg("cuda_device"), nb::arg("precision"), nb::arg("max_batch"),
                    nb::arg("threads"), nb::arg("input_size"), nb::arg("use_test_size"))
        .def_static("create_random", &create_random, nb::arg("architecture"), nb::arg("seed"),
                    nb::arg("device"), nb::arg("cuda_device"), nb::arg("precision"),
                    nb::arg("max_batch"), nb::arg("threads"), nb::arg("input_size"))
        .def("info", &info_dict)
        .def("class_labels", &class_labels)
        .def("forward", &forward, nb::arg("x"))
        .def("forward_device", &forward_device, nb::arg("x"), nb::arg("logits"),
             nb::arg("stream"))
        .def("classify_images", &classify_images, nb::arg("images"), nb::arg("k"),
             nb::arg("preprocess").none())
        .def("close", &NativeEngine::shut_down);
}
