// The preprocessing kernel (kernels/preprocess.cu) run on the CPU, against
// cnx_preprocess_image, bit for bit, for every filter, crop mode, crop offset
// rule, rescale factor, layout and output dtype. No GPU needed: the kernel's
// device code is compiled by the host compiler and run by the emulation of
// the forward tests (emulate_cuda.h, emulate_runtime.cpp): each CUDA thread
// of a block is a fiber, __syncthreads() switches fibers in the order
// CNX_EMU_THREAD_ORDER says, shared memory starts as NaN in every block, and
// a block whose threads do not all reach the same barrier fails. Buffers end
// at an inaccessible page, so a read or write past them crashes. This checks
// the kernel's indexing, tiling, chunking, padding and barriers; what only a
// GPU shows (nvcc's floating point, the device's sin and cos for HAMMING and
// LANCZOS, speed) is test_preprocess_gpu's.
//
// usage: emulate_preprocess IMAGE_DIR
#include "emulate_cuda.h"
#include "emulate_api.h"

#include <sys/mman.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cnx.h"

#define CNX_PREPROCESS_EMULATION
#include "preprocess.cu"

#include "output_bits.h"

namespace {

// The launch cnx_preprocess_forward makes: grid (tiles of the crop, images).
void launch(const Args &a, int n, cnx_act_dtype dtype) {
    void (*kernel)(Args) = dtype == CNX_ACT_F16    ? preprocess_kernel<__half>
                           : dtype == CNX_ACT_BF16 ? preprocess_kernel<__nv_bfloat16>
                                                   : preprocess_kernel<float>;
    emu::launch(dim3((unsigned)(a.tiles_x * a.tiles_x), (unsigned)n), dim3(kThreads), 0, nullptr,
                [=]() { kernel(a); });
    if (cudaGetLastError() != cudaSuccess) {
        printf("FAIL: the launch of %d images was refused\n", n);
        exit(1);
    }
}

// `bytes` of memory that end where an inaccessible page begins (never freed).
void *guarded(size_t bytes) {
    const size_t page = 4096, span = (bytes + page - 1) / page * page;
    char *m = (char *)mmap(nullptr, span + 2 * page, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        printf("FAIL: mmap of %zu bytes\n", bytes);
        exit(1);
    }
    mprotect(m, page, PROT_NONE);
    mprotect(m + page + span, page, PROT_NONE);
    return m + page + span - bytes;
}

int passed = 0, failed = 0;

struct Image {
    std::string name;
    int width, height;
    std::vector<uint8_t> rgb;
};

uint32_t next_random(uint32_t &s) { // xorshift32
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
}

Image noise(int width, int height, uint32_t seed) {
    Image im{"noise " + std::to_string(width) + "x" + std::to_string(height), width, height, {}};
    im.rgb.resize((size_t)width * height * 3);
    uint32_t s = seed * 2654435761u + 1;
    for (uint8_t &v : im.rgb)
        v = (uint8_t)(next_random(s) >> 24);
    return im;
}

// Packs the images (plus `extra` descriptors), runs the emulated kernel with
// the launch arguments cnx_preprocess_forward would pass, and returns the
// output (n images in `dtype`).
void *run(const std::vector<Image> &images, const cnx_preprocess &pp, bool nhwc,
          cnx_act_dtype dtype = CNX_ACT_F32, const std::vector<cnx_image_desc> &extra = {}) {
    std::vector<cnx_image_desc> descs;
    uint64_t total = 0;
    for (const Image &im : images) {
        descs.push_back({total, im.width, im.height});
        total += im.rgb.size();
    }
    descs.insert(descs.end(), extra.begin(), extra.end());
    uint8_t *pixels = (uint8_t *)guarded(total);
    for (size_t i = 0; i < images.size(); i++)
        memcpy(pixels + descs[i].offset, images[i].rgb.data(), images[i].rgb.size());
    const size_t bytes = descs.size() * 3 * (size_t)pp.crop * pp.crop * dtype_size(dtype);
    void *out = guarded(bytes);
    memset(out, 0xa5, bytes); // a value never written shows up
    launch(make_args(out, nhwc, pixels, total, descs.data(), pp), (int)descs.size(), dtype);
    return out;
}

// Values of images[k] (k in `which`) that differ from cnx_preprocess_image.
size_t compare(const std::vector<Image> &images, const std::vector<int> &which,
               const cnx_preprocess &pp, bool nhwc, const void *out,
               cnx_act_dtype dtype = CNX_ACT_F32) {
    const int crop = pp.crop;
    const size_t per = (size_t)3 * crop * crop, size = dtype_size(dtype);
    std::vector<float> ref(per);
    size_t differ = 0;
    for (int b : which) {
        cnx_image im{images[b].width, images[b].height,
                     const_cast<uint8_t *>(images[b].rgb.data())};
        if (cnx_preprocess_image(&im, &pp, ref.data()) != CNX_OK) {
            printf("  CPU reference for %s: %s\n", images[b].name.c_str(), cnx_last_error());
            return per;
        }
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < crop; i++)
                for (int j = 0; j < crop; j++) {
                    const float want = ref[((size_t)c * crop + i) * crop + j];
                    const size_t at = nhwc ? (((size_t)b * crop + i) * crop + j) * 3 + c
                                           : (((size_t)b * 3 + c) * crop + i) * crop + j;
                    uint32_t got = 0;
                    memcpy(&got, (const char *)out + at * size, size);
                    const uint32_t bits = expected_bits(want, dtype);
                    if (got != bits && differ++ < 3)
                        printf("  %s: channel %d pixel (%d, %d): got bits 0x%x, want 0x%x "
                               "(%.9g)\n",
                               images[b].name.c_str(), c, i, j, got, bits, (double)want);
                }
    }
    return differ;
}

