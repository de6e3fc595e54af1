// The native engine behind cnx.Engine: one cnx_engine, a lock that keeps its
// calls one at a time, and the GIL released while cnx works.
#pragma once

#include <mutex>
#include <optional>
#include <vector>

#include <nanobind/nanobind.h>

#include "cnx.h"
#include "errors.h"

class FileStream;

class NativeEngine {
public:
    NativeEngine(cnx_engine *engine, int cuda_device) : engine_(engine), cuda_device_(cuda_device) {}
    ~NativeEngine() { close(); }
    NativeEngine(const NativeEngine &) = delete;
    NativeEngine &operator=(const NativeEngine &) = delete;

    // Runs fn(cnx_engine *) -> cnx_status with the GIL released and the
    // engine's lock held, then raises the status as a cnx.Error. Calls from
    // several threads run one after the other: a call waits for the one
    // before it, an open classify_iter of another thread included.
    template <class Fn>
    void call(Fn &&fn) {
        check_callable();
        cnx_status status;
        {
            nanobind::gil_scoped_release unlocked;
            std::lock_guard<std::mutex> lock(call_mutex_);
            if (!engine_)
                throw nanobind::value_error("the engine is closed"); // while this call waited
            status = fn(engine_);
        }
        check_status(status); // the same thread: cnx_last_error() is still its message
    }

    // With the lock held, from a stream's worker thread: fn(engine), or
    // nullopt when the engine was closed before the lock came.
    template <class Fn>
    std::optional<cnx_status> call_from_worker(Fn &&fn) {
        std::lock_guard<std::mutex> lock(call_mutex_);
        if (!engine_)
            return std::nullopt;
        return fn(engine_);
    }

    // Raises (with the GIL) when the engine is closed, or when this thread
    // has a classify_iter open on it: the call would wait for that stream,
    // which waits for this thread to read it.
    void check_callable() const;

    int cuda_device() const { return cuda_device_; }
    cnx_model_info info();

    // The preprocessing of one call: the weights file's with the caller's
    // overrides (a dict, see preprocess_params.h) on top; nullopt, which
    // cnx reads as the file's own, without overrides.
    std::optional<cnx_preprocess> preprocess_with(const std::optional<nanobind::dict> &overrides);

    // The open classify_iter streams, changed with the GIL held.
    void add_stream(FileStream *stream) { streams_.push_back(stream); }
    void remove_stream(FileStream *stream);

    // Stops the open streams (their readers get an error), then frees the
    // engine; later calls raise ValueError.
    void close();

private:
    cnx_engine *engine_;
    int cuda_device_;
    std::mutex call_mutex_;
    std::vector<FileStream *> streams_;
};

// Registers cnx._native.Engine.
void bind_engine(nanobind::module_ &m);
