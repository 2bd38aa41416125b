// gc/scheduler: io.containerd.gc.v1.scheduler — decides when the metadata
// store collects garbage (containerd's gc/scheduler): after a startup delay,
// after enough deletions or mutations, on request, while keeping the time
// spent collecting under a fraction (pause_threshold) of wall time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "config/binder.h"
#include "errdefs/errdefs.h"
#include "metadata/gc.h"
#include "plugin/plugin.h"

namespace ctrd::metadata {
class DB;
}

namespace ctrd::gc {

// The plugin's config, named and defaulted as containerd's.
struct Config {
  // Largest fraction of time spent collecting (0.02: at most 20ms a second);
  // clamped to [0, 0.5].
  double pause_threshold = 0.02;
  // Deletions that force a collection; 0: deletions alone only schedule one
  // when none is scheduled.
  int64_t deletion_threshold = 0;
  // Mutations that make the next scheduled collection run; 0: only deletions
  // and requests do.
  int64_t mutation_threshold = 100;
  // Delay between a trigger and the collection it causes.
  config::Duration schedule_delay{std::chrono::nanoseconds(0)};
  // Delay of the first collection after start.
  config::Duration startup_delay{std::chrono::milliseconds(100)};

  void bind(config::Binder& b) {
    b.field("pause_threshold", pause_threshold);
    b.field("deletion_threshold", deletion_threshold);
    b.field("mutation_threshold", mutation_threshold);
    b.field("schedule_delay", schedule_delay);
    b.field("startup_delay", startup_delay);
  }
};

// What the scheduler collects; metadata::DB in the daemon, a fake in tests.
class Collectable {
 public:
  virtual ~Collectable() = default;
  virtual errdefs::StatusOr<metadata::GcStats> garbage_collect() = 0;
  // At most one callback; an empty one unregisters.
  virtual void set_mutation_callback(std::function<void(bool deletion)> callback) = 0;
};

// Adapts metadata::DB.
std::shared_ptr<Collectable> collectable(std::shared_ptr<metadata::DB> db);

class Scheduler : public plugin::Closer {
 public:
  // Starts the background thread.
  static std::shared_ptr<Scheduler> start(std::shared_ptr<Collectable> target, const Config& config);
  ~Scheduler() override;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Runs a collection that starts after this call and returns its stats (what a `sync` delete needs).
  errdefs::StatusOr<metadata::GcStats> collect_now();

  // Stops the thread; pending collect_now calls fail with Unavailable.
  errdefs::Status close() override;

  // Collections run so far (for tests and introspection).
  uint64_t collections() const;

 private:
  using SteadyClock = std::chrono::steady_clock;
  struct Waiter {
    std::optional<errdefs::StatusOr<metadata::GcStats>> result;
  };

  Scheduler(std::shared_ptr<Collectable> target, const Config& config);
  void on_event(bool mutation, bool deletion);  // called with mu_ held
  void run();

  std::shared_ptr<Collectable> target_;
  double pause_threshold_;
  int64_t deletion_threshold_;
  int64_t mutation_threshold_;
  SteadyClock::duration schedule_delay_;
  SteadyClock::duration startup_delay_;

  mutable std::mutex mu_;
  std::condition_variable wake_;     // the thread: a schedule change or stop
  std::condition_variable results_;  // collect_now callers: a collection ended
  bool stopping_ = false;
  bool triggered_ = false;
  int64_t deletions_ = 0;
  int64_t mutations_ = 0;
  std::optional<SteadyClock::time_point> next_;
  std::optional<SteadyClock::time_point> last_;
  std::vector<std::shared_ptr<Waiter>> waiters_;
  uint64_t collections_ = 0;
  std::thread thread_;
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::gc