void record(bool ok, const std::string &what) {
    printf("%s %s\n", ok ? "PASS" : "FAIL", what.c_str());
    fflush(stdout);
    (ok ? passed : failed)++;
}

std::vector<Image> test_batch(const char *dir) {
    std::vector<Image> images;
    std::vector<std::string> names;
    if (DIR *d = opendir(dir)) {
        while (const dirent *e = readdir(d)) {
            const std::string n = e->d_name;
            if (n.size() > 4 && (n.compare(n.size() - 4, 4, ".png") == 0 ||
                                 n.compare(n.size() - 4, 4, ".jpg") == 0))
                names.push_back(n);
        }
        closedir(d);
    }
    std::sort(names.begin(), names.end());
    record(!names.empty(), std::string("test images found in ") + dir);
    for (const std::string &n : names) {
        cnx_image im;
        if (cnx_image_decode_file((std::string(dir) + "/" + n).c_str(), 0, &im) != CNX_OK) {
            record(false, "decode " + n + ": " + cnx_last_error());
            continue;
        }
        images.push_back({n, im.width, im.height,
                          std::vector<uint8_t>(im.rgb, im.rgb + (size_t)im.width * im.height * 3)});
        cnx_image_free(&im);
    }
    // The same edge cases as test_preprocess_gpu.
    const int sizes[][2] = {{2400, 160}, {160, 2400}, {236, 300}, {300, 236}, {236, 236},
                            {224, 224},  {1, 1},      {50, 70},   {100, 20},  {237, 236},
                            {236, 237},  {75, 113},   {3, 500},   {2000, 1900}};
    uint32_t seed = 1;
    for (const auto &s : sizes)
        images.push_back(noise(s[0], s[1], seed++));
    return images;
}

const char *const kFilterNames[] = {"bilinear", "bicubic", "box", "hamming", "lanczos"};
const char *const kModeNames[] = {"center", "squash", "border"};
const char *const kDtypeNames[] = {"fp32", "fp16", "bf16"};

