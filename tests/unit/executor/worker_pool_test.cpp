#include "executor/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace ctrd::executor {
namespace {

// A gate jobs block on until the test opens it; counts who is waiting.
class Gate {
 public:
  void pass() {
    std::unique_lock lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  bool wait_for_waiting(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return waiting_ >= n; });
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  int waiting() {
    std::lock_guard lock(mu_);
    return waiting_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

TEST(WorkerPool, StartsThreadsOnlyAsNeededUpToTheCap) {
  WorkerPool pool(3);
  EXPECT_EQ(pool.thread_count(), 0u);
  Gate gate;
  std::atomic<int> done = 0;
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(pool.submit([&] {
      gate.pass();
      ++done;
    }));
  ASSERT_TRUE(gate.wait_for_waiting(3));
  EXPECT_EQ(pool.thread_count(), 3u);
  EXPECT_EQ(gate.waiting(), 3);  // two jobs queue behind the cap
  gate.open();
  pool.stop();
  EXPECT_LE(done.load(), 5);
  EXPECT_GE(done.load(), 3);
}

TEST(WorkerPool, RunsEveryJobAndRefusesAfterStop) {
  WorkerPool pool(2);
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(pool.submit([&] {
      std::lock_guard lock(mu);
      ++done;
      cv.notify_all();
    }));
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done == 100; }));
  }
  EXPECT_LE(pool.thread_count(), 2u);
  pool.stop();
  EXPECT_FALSE(pool.submit([] {}));
}

}  // namespace
}  // namespace ctrd::executor
