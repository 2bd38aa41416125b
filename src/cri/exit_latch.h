// cri/exit_latch: the exit of a pod's or container's process, as the runtime
// reports it (runtime::Task::wait's callback) to whoever waits for it — a
// StopContainer's grace period, a StopPodSandbox — without a thread per
// process waiting meanwhile.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "runtime/runtime.h"

namespace ctrd::cri {

class ExitLatch {
 public:
  // The first exit set wins; waiters wake.
  void set(const runtime::Exit& exit) {
    {
      std::lock_guard lock(mu_);
      if (exit_) return;
      exit_ = exit;
    }
    cv_.notify_all();
  }
  std::optional<runtime::Exit> get() const {
    std::lock_guard lock(mu_);
    return exit_;
  }
  // The exit, once it has come within `timeout`.
  std::optional<runtime::Exit> wait_for(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return exit_.has_value(); });
    return exit_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::optional<runtime::Exit> exit_;
};

}  // namespace ctrd::cri