// What a case sets, as a label.
std::string describe(const cnx_preprocess &pp, bool nhwc, cnx_act_dtype dtype) {
    char rescale[40] = "";
    if (pp.rescale_factor > 0)
        snprintf(rescale, sizeof rescale, " rescale %.17g", pp.rescale_factor);
    return std::string(kFilterNames[pp.interpolation]) + " " + kModeNames[pp.crop_mode] + " " +
           std::to_string(pp.resize) + "/" + std::to_string(pp.crop) +
           (pp.crop_offset == CNX_CROP_OFFSET_FLOOR ? " floor" : "") + rescale +
           (pp.normalize ? "" : " no-normalize") + (nhwc ? " NHWC " : " NCHW ") +
           kDtypeNames[dtype];
}

// Random sizes, resize and crop (steep: small resizes of large images, which
// sub-tile and stream), and random choices of filter, crop mode, crop offset,
// scaling, layout and dtype; 8 images per launch.
void fuzz(int launches, bool steep, uint32_t seed) {
    uint32_t s = seed;
    auto uniform = [&](int lo, int hi) {
        return lo + (int)(next_random(s) % (uint32_t)(hi - lo + 1));
    };
    auto log_uniform = [&](int hi) { // 1..hi, as many of each size class
        const double u = uniform(0, 1 << 20) / double(1 << 20);
        return std::max(1, (int)std::exp(u * std::log((double)hi)));
    };
    const double rescales[] = {0.0, 0.00392156862745098, 1.0, 1.0 / 127.5};
    int bad = 0;
    for (int k = 0; k < launches; k++) {
        cnx_preprocess pp = cnx_default_preprocess();
        pp.resize = steep ? uniform(1, 12) : log_uniform(400);
        pp.crop = steep ? uniform(1, 40) : log_uniform(400);
        pp.normalize = uniform(0, 1);
        pp.interpolation = (cnx_interpolation)uniform(0, 4);
        pp.crop_mode = (cnx_crop_mode)uniform(0, 2);
        pp.crop_offset = (cnx_crop_offset)uniform(0, 1);
        pp.rescale_factor = rescales[uniform(0, 3)];
        if (uniform(0, 1))
            for (int c = 0; c < 3; c++)
                pp.mean[c] = (float)uniform(0, 255) / 255.0f; // BORDER's fill rounds from it
        std::vector<Image> images;
        while (images.size() < 8) {
            const int w = steep ? uniform(50, 1700) : log_uniform(900);
            const int h = steep ? uniform(50, 1700) : log_uniform(900);
            if (cnx_preprocess_check_image(w, h, &pp) == CNX_OK)
                images.push_back(noise(w, h, next_random(s)));
        }
        const bool nhwc = uniform(0, 1);
        const cnx_act_dtype dtype = (cnx_act_dtype)uniform(0, 2);
        const void *out = run(images, pp, nhwc, dtype);
        if (compare(images, {0, 1, 2, 3, 4, 5, 6, 7}, pp, nhwc, out, dtype) != 0) {
            printf("  (launch %d: %s)\n", k, describe(pp, nhwc, dtype).c_str());
            bad++;
        }
    }
    record(bad == 0, std::to_string(bad) + " of " + std::to_string(launches) +
                         (steep ? " steep" : "") + " random launches of 8 images differ");
}

// One launch of `images` under pp against the CPU path; returns the output.
const void *check(const std::vector<Image> &images, const cnx_preprocess &pp, bool nhwc,
                  cnx_act_dtype dtype) {
    std::vector<int> all(images.size());
    for (size_t b = 0; b < images.size(); b++)
        all[b] = (int)b;
    const void *out = run(images, pp, nhwc, dtype);
    const size_t differ = compare(images, all, pp, nhwc, out, dtype);
    record(differ == 0, describe(pp, nhwc, dtype) + ": " + std::to_string(differ) +
                            " values differ from the CPU path");
    return out;
}

// Bytes where two outputs of the same shape differ.
size_t bytes_differ(const void *a, const void *b, size_t bytes) {
    size_t n = 0;
    for (size_t k = 0; k < bytes; k++)
        n += ((const uint8_t *)a)[k] != ((const uint8_t *)b)[k];
    return n;
}

