#include "file_stream.h"

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "engine.h"
#include "errors.h"
#include "numpy_arrays.h"

namespace nb = nanobind;

FileStream::FileStream(NativeEngine &engine, std::vector<std::string> paths,
                       cnx_files_options options, std::optional<cnx_preprocess> preprocess)
    : engine_(&engine), paths_(std::move(paths)), options_(options),
      preprocess_(std::move(preprocess)) {
    // Two batches of rows let the run go on while Python catches up.
    capacity_ = 2 * (size_t)(options_.batch > 0 ? options_.batch : 32);
    engine.checked(); // raises while closed or owned by another stream
    engine.active_stream = this;
    worker_ = std::thread(&FileStream::run, this);
}

void FileStream::run() {
    std::vector<const char *> paths(paths_.size());
    for (size_t i = 0; i < paths_.size(); i++)
        paths[i] = paths_[i].c_str();
    if (preprocess_)
        options_.preprocess = &*preprocess_;
    cnx_status status;
    {
        std::lock_guard<std::mutex> lock(engine_->call_mutex());
        status = cnx_engine_classify_files(engine_->unchecked(), paths.data(), paths.size(), &options_,
                                           queue_result, this, nullptr);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    run_status_ = cancelled_ ? CNX_OK : status;
    run_error_ = status == CNX_OK ? "" : cnx_last_error(); // this thread's message
    finished_ = true;
    changed_.notify_all();
}

int FileStream::queue_result(void *user, const cnx_file_result *result) {
    FileStream *self = static_cast<FileStream *>(user);
    FileRow row{result->index, result->path, result->error, {}};
    const size_t k = (size_t)self->options_.k;
    if (result->top)
        row.top.assign(result->top, result->top + k);
    else
        row.top.assign(k, cnx_prediction{-1, 0.0f, 0.0f}); // a failed file: -1 and NaN
    std::unique_lock<std::mutex> lock(self->mutex_);
    self->changed_.wait(lock, [&] { return self->cancelled_ || self->rows_.size() < self->capacity_; });
    if (self->cancelled_)
        return 1; // stops the run
    self->rows_.push_back(std::move(row));
    self->changed_.notify_all();
    return 0;
}

std::optional<FileRow> FileStream::next() {
    std::optional<FileRow> row;
    cnx_status failed = CNX_OK;
    std::string error;
    {
        nb::gil_scoped_release unlocked;
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return cancelled_ || finished_ || !rows_.empty(); });
        if (!rows_.empty()) {
            row = std::move(rows_.front());
            rows_.pop_front();
            changed_.notify_all();
        } else if (finished_ && run_status_ != CNX_OK) {
            failed = run_status_;
            error = run_error_;
            run_status_ = CNX_OK; // raised once
        }
    }
    if (failed != CNX_OK)
        raise_status(failed, error);
    return row;
}

void FileStream::close() {
    nb::gil_scoped_release unlocked; // the run may be in the middle of a batch
    std::lock_guard<std::mutex> closing(close_mutex_);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        cancelled_ = true;
        changed_.notify_all();
    }
    if (worker_.joinable())
        worker_.join();
    if (engine_) {
        engine_->active_stream = nullptr;
        engine_ = nullptr;
    }
}

FileStream *start_file_stream(NativeEngine &engine, std::vector<std::string> paths, int k,
                              int batch, int decode_threads, std::optional<nb::dict> preprocess) {
    cnx_files_options options = cnx_default_files_options();
    options.k = k;
    options.batch = batch;
    options.decode_threads = decode_threads;
    return new FileStream(engine, std::move(paths), options, engine.preprocess_with(preprocess));
}

// A row as Python sees it: (index, path, indices int32 [k], probs float32
// [k], error or "").
static nb::object next_row(FileStream &stream) {
    std::optional<FileRow> row = stream.next();
    if (!row)
        return nb::none();
    size_t k = row->top.size();
    return nb::make_tuple(row->index, row->path, top_indices(row->top, 1, k),
                          top_probabilities(row->top, 1, k), row->error);
}

void bind_file_stream(nb::module_ &m) {
    nb::class_<FileStream>(m, "FileStream")
        .def("next", &next_row)
        .def("close", &FileStream::close);
}
