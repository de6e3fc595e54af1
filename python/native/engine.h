// The native engine behind cnx.Engine: one cnx_engine, a lock that keeps its
// calls one at a time, and the GIL released while cnx works.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <nanobind/nanobind.h>

#include "cnx.h"
#include "errors.h"

// Something that uses the engine across calls (a classify_iter stream) and
// must stop when the engine closes.
class EngineUser {
public:
    virtual ~EngineUser() = default;
    virtual void stop_for_engine_close() = 0;
};

class NativeEngine {
public:
    NativeEngine(cnx_engine *engine, int cuda_device) : engine_(engine), cuda_device_(cuda_device) {}
    ~NativeEngine() { shut_down(); }
    NativeEngine(const NativeEngine &) = delete;
    NativeEngine &operator=(const NativeEngine &) = delete;

    // Runs fn(cnx_engine *) -> cnx_status with the GIL released and the
    // engine's lock held, then raises the status as a cnx.Error. Calls from
    // several threads run one after the other; a call waits for the one
    // before it (an open classify_iter's run included), and Ctrl-C stops
    // the wait.
    template <class Fn>
    void call(Fn &&fn) {
        if (closed_)
            throw nanobind::value_error("the engine is closed");
        cnx_status status;
        {
            nanobind::gil_scoped_release unlocked;
            std::unique_lock<std::timed_mutex> lock = wait_for_turn();
            if (!engine_)
                throw nanobind::value_error("the engine is closed"); // while this call waited
            status = fn(engine_);
        }
        check_status(status); // the same thread: cnx_last_error() is still its message
    }

    // For a stream's worker thread, without the GIL: fn(engine) with the
    // lock held, or nullopt when the engine was closed, or give_up()
    // became true, before the lock came.
    template <class GiveUp, class Fn>
    std::optional<cnx_status> call_from_worker(GiveUp &&give_up, Fn &&fn) {
        std::unique_lock<std::timed_mutex> lock(call_mutex_, std::defer_lock);
        while (!lock.try_lock_for(poll_interval))
            if (give_up())
                return std::nullopt;
        if (!engine_)
            return std::nullopt;
        return fn(engine_);
    }

    bool closed() const { return closed_; }
    int cuda_device() const { return cuda_device_; }
    cnx_model_info info();

    // The preprocessing of one call: the weights file's with the caller's
    // overrides (a dict, see preprocess_params.h) on top; nullopt, which
    // cnx reads as the file's own, without overrides.
    std::optional<cnx_preprocess> preprocess_with(const std::optional<nanobind::dict> &overrides);

    // The open users (classify_iter streams), for shut_down(); changed with the
    // GIL held.
    void add_user(const std::shared_ptr<EngineUser> &user);

    // Stops the open users (streams' readers get ValueError), waits for the
    // call in flight, then frees the engine; later calls raise ValueError.
    void shut_down();

    static constexpr std::chrono::milliseconds poll_interval{100};

private:
    // The lock, taken with the GIL released; between tries the GIL is taken
    // back for a moment to let Ctrl-C through.
    std::unique_lock<std::timed_mutex> wait_for_turn();

    cnx_engine *engine_; // read and written with call_mutex_ held
    int cuda_device_;
    bool closed_ = false; // read and written with the GIL held
    std::timed_mutex call_mutex_;
    std::vector<std::weak_ptr<EngineUser>> users_;
};

// Registers cnx._native.Engine; file_stream.cpp adds classify_files.
nanobind::class_<NativeEngine> bind_engine(nanobind::module_ &m);