// Every filter, crop mode, crop offset rule and scaling, on chosen sizes.
void check_choices(const std::vector<Image> &batch) {
    // Each filter on the whole batch (downscales of the photos and the large
    // noise, upscales of the small ones); each must give its own values.
    const void *bilinear = nullptr;
    for (int f = 0; f < 5; f++) {
        cnx_preprocess pp = cnx_default_preprocess();
        pp.interpolation = (cnx_interpolation)f;
        pp.resize = 37;
        pp.crop = 32;
        const void *out = check(batch, pp, false, CNX_ACT_F32);
        if (f == 0) {
            bilinear = out;
        } else {
            const size_t n = bytes_differ(out, bilinear, batch.size() * 3 * 32 * 32 * 4);
            record(n > 0, std::string(kFilterNames[f]) + " differs from bilinear in " +
                              std::to_string(n) + " bytes");
        }
    }

    // Sizes for the crop modes: 75x113 at BORDER(37) has a short side of
    // 24.56 -> 25 (rounded, not truncated); 5x8 at BORDER(4) one of 2.5 -> 2
    // (half to even); 300x236 and 236x300 leave odd margins either way.
    std::vector<Image> shapes;
    const int sizes[][2] = {{300, 236}, {236, 300}, {75, 113}, {113, 75},  {5, 8},
                            {8, 5},     {50, 70},   {37, 37},  {1000, 3}, {640, 480}};
    uint32_t seed = 500;
    for (const auto &sz : sizes)
        shapes.push_back(noise(sz[0], sz[1], seed++));

    struct Case {
        cnx_interpolation filter;
        cnx_crop_mode mode;
        cnx_crop_offset offset;
        int resize, crop, normalize;
        double rescale;
        float mean; // all three channels; < 0: the ImageNet default
        bool nhwc;
        cnx_act_dtype dtype;
    };
    const cnx_interpolation BIL = CNX_INTERPOLATION_BILINEAR, BIC = CNX_INTERPOLATION_BICUBIC,
                            BOX = CNX_INTERPOLATION_BOX, HAM = CNX_INTERPOLATION_HAMMING,
                            LAN = CNX_INTERPOLATION_LANCZOS;
    const cnx_crop_mode CEN = CNX_CROP_MODE_CENTER, SQU = CNX_CROP_MODE_SQUASH,
                        BOR = CNX_CROP_MODE_BORDER;
    const cnx_crop_offset RND = CNX_CROP_OFFSET_ROUND, FLR = CNX_CROP_OFFSET_FLOOR;
    const double HF = 0.00392156862745098; // Hugging Face's rescale_factor, 1/255
    const Case cases[] = {
        // Hugging Face's ConvNeXt: bicubic, floor offsets, 1/255 in double.
        {BIC, CEN, FLR, 39, 32, 1, HF, -1, false, CNX_ACT_F32},
        {BIC, CEN, RND, 39, 32, 1, HF, -1, true, CNX_ACT_F16},
        // Crop larger than the resized image: padding, odd margins both ways.
        {BIC, CEN, RND, 29, 32, 1, 0.0, -1, false, CNX_ACT_F32},
        {BIC, CEN, FLR, 29, 32, 1, 0.0, -1, true, CNX_ACT_BF16},
        // timm's squash and border, the border filled with round(255 * mean).
        {BIC, SQU, RND, 39, 32, 1, 0.0, -1, false, CNX_ACT_F32},
        {LAN, SQU, FLR, 35, 32, 0, 1.0, -1, true, CNX_ACT_F16},
        {BIC, BOR, RND, 37, 32, 1, 0.0, -1, false, CNX_ACT_F32},
        {BIC, BOR, FLR, 37, 32, 1, HF, -1, true, CNX_ACT_BF16},
        {HAM, BOR, FLR, 37, 32, 0, 0.0, 0.5f, false, CNX_ACT_F32}, // fill 127.5 -> 128
        {BOX, BOR, RND, 4, 5, 1, 0.0, 0.5f, true, CNX_ACT_F32},
        {LAN, BOR, FLR, 4, 5, 0, 1.0, -1, false, CNX_ACT_F16},
        // Scaling without normalization, in every dtype.
        {BIL, CEN, FLR, 37, 32, 0, HF, -1, false, CNX_ACT_F32},
        {BOX, CEN, RND, 37, 32, 0, 1.0, -1, true, CNX_ACT_BF16},
        {HAM, SQU, RND, 37, 32, 1, 1.0, -1, true, CNX_ACT_BF16},
    };
    for (const Case &c : cases) {
        cnx_preprocess pp = cnx_default_preprocess();
        pp.interpolation = c.filter;
        pp.crop_mode = c.mode;
        pp.crop_offset = c.offset;
        pp.resize = c.resize;
        pp.crop = c.crop;
        pp.normalize = c.normalize;
        pp.rescale_factor = c.rescale;
        if (c.mean >= 0)
            pp.mean[0] = pp.mean[1] = pp.mean[2] = c.mean;
        std::vector<Image> images;
        for (const Image &im : shapes) // a 1000x3 border leaves a side of 0: see check_limits
            if (cnx_preprocess_check_image(im.width, im.height, &pp) == CNX_OK)
                images.push_back(im);
        check(images, pp, c.nhwc, c.dtype);
    }

    // The large photos at the libraries' own settings (bicubic 256/224, as
    // timm and Hugging Face run ConvNeXt; lanczos for its 7 taps per axis).
    std::vector<Image> photos;
    for (const Image &im : batch)
        if (im.name.find("noise") == std::string::npos && photos.size() < 2)
            photos.push_back(im);
    photos.push_back(noise(2000, 1900, 14)); // sub-tiles and streamed rows
    for (cnx_interpolation f : {BIC, LAN}) {
        cnx_preprocess pp = cnx_default_preprocess();
        pp.interpolation = f;
        pp.resize = 256;
        pp.crop = 224;
        pp.crop_offset = f == BIC ? FLR : RND;
        pp.rescale_factor = f == BIC ? HF : 0.0;
        check(photos, pp, f == LAN, f == BIC ? CNX_ACT_F32 : CNX_ACT_F16);
    }
}

