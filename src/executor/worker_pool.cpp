#include "executor/worker_pool.h"

#include <algorithm>
#include <utility>

namespace ctrd::executor {

WorkerPool::WorkerPool(size_t max_threads) : max_threads_(std::max<size_t>(1, max_threads)) {}

WorkerPool::~WorkerPool() { stop(); }

bool WorkerPool::submit(std::function<void()> job) {
  std::lock_guard lock(mu_);
  if (stopping_) return false;
  queue_.push_back(std::move(job));
  // Idle threads that were already woken still count as idle until they pop,
  // so comparing with the queue length keeps one thread per waiting job.
  if (queue_.size() > idle_ && threads_.size() < max_threads_) {
    threads_.emplace_back([this] { run(); });
  } else {
    cv_.notify_one();
  }
  return true;
}

void WorkerPool::stop() {
  std::deque<std::function<void()>> dropped;
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
}

size_t WorkerPool::thread_count() const {
  std::lock_guard lock(mu_);
  return threads_.size();
}

void WorkerPool::run() {
  std::unique_lock lock(mu_);
  while (true) {
    ++idle_;
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    --idle_;
    if (stopping_) return;
    std::function<void()> job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    job();
    // The job's captures (a connection, a request) go before the next wait.
    job = nullptr;
    lock.lock();
  }
}

}  // namespace ctrd::executor
