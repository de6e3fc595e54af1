// The preprocessing kernel (kernels/preprocess.cu) run on the CPU, against
// cnx_preprocess_image, bit for bit. No GPU needed: the kernel's device code
// is compiled by the host compiler, each CUDA thread of a block is a fiber
// (ucontext), __syncthreads() switches fibers, and a block whose threads do
// not all reach the same barrier fails. Buffers end at an inaccessible page,
// so a read or write past them crashes. This checks the kernel's indexing,
// tiling, chunking and padding; what only a GPU shows (nvcc's floating
// point, races between threads, speed) is test_preprocess_gpu's.
//
// usage: emulate_preprocess IMAGE_DIR
#include <sys/mman.h>
#include <ucontext.h>

#include <cuda_runtime.h>
#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cnx.h"

// ------------------------------------------------ CUDA built-ins on the CPU
namespace emu {
struct Index {
    unsigned x, y, z;
};
Index thread_index, block_index;
void syncthreads();
} // namespace emu

#undef __shared__
#define __shared__ static // one block runs at a time
#define __launch_bounds__(...)
#define __noinline__ __attribute__((noinline))
#define threadIdx emu::thread_index
#define blockIdx emu::block_index
#define __syncthreads emu::syncthreads
using std::max;
using std::min;
static inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, 4);
    return f;
}
namespace cnx {
template <typename T> T from_float(float v) { return (T)v; }
} // namespace cnx

#define CNX_PREPROCESS_EMULATION
#include "preprocess.cu"

namespace {

constexpr int kFiberStack = 128 * 1024;
ucontext_t scheduler, fibers[kThreads];
int fiber_state[kThreads]; // 0 runnable, 1 at a barrier, 2 returned
int current;
Args launch_args;
std::vector<char> stacks((size_t)kThreads * kFiberStack);

} // namespace

void emu::syncthreads() {
    fiber_state[current] = 1;
    swapcontext(&fibers[current], &scheduler);
}

