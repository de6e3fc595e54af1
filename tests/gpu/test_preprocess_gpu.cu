// The GPU preprocessing kernel (kernels/preprocess.cu) against the CPU path
// (cnx_preprocess_image), bit for bit: every image of the shared test folder
// plus generated edge cases, packed into ONE launch, for several settings
// (every filter, crop mode, crop offset rule and scaling; torchvision's,
// timm's and Hugging Face's ConvNeXt among them), in both layouts and all
// three dtypes. Then the limits (images the kernel refuses come out NaN
// without disturbing the rest), and an informational throughput figure.
// HAMMING and LANCZOS call the device's sin and cos: their settings are where
// nvcc's math library could differ from glibc's.
//
// usage: test_preprocess_gpu IMAGE_DIR [--quick]
//   --quick: two settings, no throughput (for compute-sanitizer runs:
//   memcheck, and racecheck for the kernel's shared memory).
// Exit: 0 all passed, 1 something failed, 77 no usable CUDA device (skip).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cnx.h"
#include "device.h"
#include "output_bits.h"
#include "preprocess.cuh"

namespace {

int g_passed = 0, g_failed = 0;

void record(bool ok, const char *format, ...) {
    va_list args;
    va_start(args, format);
    printf("%s ", ok ? "PASS" : "FAIL");
    vprintf(format, args);
    printf("\n");
    va_end(args);
    fflush(stdout);
    (ok ? g_passed : g_failed)++;
}

// A CUDA failure ends the test: nothing after it could be trusted.
#define CUDA_CHECK(call)                                                                        \
    do {                                                                                        \
        const cudaError_t err_ = (call);                                                        \
        if (err_ != cudaSuccess) {                                                              \
            printf("FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
            printf("%d passed, %d failed\n", g_passed, g_failed + 1);                          \
            exit(1);                                                                            \
        }                                                                                       \
    } while (0)

struct TestImage {
    std::string name;
    int width = 0, height = 0;
    std::vector<uint8_t> rgb;
    cnx_image view() { return cnx_image{width, height, rgb.data()}; }
};

TestImage noise_image(int width, int height, uint32_t seed) {
    TestImage im;
    im.name = "noise " + std::to_string(width) + "x" + std::to_string(height);
    im.width = width;
    im.height = height;
    im.rgb.resize((size_t)width * height * 3);
    uint32_t s = seed * 2654435761u + 1; // xorshift32, never 0
    for (uint8_t &v : im.rgb) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        v = (uint8_t)(s >> 24);
    }
    return im;
}

bool load_folder(const std::string &dir, std::vector<TestImage> &images) {
    DIR *d = opendir(dir.c_str());
    if (!d) {
        record(false, "cannot open the test image folder %s", dir.c_str());
        return false;
    }
    std::vector<std::string> names;
    while (const dirent *e = readdir(d)) {
        std::string n = e->d_name;
        std::string lower = n;
        std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
        for (const char *ext : {".png", ".jpg", ".jpeg"})
            if (lower.size() > strlen(ext) &&
                lower.compare(lower.size() - strlen(ext), strlen(ext), ext) == 0)
                names.push_back(n);
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    bool ok = !names.empty();
    if (!ok)
        record(false, "no PNG or JPEG images in %s", dir.c_str());
    for (const std::string &n : names) {
        cnx_image decoded;
        if (cnx_image_decode_file((dir + "/" + n).c_str(), 0, &decoded) != CNX_OK) {
            record(false, "decode %s: %s", n.c_str(), cnx_last_error());
            ok = false;
            continue;
        }
        TestImage im;
        im.name = n;
        im.width = decoded.width;
        im.height = decoded.height;
        im.rgb.assign(decoded.rgb, decoded.rgb + (size_t)decoded.width * decoded.height * 3);
        cnx_image_free(&decoded);
        images.push_back(std::move(im));
    }
    return ok;
}

// The images packed one after another (no alignment, on purpose), and the
// device copies the kernel reads.
struct DeviceBatch {
    int n = 0;
    uint64_t pixel_bytes = 0;
    uint8_t *pixels = nullptr;
    cnx_image_desc *descs = nullptr;

    // extra: descriptors appended as they are (for bad ones)
    void upload(const std::vector<TestImage *> &images,
                const std::vector<cnx_image_desc> &extra = {}) {
        std::vector<cnx_image_desc> host;
        for (const TestImage *im : images) {
            host.push_back(cnx_image_desc{pixel_bytes, im->width, im->height});
            pixel_bytes += im->rgb.size();
        }
        host.insert(host.end(), extra.begin(), extra.end());
        n = (int)host.size();
        CUDA_CHECK(cudaMalloc(&pixels, pixel_bytes));
        CUDA_CHECK(cudaMalloc(&descs, host.size() * sizeof(cnx_image_desc)));
        for (size_t i = 0; i < images.size(); i++)
            CUDA_CHECK(cudaMemcpy(pixels + host[i].offset, images[i]->rgb.data(),
                                  images[i]->rgb.size(), cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(descs, host.data(), host.size() * sizeof(cnx_image_desc),
                              cudaMemcpyHostToDevice));
    }
    void release() {
        CUDA_CHECK(cudaFree(pixels));
        CUDA_CHECK(cudaFree(descs));
        pixels = nullptr;
        descs = nullptr;
    }
};

const char *dtype_name(cnx_act_dtype t) {
    return t == CNX_ACT_F32 ? "fp32" : t == CNX_ACT_F16 ? "fp16" : "bf16";
}

uint32_t bits_at(const std::vector<uint8_t> &out, size_t index, size_t size) {
    uint32_t u = 0;
    memcpy(&u, out.data() + index * size, size);
    return u;
}

// Runs the kernel into d_out (first filled with `fill` bytes, so a value it
// fails to write shows up) and returns the output in host memory.
bool run_kernel(const DeviceBatch &batch, const cnx_preprocess &pp, cnx_tensor_layout layout,
                cnx_act_dtype dtype, void *d_out, uint8_t fill, std::vector<uint8_t> &out) {
    const size_t bytes = (size_t)batch.n * 3 * pp.crop * pp.crop * dtype_size(dtype);
    CUDA_CHECK(cudaMemset(d_out, fill, bytes));
    if (cnx_preprocess_forward(d_out, layout, dtype, batch.pixels, batch.pixel_bytes, batch.descs,
                               batch.n, &pp, 0) != CNX_OK) {
        record(false, "cnx_preprocess_forward: %s", cnx_last_error());
        return false;
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    out.resize(bytes);
    CUDA_CHECK(cudaMemcpy(out.data(), d_out, bytes, cudaMemcpyDeviceToHost));
    return true;
}

// Index of value (b, c, i, j) in the output.
size_t out_index(cnx_tensor_layout layout, int b, int c, int i, int j, int crop) {
    const size_t k = (size_t)crop;
    if (layout == CNX_LAYOUT_NHWC)
        return (((size_t)b * k + i) * k + j) * 3 + c;
    return (((size_t)b * 3 + c) * k + i) * k + j;
}

// Counts the values of images [0, n) of the output that differ from ref
// (fp32 NCHW, crop x crop per channel), printing the first few.
size_t count_differences(const std::vector<uint8_t> &out, const std::vector<float> &ref, int n,
                         int crop, cnx_tensor_layout layout, cnx_act_dtype dtype,
                         const std::vector<TestImage *> &images) {
    size_t differ = 0;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < crop; i++)
                for (int j = 0; j < crop; j++) {
                    const float want = ref[(((size_t)b * 3 + c) * crop + i) * crop + j];
                    const uint32_t w = expected_bits(want, dtype);
                    const uint32_t g =
                        bits_at(out, out_index(layout, b, c, i, j, crop), dtype_size(dtype));
                    if (w == g)
                        continue;
                    if (differ++ < 5)
                        printf("  %s: channel %d pixel (%d, %d): got bits 0x%x, want 0x%x (%.9g)\n",
                               images[b]->name.c_str(), c, i, j, g, w, (double)want);
                }
    return differ;
}

const double kHuggingFaceRescale = 0.00392156862745098; // ConvNextImageProcessor's 1/255

struct Setting {
    int resize, crop, normalize;
    cnx_interpolation filter;
    cnx_crop_mode mode;
    cnx_crop_offset offset;
    double rescale_factor;
    bool quick; // also run with --quick
};

// One setting: the CPU reference, then every layout and dtype, then a rerun.
void check_setting(const Setting &s, const DeviceBatch &batch, std::vector<TestImage *> &images,
                   void *d_out) {
    cnx_preprocess pp = cnx_default_preprocess();
    pp.resize = s.resize;
    pp.crop = s.crop;
    pp.normalize = s.normalize;
    pp.interpolation = s.filter;
    pp.crop_mode = s.mode;
    pp.crop_offset = s.offset;
    pp.rescale_factor = s.rescale_factor;
    static const char *const filters[] = {"bilinear", "bicubic", "box", "hamming", "lanczos"};
    static const char *const modes[] = {"center", "squash", "border"};
    char rescale[48] = "";
    if (s.rescale_factor > 0)
        snprintf(rescale, sizeof rescale, " rescale %.17g", s.rescale_factor);
    char label[160];
    snprintf(label, sizeof label, "%s %s Resize(%d)/Crop(%d)%s%s%s", filters[s.filter],
             modes[s.mode], s.resize, s.crop, s.offset == CNX_CROP_OFFSET_FLOOR ? " floor" : "",
             rescale, s.normalize ? "" : " no-normalize");

    const size_t per_image = (size_t)3 * s.crop * s.crop;
    std::vector<float> ref(per_image * images.size());
    bool planned = true;
    for (size_t b = 0; b < images.size(); b++) {
        cnx_image im = images[b]->view();
        if (cnx_preprocess_image(&im, &pp, ref.data() + b * per_image) != CNX_OK) {
            record(false, "%s: CPU reference for %s: %s", label, images[b]->name.c_str(),
                   cnx_last_error());
            return;
        }
        if (cnx_preprocess_check_image(im.width, im.height, &pp) != CNX_OK) {
            printf("  %s: %s\n", images[b]->name.c_str(), cnx_last_error());
            planned = false;
        }
    }
    record(planned, "%s: cnx_preprocess_check_image accepts all %zu images", label,
           images.size());

    for (cnx_tensor_layout layout : {CNX_LAYOUT_NCHW, CNX_LAYOUT_NHWC})
        for (cnx_act_dtype dtype : {CNX_ACT_F32, CNX_ACT_F16, CNX_ACT_BF16}) {
            std::vector<uint8_t> out;
            if (!run_kernel(batch, pp, layout, dtype, d_out, 0xa5, out))
                continue;
            const size_t differ =
                count_differences(out, ref, batch.n, s.crop, layout, dtype, images);
            record(differ == 0, "%s %s %s: %zu of %zu values differ from the CPU path", label,
                   layout == CNX_LAYOUT_NCHW ? "NCHW" : "NHWC", dtype_name(dtype), differ,
                   per_image * images.size());
        }

    // The same batch again, into memory filled differently: identical bits.
    std::vector<uint8_t> first, second;
    if (run_kernel(batch, pp, CNX_LAYOUT_NCHW, CNX_ACT_F32, d_out, 0x5a, first) &&
        run_kernel(batch, pp, CNX_LAYOUT_NCHW, CNX_ACT_F32, d_out, 0xc3, second))
        record(first == second, "%s: two runs of the batch give identical output", label);
}

// Arguments refused on the host, before any CUDA call (runs without a GPU).
void check_arguments() {
    cnx_preprocess pp = cnx_default_preprocess();
    char dummy[16];
    void *p = dummy;
    const uint8_t *px = (const uint8_t *)dummy;
    const cnx_image_desc *d = (const cnx_image_desc *)dummy;
    auto expect = [](const char *what, cnx_status got, cnx_status want) {
        const bool ok = got == want && (want == CNX_OK || cnx_last_error()[0] != '\0');
        record(ok, "arguments: %s -> %s%s%s", what, cnx_status_string(got),
               got == CNX_OK ? "" : ": ", got == CNX_OK ? "" : cnx_last_error());
    };
    expect("n = 0 with NULL pointers",
           cnx_preprocess_forward(nullptr, CNX_LAYOUT_NCHW, CNX_ACT_F32, nullptr, 0, nullptr, 0,
                                  &pp, 0),
           CNX_OK);
    expect("n = -1", cnx_preprocess_forward(p, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, -1, &pp, 0),
           CNX_ERROR_INVALID_ARGUMENT);
    expect("n = 65536",
           cnx_preprocess_forward(p, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, 65536, &pp, 0),
           CNX_ERROR_INVALID_ARGUMENT);
    expect("NULL output",
           cnx_preprocess_forward(nullptr, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, 1, &pp, 0),
           CNX_ERROR_INVALID_ARGUMENT);
    expect("NULL params",
           cnx_preprocess_forward(p, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, 1, nullptr, 0),
           CNX_ERROR_INVALID_ARGUMENT);
    expect("layout 7",
           cnx_preprocess_forward(p, (cnx_tensor_layout)7, CNX_ACT_F32, px, 16, d, 1, &pp, 0),
           CNX_ERROR_INVALID_ARGUMENT);
    expect("dtype 9",
           cnx_preprocess_forward(p, CNX_LAYOUT_NHWC, (cnx_act_dtype)9, px, 16, d, 1, &pp, 0),
           CNX_ERROR_INVALID_ARGUMENT);
    cnx_preprocess bad = pp;
    bad.crop = 0;
    expect("crop 0", cnx_preprocess_forward(p, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, 1, &bad, 0),
           CNX_ERROR_INVALID_ARGUMENT);
    bad = pp;
    bad.resize = (1 << 20) + 1;
    expect("resize 2^20 + 1",
           cnx_preprocess_forward(p, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, 1, &bad, 0),
           CNX_ERROR_INVALID_ARGUMENT);
    bad = pp;
    bad.std[1] = 0.0f;
    expect("std 0", cnx_preprocess_forward(p, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, 1, &bad, 0),
           CNX_ERROR_INVALID_ARGUMENT);
    bad.normalize = 0;
    expect("std 0 without normalize, n = 0",
           cnx_preprocess_forward(p, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, 0, &bad, 0), CNX_OK);
    bad = pp;
    bad.mean[2] = NAN;
    expect("mean NaN",
           cnx_preprocess_forward(p, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, 1, &bad, 0),
           CNX_ERROR_INVALID_ARGUMENT);

    expect("check_image 300x236", cnx_preprocess_check_image(300, 236, &pp), CNX_OK);
    expect("check_image 0x5", cnx_preprocess_check_image(0, 5, &pp), CNX_ERROR_INVALID_ARGUMENT);
    expect("check_image 1x5000000 (resized side >= 2^30)",
           cnx_preprocess_check_image(1, 5000000, &pp), CNX_ERROR_TOO_LARGE);
    cnx_preprocess tiny = pp;
    tiny.resize = 1;
    expect("check_image 1600x1600 to Resize(1)", cnx_preprocess_check_image(1600, 1600, &tiny),
           CNX_ERROR_UNSUPPORTED);
    tiny.resize = 9; // the header's promise: resize >= 9 takes every image under the pixel limit
    // (12691x14095 needs the most taps at 9: 5958 of the 6120, found by search.)
    expect("check_image 12691x14095 to Resize(9)",
           cnx_preprocess_check_image(12691, 14095, &tiny), CNX_OK);
    expect("check_image 13377x13377 to Resize(9)",
           cnx_preprocess_check_image(13377, 13377, &tiny), CNX_OK);
    // The same promise for the wider filters (the worst images, found by search).
    tiny.interpolation = CNX_INTERPOLATION_BICUBIC;
    tiny.resize = 18;
    expect("check_image 13618x13141 to bicubic Resize(18)",
           cnx_preprocess_check_image(13618, 13141, &tiny), CNX_OK);
    tiny.interpolation = CNX_INTERPOLATION_LANCZOS;
    tiny.resize = 27;
    expect("check_image 13618x13141 to lanczos Resize(27)",
           cnx_preprocess_check_image(13618, 13141, &tiny), CNX_OK);
    tiny.resize = 1;
    expect("check_image 1200x1200 to lanczos Resize(1) (bilinear fits)",
           cnx_preprocess_check_image(1200, 1200, &tiny), CNX_ERROR_UNSUPPORTED);

    // Choices the kernel cannot run, refused as cnx_preprocess_image refuses them.
    bad = pp;
    bad.interpolation = CNX_INTERPOLATION_NEAREST;
    expect("nearest",
           cnx_preprocess_forward(p, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, 1, &bad, 0),
           CNX_ERROR_UNSUPPORTED);
    expect("check_image with nearest", cnx_preprocess_check_image(300, 236, &bad),
           CNX_ERROR_UNSUPPORTED);
    bad.interpolation = (cnx_interpolation)7; // (values in the enums' range: C++)
    expect("interpolation 7",
           cnx_preprocess_forward(p, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, 1, &bad, 0),
           CNX_ERROR_INVALID_ARGUMENT);
    bad = pp;
    bad.crop_mode = CNX_CROP_MODE_COUNT;
    expect("crop mode COUNT",
           cnx_preprocess_forward(p, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, 1, &bad, 0),
           CNX_ERROR_INVALID_ARGUMENT);
    bad = pp;
    bad.crop_offset = (cnx_crop_offset)3;
    expect("crop offset 3",
           cnx_preprocess_forward(p, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, 1, &bad, 0),
           CNX_ERROR_INVALID_ARGUMENT);
    bad = pp;
    bad.rescale_factor = -1.0;
    expect("rescale_factor -1",
           cnx_preprocess_forward(p, CNX_LAYOUT_NCHW, CNX_ACT_F32, px, 16, d, 1, &bad, 0),
           CNX_ERROR_INVALID_ARGUMENT);
    bad = pp;
    bad.crop_mode = CNX_CROP_MODE_BORDER;
    bad.resize = 224;
    expect("check_image 1000x1 to border Resize(224) (a side of 0)",
           cnx_preprocess_check_image(1000, 1, &bad), CNX_ERROR_UNSUPPORTED);
    expect("check_image 1000x3 to border Resize(224)", cnx_preprocess_check_image(1000, 3, &bad),
           CNX_OK);
}

bool all_nan(const std::vector<uint8_t> &out, int b, int crop) {
    const size_t per = (size_t)3 * crop * crop;
    for (size_t k = 0; k < per; k++) {
        float v;
        memcpy(&v, out.data() + (b * per + k) * 4, 4);
        if (!std::isnan(v))
            return false;
    }
    return true;
}

// Images the kernel refuses come out NaN; their neighbours stay exact.
void check_limits(void *d_out) {
    cnx_preprocess pp = cnx_default_preprocess();
    pp.resize = 1;
    pp.crop = 2; // larger than the resized 1x1: padding as well
    TestImage a = noise_image(300, 236, 101), steep = noise_image(1600, 1600, 102),
              b = noise_image(7, 5, 103);
    std::vector<TestImage *> images = {&a, &steep, &b};
    // After the three images: pixels running past the buffer's end, and a width of 0.
    const uint64_t total = a.rgb.size() + steep.rgb.size() + b.rgb.size();
    DeviceBatch batch;
    batch.upload(images, {cnx_image_desc{total - 10, 2, 2}, cnx_image_desc{0, 0, 5}});

    std::vector<uint8_t> out;
    if (!run_kernel(batch, pp, CNX_LAYOUT_NCHW, CNX_ACT_F32, d_out, 0xa5, out)) {
        batch.release();
        return;
    }
    const size_t per = (size_t)3 * pp.crop * pp.crop;
    std::vector<float> ref(per * 3, 0.0f);
    bool ok = true;
    for (int k : {0, 2}) {
        cnx_image im = images[k]->view();
        ok = ok && cnx_preprocess_image(&im, &pp, ref.data() + k * per) == CNX_OK;
    }
    std::vector<uint8_t> got0(out.begin(), out.begin() + per * 4);
    std::vector<uint8_t> got2(out.begin() + 2 * per * 4, out.begin() + 3 * per * 4);
    std::vector<float> ref0(ref.begin(), ref.begin() + per), ref2(ref.begin() + 2 * per, ref.end());
    std::vector<TestImage *> one0 = {&a}, one2 = {&b};
    const size_t differ =
        count_differences(got0, ref0, 1, pp.crop, CNX_LAYOUT_NCHW, CNX_ACT_F32, one0) +
        count_differences(got2, ref2, 1, pp.crop, CNX_LAYOUT_NCHW, CNX_ACT_F32, one2);
    record(ok && differ == 0, "limits: the good images beside refused ones are exact (%zu differ)",
           differ);
    record(all_nan(out, 1, pp.crop), "limits: 1600x1600 to Resize(1) (too many taps) is NaN");
    record(all_nan(out, 3, pp.crop), "limits: a descriptor past the pixel buffer is NaN");
    record(all_nan(out, 4, pp.crop), "limits: a descriptor of width 0 is NaN");
    batch.release();

    // BORDER: 1000x1 to a long side of 224 leaves a height of 0 (NaN); the
    // 1000x3 beside it (a height of 0.67 -> 1, mostly padding) is exact.
    pp = cnx_default_preprocess();
    pp.crop_mode = CNX_CROP_MODE_BORDER;
    pp.interpolation = CNX_INTERPOLATION_BICUBIC;
    pp.resize = 224;
    pp.crop = 40;
    TestImage wide = noise_image(1000, 3, 201), empty = noise_image(1000, 1, 202);
    std::vector<TestImage *> two = {&wide, &empty};
    DeviceBatch border;
    border.upload(two);
    if (run_kernel(border, pp, CNX_LAYOUT_NHWC, CNX_ACT_F32, d_out, 0xa5, out)) {
        std::vector<float> want((size_t)3 * pp.crop * pp.crop);
        cnx_image im = wide.view();
        const bool ref_ok = cnx_preprocess_image(&im, &pp, want.data()) == CNX_OK;
        std::vector<TestImage *> first = {&wide};
        const size_t n = count_differences(out, want, 1, pp.crop, CNX_LAYOUT_NHWC, CNX_ACT_F32,
                                           first);
        record(ref_ok && n == 0, "limits: border 1000x3 to 224 is exact (%zu differ)", n);
        record(all_nan(out, 1, pp.crop), "limits: border 1000x1 to 224 (a side of 0) is NaN");
    }
    border.release();
}

// Informational: images/s for 256 random 500x375 sources, after warm-up.
void measure_throughput(const char *device) {
    const int n = 256, iterations = 20;
    std::vector<TestImage> sources;
    std::vector<TestImage *> images;
    sources.reserve(n);
    for (int k = 0; k < n; k++)
        sources.push_back(noise_image(500, 375, 1000 + k));
    for (TestImage &im : sources)
        images.push_back(&im);
    DeviceBatch batch;
    batch.upload(images);
    const cnx_preprocess pp = cnx_default_preprocess();
    void *d_out;
    CUDA_CHECK(cudaMalloc(&d_out, (size_t)n * 3 * pp.crop * pp.crop * 4));
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    struct Variant {
        cnx_tensor_layout layout;
        cnx_act_dtype dtype;
        const char *name;
    };
    for (const Variant &v : {Variant{CNX_LAYOUT_NCHW, CNX_ACT_F32, "NCHW fp32"},
                             Variant{CNX_LAYOUT_NHWC, CNX_ACT_F16, "NHWC fp16"}}) {
        bool ok = true;
        for (int k = 0; k < 3 + iterations && ok; k++) {
            if (k == 3)
                CUDA_CHECK(cudaEventRecord(start));
            ok = cnx_preprocess_forward(d_out, v.layout, v.dtype, batch.pixels, batch.pixel_bytes,
                                        batch.descs, n, &pp, 0) == CNX_OK;
        }
        if (!ok) {
            record(false, "throughput launch: %s", cnx_last_error());
            continue;
        }
        CUDA_CHECK(cudaEventRecord(stop));
        CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        printf("throughput: %.0f images/s (%d x 500x375 -> Resize(%d)/CenterCrop(%d), %s, "
               "%.3f ms per batch, %s)\n",
               n * iterations / (ms / 1000.0), n, pp.resize, pp.crop, v.name, ms / iterations,
               device);
    }
    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(stop));
    CUDA_CHECK(cudaFree(d_out));
    batch.release();
}

} // namespace

int main(int argc, char **argv) {
    const bool quick = argc == 3 && strcmp(argv[2], "--quick") == 0;
    if (argc != 2 && !quick) {
        fprintf(stderr, "usage: %s IMAGE_DIR [--quick]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, nullptr, _IOLBF, 0);
    check_arguments();

    char device[256], why[256];
    if (!cnx_cuda_usable(0, device, sizeof device, why, sizeof why)) {
        printf("SKIP: %s\n", why);
        if (g_failed) { // the host-side checks still count
            printf("%d passed, %d failed\n", g_passed, g_failed);
            return 1;
        }
        return 77;
    }
    CUDA_CHECK(cudaSetDevice(0));
    printf("device: %s\n", device);

    std::vector<TestImage> owned;
    load_folder(argv[1], owned);
    // Edge cases: panoramas both ways, .5 crop offsets (237x236 and 236x237
    // at 236/256; 300x236 in both directions at 37; 3x500 at 236), no resize
    // on one or both axes, upscales, a 1x1, odd/odd scales (75x113 at 37:
    // filter bounds that land exactly on integers), and a large image that
    // needs sub-tiles and streamed rows at 37 and streamed rows at 236.
    const int sizes[][2] = {{2400, 160}, {160, 2400}, {236, 300}, {300, 236}, {236, 236},
                            {224, 224},  {1, 1},      {50, 70},   {100, 20},  {237, 236},
                            {236, 237},  {75, 113},   {3, 500},   {2000, 1900}};
    uint32_t seed = 1;
    for (const auto &s : sizes)
        owned.push_back(noise_image(s[0], s[1], seed++));
    std::vector<TestImage *> images;
    for (TestImage &im : owned)
        images.push_back(&im);
    printf("batch: %zu images in one launch\n", images.size());

    DeviceBatch batch;
    batch.upload(images);
    void *d_out;
    CUDA_CHECK(cudaMalloc(&d_out, images.size() * 3 * 224 * 224 * 4));
    const cnx_interpolation BIL = CNX_INTERPOLATION_BILINEAR, BIC = CNX_INTERPOLATION_BICUBIC,
                            BOX = CNX_INTERPOLATION_BOX, HAM = CNX_INTERPOLATION_HAMMING,
                            LAN = CNX_INTERPOLATION_LANCZOS;
    const cnx_crop_mode CEN = CNX_CROP_MODE_CENTER, SQU = CNX_CROP_MODE_SQUASH,
                        BOR = CNX_CROP_MODE_BORDER;
    const cnx_crop_offset RND = CNX_CROP_OFFSET_ROUND, FLR = CNX_CROP_OFFSET_FLOOR;
    const Setting settings[] = {
        // torchvision's ConvNeXt (and variants of its sizes).
        {236, 224, 1, BIL, CEN, RND, 0.0, true},
        {256, 224, 1, BIL, CEN, RND, 0.0, false},
        {37, 32, 1, BIL, CEN, RND, 0.0, true},
        {100, 224, 1, BIL, CEN, RND, 0.0, false},
        {236, 224, 0, BIL, CEN, RND, 0.0, false},
        // timm's (bicubic; squash and border) and Hugging Face's (bicubic,
        // floor offsets, rescale 1/255 in double).
        {256, 224, 1, BIC, CEN, RND, 0.0, false},
        {256, 224, 1, BIC, CEN, FLR, kHuggingFaceRescale, false},
        {236, 224, 1, BIC, SQU, RND, 0.0, false},
        {236, 224, 1, BIC, BOR, FLR, 0.0, true}, // padding in the mean color
        // The other filters, with padding (29 < 32 and BORDER's short sides:
        // odd margins) and scaling.
        {37, 32, 1, BOX, CEN, RND, 0.0, false},
        {37, 32, 1, HAM, CEN, RND, 0.0, false},
        {37, 32, 0, LAN, CEN, FLR, 1.0, false},
        {100, 96, 1, LAN, BOR, RND, kHuggingFaceRescale, false},
        {29, 32, 1, HAM, CEN, FLR, 0.0, false},
    };
    for (const Setting &s : settings)
        if (!quick || s.quick)
            check_setting(s, batch, images, d_out);
    batch.release();

    check_limits(d_out);
    CUDA_CHECK(cudaFree(d_out));

    if (!quick)
        measure_throughput(device);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