// What the kernel refuses comes out NaN, and the host says why.
void check_limits() {
    { // Refused images come out NaN; their neighbours stay exact.
        cnx_preprocess pp = cnx_default_preprocess();
        pp.resize = 1;
        pp.crop = 2;
        const std::vector<Image> three = {noise(300, 236, 101), noise(1600, 1600, 102),
                                          noise(7, 5, 103)};
        const uint64_t total = three[0].rgb.size() + three[1].rgb.size() + three[2].rgb.size();
        const float *out = (const float *)run(three, pp, false, CNX_ACT_F32,
                                              {{total - 10, 2, 2}, {0, 0, 5}});
        bool nan = true;
        for (int b : {1, 3, 4})
            for (int v = 0; v < 12; v++)
                nan = nan && std::isnan(out[b * 12 + v]);
        record(compare(three, {0, 2}, pp, false, out) == 0 && nan,
               "limits: refused images and bad descriptors are NaN, the others exact");
    }
    { // BORDER: a 1000x3 image to a long side of 224 has a height of 0.67 -> 1,
      // a 1000x1 one 0.224 -> 0 (refused); lanczos refuses at milder
      // downscales than bilinear (more taps).
        cnx_preprocess pp = cnx_default_preprocess();
        pp.crop_mode = CNX_CROP_MODE_BORDER;
        pp.interpolation = CNX_INTERPOLATION_BICUBIC;
        pp.crop = 40;
        pp.resize = 224;
        const std::vector<Image> two = {noise(1000, 3, 201), noise(1000, 1, 202)};
        const float *out = (const float *)run(two, pp, true);
        bool nan = true;
        for (size_t v = 0; v < (size_t)3 * 40 * 40; v++)
            nan = nan && std::isnan(out[3 * 40 * 40 + v]);
        const cnx_status empty = cnx_preprocess_check_image(1000, 1, &pp);
        const std::string message = cnx_last_error();
        record(compare(two, {0}, pp, true, out) == 0 && nan && empty == CNX_ERROR_UNSUPPORTED &&
                   message.find("leaves a side of 0 pixels") != std::string::npos,
               "limits: border 1000x1 to 224 is NaN and refused (" + message +
                   "), 1000x3 beside it exact");
        pp.crop_mode = CNX_CROP_MODE_CENTER;
        pp.resize = 1;
        pp.interpolation = CNX_INTERPOLATION_BILINEAR;
        const cnx_status bilinear = cnx_preprocess_check_image(1200, 1200, &pp);
        pp.interpolation = CNX_INTERPOLATION_LANCZOS;
        const cnx_status lanczos = cnx_preprocess_check_image(1200, 1200, &pp);
        record(bilinear == CNX_OK && lanczos == CNX_ERROR_UNSUPPORTED,
               std::string("limits: 1200x1200 to Resize(1): bilinear fits, lanczos refused (") +
                   cnx_last_error() + ")");
    }
    { // Choices the kernel cannot run are refused on the host (the library's
      // cnx_preprocess_forward and cnx_preprocess_check_image, as nvcc built
      // them), before anything is launched.
        char dummy[16];
        struct Refusal {
            const char *what;
            cnx_preprocess pp;
            cnx_status want;
        };
        std::vector<Refusal> refusals;
        cnx_preprocess pp = cnx_default_preprocess();
        pp.interpolation = CNX_INTERPOLATION_NEAREST;
        refusals.push_back({"nearest", pp, CNX_ERROR_UNSUPPORTED});
        pp = cnx_default_preprocess();
        pp.interpolation = (cnx_interpolation)7; // (values in the enums' range: C++)
        refusals.push_back({"interpolation 7", pp, CNX_ERROR_INVALID_ARGUMENT});
        pp = cnx_default_preprocess();
        pp.crop_mode = CNX_CROP_MODE_COUNT;
        refusals.push_back({"crop mode COUNT", pp, CNX_ERROR_INVALID_ARGUMENT});
        pp = cnx_default_preprocess();
        pp.crop_offset = CNX_CROP_OFFSET_COUNT;
        refusals.push_back({"crop offset COUNT", pp, CNX_ERROR_INVALID_ARGUMENT});
        pp = cnx_default_preprocess();
        pp.rescale_factor = -1.0 / 255;
        refusals.push_back({"rescale -1/255", pp, CNX_ERROR_INVALID_ARGUMENT});
        pp.rescale_factor = NAN;
        refusals.push_back({"rescale NaN", pp, CNX_ERROR_INVALID_ARGUMENT});
        for (const Refusal &r : refusals) {
            const cnx_status forward = cnx_preprocess_forward(
                dummy, CNX_LAYOUT_NCHW, CNX_ACT_F32, (const uint8_t *)dummy, 16,
                (const cnx_image_desc *)dummy, 1, &r.pp, 0);
            const std::string message = cnx_last_error();
            const cnx_status check = cnx_preprocess_check_image(300, 236, &r.pp);
            record(forward == r.want && check == r.want &&
                       message.rfind("preprocess (CUDA): ", 0) == 0,
                   std::string("refused: ") + r.what + " -> " + cnx_status_string(forward) +
                       ": " + message);
        }
    }
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s IMAGE_DIR\n", argv[0]);
        return 2;
    }
    emu_set_stream_mode("sync"); /* the kernel's bits are under test here, not stream order */
    const std::vector<Image> images = test_batch(argv[1]);
    const struct {
        int resize, crop, normalize;
    } settings[] = {{236, 224, 1}, {37, 32, 1}, {100, 224, 0}};
    for (const auto &st : settings)
        for (bool nhwc : {false, true}) {
            cnx_preprocess pp = cnx_default_preprocess();
            pp.resize = st.resize;
            pp.crop = st.crop;
            pp.normalize = st.normalize;
            check(images, pp, nhwc, CNX_ACT_F32);
        }
    check_choices(images);
    check_limits();
    fuzz(100, false, 12345);
    fuzz(60, true, 777);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
