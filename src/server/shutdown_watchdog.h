// server/shutdown_watchdog.h: a bound on how long a shutdown may take. If the
// watchdog is still alive `limit` after it was made, it runs `on_expiry` (which
// is expected to end the process) on its own thread; destroying it first
// disarms it. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace ctrd::server {

class ShutdownWatchdog {
 public:
  ShutdownWatchdog(std::chrono::milliseconds limit, std::function<void()> on_expiry)
      : thread_([this, limit, on_expiry = std::move(on_expiry)] {
          std::unique_lock lock(mu_);
          if (!cv_.wait_for(lock, limit, [this] { return disarmed_; })) on_expiry();
        }) {}
  ~ShutdownWatchdog() {
    {
      std::lock_guard lock(mu_);
      disarmed_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  ShutdownWatchdog(const ShutdownWatchdog&) = delete;
  ShutdownWatchdog& operator=(const ShutdownWatchdog&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  std::thread thread_;  // last: it starts once the members it uses exist
};

}  // namespace ctrd::server
