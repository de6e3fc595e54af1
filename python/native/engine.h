// The native engine behind cnx.Engine: one cnx_engine, a lock that keeps its
// calls one at a time, and the GIL released while cnx works.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>

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
    // engine's lock held, then raises the status as a cnx.Error. The engine
    // runs calls from several Python threads one after the other.
    template <class Fn>
    void call(Fn &&fn) {
        cnx_status status;
        {
            nanobind::gil_scoped_release unlocked;
            std::lock_guard<std::mutex> lock(call_mutex_);
            status = fn(checked());
        }
        check_status(status); // the same thread: cnx_last_error() is still its message
    }

    // The engine, or a raise when it is closed or owned by an open
    // classify_iter (waiting for it could wait for ourselves).
    cnx_engine *checked() const;
    cnx_engine *unchecked() const { return engine_; } // for the stream that owns it
    int cuda_device() const { return cuda_device_; }
    cnx_model_info info();

    // The preprocessing of one call: the weights file's with the caller's
    // overrides (a dict, see preprocess_params.h) on top; nullopt, which
    // cnx reads as the file's own, without overrides.
    std::optional<cnx_preprocess> preprocess_with(const std::optional<nanobind::dict> &overrides);
    std::mutex &call_mutex() { return call_mutex_; }

    // The stream that owns the engine from classify_iter's start until it
    // is closed.
    std::atomic<FileStream *> active_stream{nullptr};

    // Stops an open stream, then frees the engine; later calls raise.
    void close();

private:
    cnx_engine *engine_;
    int cuda_device_;
    std::mutex call_mutex_;
};

// Registers cnx._native.Engine.
void bind_engine(nanobind::module_ &m);
