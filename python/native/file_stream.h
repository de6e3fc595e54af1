// classify_iter: cnx_engine_classify_files on a thread of its own, its
// per-file results handed to Python one by one, in input order, while the
// run goes on decoding and classifying the next batches.
//
// The run never waits for Python: rows not read yet wait in a queue (a few
// hundred bytes per file). So the engine's lock, which the run holds, is
// always given back, and no call of any thread can wait for its own reader.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nanobind/nanobind.h>

#include "cnx.h"
#include "engine.h"

struct FileRow {
    size_t index;
    std::string path;
    std::string error; // "" on success
    std::vector<cnx_prediction> top;
};

class FileStream : public EngineUser {
public:
    FileStream(NativeEngine &engine, std::vector<std::string> paths, cnx_files_options options,
               std::optional<cnx_preprocess> preprocess);
    ~FileStream() override { stop(Reason::reader_done); }
    FileStream(const FileStream &) = delete;
    FileStream &operator=(const FileStream &) = delete;

    // Starts a stream on the engine (which keeps track of it, to stop it
    // when it closes); the run waits for the engine's calls before it.
    static std::shared_ptr<FileStream> open_on(NativeEngine &engine,
                                               std::vector<std::string> paths,
                                               cnx_files_options options,
                                               std::optional<cnx_preprocess> preprocess);

    // The next row, waiting for it with the GIL released (Ctrl-C stops the
    // wait); nullopt after the last one. Raises the run's error when it
    // stopped early, and ValueError when the engine was closed.
    std::optional<FileRow> next();

    enum class Reason { reader_done, engine_closed };
    // Stops the run after the batch in flight, drops the rows not read yet,
    // and waits for the worker (with the GIL released). Safe to call again,
    // from any thread.
    void stop(Reason reason);
    void stop_for_engine_close() override { stop(Reason::engine_closed); }

private:
    static int queue_result(void *user, const cnx_file_result *result);
    void run();
    bool is_cancelled();

    NativeEngine *engine_; // outlives the stream: Engine.classify_files keeps it alive
    std::vector<std::string> paths_;
    cnx_files_options options_;
    std::optional<cnx_preprocess> preprocess_;

    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<FileRow> rows_;
    bool finished_ = false, cancelled_ = false, engine_closed_ = false;
    cnx_status run_status_ = CNX_OK;
    std::string run_error_;

    std::mutex join_mutex_; // one thread joins the worker
    std::thread worker_;
};

// Registers cnx._native.FileStream, and Engine.classify_files(paths, k,
// batch, decode_threads, preprocess) that starts one.
void bind_file_stream(nanobind::module_ &m, nanobind::class_<NativeEngine> &engine_class);
