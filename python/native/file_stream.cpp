#include "file_stream.h"

#include <new>

#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "errors.h"
#include "numpy_arrays.h"

namespace nb = nanobind;

FileStream::FileStream(NativeEngine &engine, std::vector<std::string> paths,
                       cnx_files_options options, std::optional<cnx_preprocess> preprocess)
    : engine_(&engine), paths_(std::move(paths)), options_(options),
      preprocess_(std::move(preprocess)) {}

std::shared_ptr<FileStream> FileStream::open_on(NativeEngine &engine,
                                                std::vector<std::string> paths,
                                                cnx_files_options options,
                                                std::optional<cnx_preprocess> preprocess) {
    if (engine.closed())
        throw nb::value_error("the engine is closed");
    auto stream = std::make_shared<FileStream>(engine, std::move(paths), options,
                                               std::move(preprocess));
    stream->worker_ = std::thread(&FileStream::run, stream.get());
    engine.add_user(stream);
    return stream;
}

bool FileStream::is_cancelled() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cancelled_;
}

void FileStream::run() {
    std::vector<const char *> paths(paths_.size());
    for (size_t i = 0; i < paths_.size(); i++)
        paths[i] = paths_[i].c_str();
    if (preprocess_)
        options_.preprocess = &*preprocess_;
    std::optional<cnx_status> status =
        engine_->call_from_worker([this] { return is_cancelled(); }, [&](cnx_engine *e) {
            return cnx_engine_classify_files(e, paths.data(), paths.size(), &options_,
                                             queue_result, this, nullptr);
        });
    std::lock_guard<std::mutex> lock(mutex_);
    if (!cancelled_ && !status) {
        run_status_ = CNX_ERROR_INVALID_ARGUMENT;
        run_error_ = "the engine is closed";
    } else if (!cancelled_ && *status != CNX_OK && run_status_ == CNX_OK) {
        run_status_ = *status;
        run_error_ = cnx_last_error(); // this thread's message
    }
    finished_ = true;
    changed_.notify_all();
}

int FileStream::queue_result(void *user, const cnx_file_result *result) {
    FileStream *self = static_cast<FileStream *>(user);
    try {
        FileRow row{result->index, result->path, result->error, {}};
        const size_t k = (size_t)self->options_.k;
        if (result->top)
            row.top.assign(result->top, result->top + k);
        else
            row.top.assign(k, cnx_prediction{-1, 0.0f, 0.0f}); // a failed file: -1 and NaN
        std::lock_guard<std::mutex> lock(self->mutex_);
        if (self->cancelled_)
            return 1; // stops the run
        self->rows_.push_back(std::move(row));
        self->changed_.notify_all();
        return 0;
    } catch (const std::bad_alloc &) {
        // An exception must not unwind through cnx's C frames: stop instead.
        std::lock_guard<std::mutex> lock(self->mutex_);
        self->run_status_ = CNX_ERROR_OUT_OF_MEMORY;
        self->run_error_ = "out of memory for the results of classify_iter";
        self->finished_ = true;
        self->changed_.notify_all();
        return 1;
    }
}

std::optional<FileRow> FileStream::next() {
    std::optional<FileRow> row;
    cnx_status failed = CNX_OK;
    std::string error;
    for (bool ready = false; !ready;) {
        {
            nb::gil_scoped_release unlocked;
            std::unique_lock<std::mutex> lock(mutex_);
            ready = changed_.wait_for(lock, NativeEngine::poll_interval, [&] {
                return cancelled_ || finished_ || !rows_.empty();
            });
            if (ready && engine_closed_) {
                failed = CNX_ERROR_INVALID_ARGUMENT;
                error = "the engine was closed while classify_iter ran";
            } else if (ready && !rows_.empty()) {
                row = std::move(rows_.front());
                rows_.pop_front();
            } else if (ready && run_status_ != CNX_OK) {
                failed = run_status_;
                error = run_error_;
                run_status_ = CNX_OK; // raised once
            }
        }
        if (!ready && PyErr_CheckSignals() != 0)
            throw nb::python_error(); // Ctrl-C while waiting
    }
    if (failed != CNX_OK)
        raise_status(failed, error);
    return row;
}

void FileStream::stop(Reason reason) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        cancelled_ = true;
        engine_closed_ |= reason == Reason::engine_closed;
        rows_.clear();
        changed_.notify_all();
    }
    nb::gil_scoped_release unlocked; // the batch in flight may take a while
    std::lock_guard<std::mutex> lock(join_mutex_);
    if (worker_.joinable())
        worker_.join();
}

static std::shared_ptr<FileStream> start_file_stream(NativeEngine &engine,
                                                     std::vector<std::string> paths, int k,
                                                     int batch, int decode_threads,
                                                     std::optional<nb::dict> preprocess) {
    cnx_files_options options = cnx_default_files_options();
    options.k = k;
    options.batch = batch;
    options.decode_threads = decode_threads;
    return FileStream::open_on(engine, std::move(paths), options,
                             engine.preprocess_with(preprocess));
}

// A row as Python sees it: (index, path, indices int32 [1, k], probs float32
// [1, k], error or "").
static nb::object next_row(FileStream &stream) {
    std::optional<FileRow> row = stream.next();
    if (!row)
        return nb::none();
    size_t k = row->top.size();
    return nb::make_tuple(row->index, row->path, top_indices(row->top, 1, k),
                          top_probabilities(row->top, 1, k), row->error);
}

void bind_file_stream(nb::module_ &m, nb::class_<NativeEngine> &engine_class) {
    nb::class_<FileStream>(m, "FileStream")
        .def("next", &next_row)
        .def("close", [](FileStream &stream) { stream.stop(FileStream::Reason::reader_done); });
    engine_class.def("classify_files", &start_file_stream, nb::arg("paths"), nb::arg("k"),
                     nb::arg("batch"), nb::arg("decode_threads"), nb::arg("preprocess").none(),
                     nb::keep_alive<0, 1>()); // the stream uses the engine
}
