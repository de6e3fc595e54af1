// An embedder's program: C++ that includes the installed <cnx.h>, links the
// installed libcnx and classifies. Reads float32 [n,3,size,size] raw input,
// writes float32 [n,classes] raw logits, and prints the top-1 of each image.
#include <cnx.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <vector>

struct EngineDeleter {
    void operator()(cnx_engine *engine) const { cnx_engine_destroy(engine); }
};

int main(int argc, char **argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: %s WEIGHTS INPUT.raw N SIZE LOGITS.raw\n", argv[0]);
        return 2;
    }
    const int n = std::atoi(argv[3]), size = std::atoi(argv[4]);
    std::vector<float> input(static_cast<size_t>(n) * 3 * size * size);
    std::ifstream in(argv[2], std::ios::binary);
    if (!in.read(reinterpret_cast<char *>(input.data()), input.size() * sizeof(float))) {
        std::fprintf(stderr, "%s: short read\n", argv[2]);
        return 2;
    }

    cnx_options options = cnx_default_options();
    options.device = CNX_DEVICE_CPU;
    cnx_engine *raw = nullptr;
    if (cnx_engine_create(argv[1], &options, &raw) != CNX_OK) {
        std::fprintf(stderr, "%s\n", cnx_last_error());
        return 2;
    }
    std::unique_ptr<cnx_engine, EngineDeleter> engine(raw);
    cnx_model_info info;
    cnx_engine_info(engine.get(), &info);

    std::vector<float> logits(static_cast<size_t>(n) * info.num_classes);
    std::vector<cnx_prediction> top(n);
    if (cnx_engine_forward(engine.get(), input.data(), n, size, size, logits.data()) != CNX_OK ||
        cnx_engine_classify(engine.get(), input.data(), n, size, size, 1, top.data()) != CNX_OK) {
        std::fprintf(stderr, "%s\n", cnx_last_error());
        return 1;
    }
    for (int i = 0; i < n; i++)
        std::printf("image %d: class %d (%.4f)\n", i, top[i].class_index, top[i].probability);
    std::ofstream(argv[5], std::ios::binary)
        .write(reinterpret_cast<const char *>(logits.data()), logits.size() * sizeof(float));

    // The error path must be a status and a message, never a crash.
    cnx_engine *missing = nullptr;
    if (cnx_engine_create("/nonexistent/weights.safetensors", &options, &missing) == CNX_OK ||
        missing != nullptr || cnx_last_error()[0] == '\0') {
        std::fprintf(stderr, "a missing weights file did not fail cleanly\n");
        return 1;
    }
    return 0;
}
