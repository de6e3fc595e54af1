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
    // Starts the run on the engine, which it owns until the stream closes.
    // options.batch must be set (> 0): the queue holds two batches.
    FileStream(NativeEngine &engine, std::vector<std::string> paths, cnx_files_options options,
               std::optional<cnx_preprocess> preprocess);
    ~FileStream() { close(Reason::reader_done); }
    FileStream(const FileStream &) = delete;
    FileStream &operator=(const FileStream &) = delete;

    // The next row, waiting for it with the GIL released; nullopt after the
    // last one. Raises the run's error when it stopped early, and
    // ValueError when the engine was closed in the middle.
    std::optional<FileRow> next();

    enum class Reason { reader_done, engine_closed };
    // Stops the run, drops the rows not yet read and frees the engine for
    // other calls. Safe to call again. It keeps the GIL (the worker never
    // takes it), so nothing can free the stream while it closes.
    void close(Reason reason);

    // Whether this thread reads the stream (created it, or called next()
    // last): a call of its own on the engine would wait for itself.
    bool read_by_this_thread() const { return owner_ == std::this_thread::get_id(); }

private:
    static int queue_result(void *user, const cnx_file_result *result);
    void run();

    NativeEngine *engine_;
    std::thread::id owner_; // changed with the GIL held
    std::vector<std::string> paths_;
    cnx_files_options options_;
    std::optional<cnx_preprocess> preprocess_;
    size_t capacity_;

    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<FileRow> rows_;
    bool finished_ = false, cancelled_ = false, engine_closed_ = false;
    cnx_status run_status_ = CNX_OK;
    std::string run_error_;

    std::thread worker_;
};

// Engine.classify_files(paths, k, batch, decode_threads, preprocess): starts
// a stream.
FileStream *start_file_stream(NativeEngine &engine, std::vector<std::string> paths, int k,
                              int batch, int decode_threads,
                              std::optional<nanobind::dict> preprocess);

// Registers cnx._native.FileStream.
void bind_file_stream(nanobind::module_ &m);
