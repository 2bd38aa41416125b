// executor/worker_pool: a bounded pool of threads for blocking work (ttRPC
// handlers, blocking gRPC calls). Threads start only as jobs need them, up to
// a fixed cap, so an idle daemon keeps few threads while blocking work cannot
// stall an I/O thread; jobs beyond the cap wait in a queue. Its owner stops
// it, which joins every thread. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ctrd::executor {

class WorkerPool {
 public:
  explicit WorkerPool(size_t max_threads);
  ~WorkerPool();  // stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False once stopped; the job is then dropped.
  bool submit(std::function<void()> job);
  // Drops queued jobs and waits for running ones. Not from inside a job.
  void stop();

  size_t thread_count() const;

 private:
  void run();

  const size_t max_threads_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace ctrd::executor
