// classify_iter: cnx_engine_classify_files on a thread of its own, its
// per-file results handed to Python one by one, in input order, while the
// run goes on decoding and classifying the next batches. A bounded queue
// holds the run back when Python reads slower than it classifies.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nanobind/nanobind.h>

#include "cnx.h"

class NativeEngine;

struct FileRow {
    size_t index;
    std::string path;
    std::string error; // "" on success
    std::vector<cnx_prediction> top;
};

class FileStream {
public:
    FileStream(NativeEngine &engine, std::vector<std::string> paths, cnx_files_options options,
               std::optional<cnx_preprocess> preprocess);
    ~FileStream() { close(); }
    FileStream(const FileStream &) = delete;
    FileStream &operator=(const FileStream &) = delete;

    // The next row, waiting for it with the GIL released; nullopt after the
    // last one. Raises the run's error when it stopped early.
    std::optional<FileRow> next();

    // Stops the run (results not yet read are dropped) and frees the engine
    // for other calls. Safe to call again.
    void close();

private:
    static int queue_result(void *user, const cnx_file_result *result);
    void run();

    NativeEngine *engine_;
    std::vector<std::string> paths_;
    cnx_files_options options_;
    std::optional<cnx_preprocess> preprocess_;
    size_t capacity_;

    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<FileRow> rows_;
    bool finished_ = false, cancelled_ = false;
    cnx_status run_status_ = CNX_OK;
    std::string run_error_;

    std::mutex close_mutex_;
    std::thread worker_;
};

// Engine.classify_files(paths, k, batch, decode_threads, preprocess): starts
// a stream that owns the engine until it is closed.
FileStream *start_file_stream(NativeEngine &engine, std::vector<std::string> paths, int k,
                              int batch, int decode_threads,
                              std::optional<nanobind::dict> preprocess);

// Registers cnx._native.FileStream.
void bind_file_stream(nanobind::module_ &m);