namespace {

void fiber_main() {
    preprocess_kernel<float>(launch_args);
    fiber_state[current] = 2;
}

// Runs block (bx, by); false when its threads split at a barrier.
bool run_block(unsigned bx, unsigned by) {
    emu::block_index = {bx, by, 0};
    for (int i = 0; i < kThreads; i++) {
        getcontext(&fibers[i]);
        fibers[i].uc_stack.ss_sp = stacks.data() + (size_t)i * kFiberStack;
        fibers[i].uc_stack.ss_size = kFiberStack;
        fibers[i].uc_link = &scheduler;
        makecontext(&fibers[i], fiber_main, 0);
        fiber_state[i] = 0;
    }
    for (;;) {
        for (int i = 0; i < kThreads; i++) {
            if (fiber_state[i] == 2)
                continue;
            current = i;
            emu::thread_index = {(unsigned)i, 0, 0};
            fiber_state[i] = 0;
            swapcontext(&scheduler, &fibers[i]);
        }
        int returned = 0;
        for (int i = 0; i < kThreads; i++)
            returned += fiber_state[i] == 2;
        if (returned == kThreads)
            return true;
        if (returned) {
            printf("  block (%u, %u): %d threads returned while the others wait at a barrier\n",
                   bx, by, returned);
            return false;
        }
    }
}

void launch(const Args &a, int n) {
    launch_args = a;
    for (int b = 0; b < n; b++)
        for (int t = 0; t < a.tiles_x * a.tiles_x; t++)
            if (!run_block((unsigned)t, (unsigned)b))
                exit(1);
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

// Packs the images (plus `extra` descriptors), runs the emulated kernel in
// fp32 and returns the output.
float *run(const std::vector<Image> &images, const cnx_preprocess &pp, bool nhwc,
           const std::vector<cnx_image_desc> &extra = {}) {
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
    const size_t values = descs.size() * 3 * (size_t)pp.crop * pp.crop;
    float *out = (float *)guarded(values * 4);
    memset(out, 0xa5, values * 4); // a value never written shows up
    Args a;
    a.out = out;
    a.pixels = pixels;
    a.pixel_bytes = total;
    a.descs = descs.data();
    a.resize = pp.resize;
    a.crop = pp.crop;
    a.normalize = pp.normalize != 0;
    a.nhwc = nhwc;
    a.tiles_x = (pp.crop + kTile - 1) / kTile;
    for (int c = 0; c < 3; c++) {
        a.mean[c] = pp.mean[c];
        a.std[c] = pp.std[c];
    }
    launch(a, (int)descs.size());
    return out;
}

// Values of images[k] (k in `which`) that differ from cnx_preprocess_image.
size_t compare(const std::vector<Image> &images, const std::vector<int> &which,
               const cnx_preprocess &pp, bool nhwc, const float *out) {
    const int crop = pp.crop;
    const size_t per = (size_t)3 * crop * crop;
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
                    if (memcmp(&want, &out[at], 4) != 0 && differ++ < 3)
                        printf("  %s: channel %d pixel (%d, %d): got %.9g, want %.9g\n",
                               images[b].name.c_str(), c, i, j, (double)out[at], (double)want);
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

// Random sizes, resize and crop (steep: small resizes of large images, which
// sub-tile and stream), 8 images per launch.
void fuzz(int launches, bool steep, uint32_t seed) {
    uint32_t s = seed;
    auto uniform = [&](int lo, int hi) {
        return lo + (int)(next_random(s) % (uint32_t)(hi - lo + 1));
    };
    auto log_uniform = [&](int hi) { // 1..hi, as many of each size class
        const double u = uniform(0, 1 << 20) / double(1 << 20);
        return std::max(1, (int)std::exp(u * std::log((double)hi)));
    };
    int bad = 0;
    for (int k = 0; k < launches; k++) {
        cnx_preprocess pp = cnx_default_preprocess();
        pp.resize = steep ? uniform(1, 12) : log_uniform(400);
        pp.crop = steep ? uniform(1, 40) : log_uniform(400);
        pp.normalize = uniform(0, 1);
        std::vector<Image> images;
        while (images.size() < 8) {
            const int w = steep ? uniform(50, 1700) : log_uniform(900);
            const int h = steep ? uniform(50, 1700) : log_uniform(900);
            if (cnx_preprocess_check_image(w, h, &pp) == CNX_OK)
                images.push_back(noise(w, h, next_random(s)));
        }
        const bool nhwc = uniform(0, 1);
        const float *out = run(images, pp, nhwc);
        if (compare(images, {0, 1, 2, 3, 4, 5, 6, 7}, pp, nhwc, out) != 0) {
            printf("  (launch %d: resize %d, crop %d)\n", k, pp.resize, pp.crop);
            bad++;
        }
    }
    record(bad == 0, std::to_string(bad) + " of " + std::to_string(launches) +
                         (steep ? " steep" : "") + " random launches of 8 images differ");
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s IMAGE_DIR\n", argv[0]);
        return 2;
    }
    const std::vector<Image> images = test_batch(argv[1]);
    std::vector<int> all(images.size());
    for (size_t b = 0; b < images.size(); b++)
        all[b] = (int)b;
    const struct {
        int resize, crop, normalize;
    } settings[] = {{236, 224, 1}, {37, 32, 1}, {100, 224, 0}};
    for (const auto &st : settings)
        for (bool nhwc : {false, true}) {
            cnx_preprocess pp = cnx_default_preprocess();
            pp.resize = st.resize;
            pp.crop = st.crop;
            pp.normalize = st.normalize;
            const size_t differ = compare(images, all, pp, nhwc, run(images, pp, nhwc));
            record(differ == 0, "Resize(" + std::to_string(st.resize) + ")/CenterCrop(" +
                                    std::to_string(st.crop) + ")" +
                                    (st.normalize ? "" : " no-normalize") +
                                    (nhwc ? " NHWC" : " NCHW") + ": " + std::to_string(differ) +
                                    " values differ from the CPU path");
        }

    { // Refused images come out NaN; their neighbours stay exact.
        cnx_preprocess pp = cnx_default_preprocess();
        pp.resize = 1;
        pp.crop = 2;
        const std::vector<Image> three = {noise(300, 236, 101), noise(1600, 1600, 102),
                                          noise(7, 5, 103)};
        const uint64_t total = three[0].rgb.size() + three[1].rgb.size() + three[2].rgb.size();
        const float *out = run(three, pp, false, {{total - 10, 2, 2}, {0, 0, 5}});
        bool nan = true;
        for (int b : {1, 3, 4})
            for (int v = 0; v < 12; v++)
                nan = nan && std::isnan(out[b * 12 + v]);
        record(compare(three, {0, 2}, pp, false, out) == 0 && nan,
               "limits: refused images and bad descriptors are NaN, the others exact");
    }

    fuzz(40, false, 12345);
    fuzz(40, true, 777);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
