#include "gc/scheduler.h"

#include <algorithm>
#include <sstream>

#include "log/log.h"
#include "metadata/db.h"

namespace ctrd::gc {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

// Wait between collections until pause_threshold has a measured average to work from.
constexpr auto kDefaultInterval = std::chrono::seconds(1);
// Added to the interval after a failed collection, as containerd does.
constexpr auto kFailureBackoff = std::chrono::seconds(1);

class DBCollectable final : public Collectable {
 public:
  explicit DBCollectable(std::shared_ptr<metadata::DB> db) : db_(std::move(db)) {}
  StatusOr<metadata::GcStats> garbage_collect() override { return db_->garbage_collect(); }
  void set_mutation_callback(std::function<void(bool)> callback) override {
    db_->set_mutation_callback(std::move(callback));
  }

 private:
  std::shared_ptr<metadata::DB> db_;
};

std::string millis(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration<double, std::milli>(d).count()) + "ms";
}

}  // namespace

std::shared_ptr<Collectable> collectable(std::shared_ptr<metadata::DB> db) {
  return std::make_shared<DBCollectable>(std::move(db));
}

Scheduler::Scheduler(std::shared_ptr<Collectable> target, const Config& config)
    : target_(std::move(target)),
      pause_threshold_(std::clamp(config.pause_threshold, 0.0, 0.5)),
      deletion_threshold_(config.deletion_threshold),
      mutation_threshold_(std::max<int64_t>(config.mutation_threshold, 0)),
      schedule_delay_(std::max(config.schedule_delay.value, std::chrono::nanoseconds(0))),
      startup_delay_(std::max(config.startup_delay.value, std::chrono::nanoseconds(0))) {
  // Set before the thread and the callback exist, so no trigger is overwritten.
  if (startup_delay_ > SteadyClock::duration::zero()) next_ = SteadyClock::now() + startup_delay_;
}

std::shared_ptr<Scheduler> Scheduler::start(std::shared_ptr<Collectable> target, const Config& config) {
  std::shared_ptr<Scheduler> scheduler(new Scheduler(std::move(target), config));
  Scheduler* self = scheduler.get();
  // Unregistered in close(), before the scheduler can go away.
  self->target_->set_mutation_callback([self](bool deletion) {
    std::lock_guard lock(self->mu_);
    self->on_event(true, deletion);
  });
  self->thread_ = std::thread([self] { self->run(); });
  return scheduler;
}

Scheduler::~Scheduler() { (void)close(); }

Status Scheduler::close() {
  // Without mu_: the store calls the callback under its own lock, and the
  // callback takes mu_.
  target_->set_mutation_callback({});
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  return Status::Ok();
}

uint64_t Scheduler::collections() const {
  std::lock_guard lock(mu_);
  return collections_;
}

StatusOr<metadata::GcStats> Scheduler::collect_now() {
  auto waiter = std::make_shared<Waiter>();
  std::unique_lock lock(mu_);
  if (stopping_) return errdefs::Unavailable("garbage collection scheduler is closed");
  waiters_.push_back(waiter);
  on_event(false, false);
  results_.wait(lock, [&] { return waiter->result.has_value(); });
  return *waiter->result;
}

void Scheduler::on_event(bool mutation, bool deletion) {
  if (deletion) ++deletions_;
  if (mutation) {
    ++mutations_;
  } else {
    triggered_ = true;
  }
  bool due = triggered_ || (deletion_threshold_ > 0 && deletions_ >= deletion_threshold_) ||
             (!next_ && ((deletion_threshold_ == 0 && deletions_ > 0) ||
                         (mutation_threshold_ > 0 && mutations_ >= mutation_threshold_)));
  if (!due) return;
  auto at = SteadyClock::now() + schedule_delay_;
  // Never postponed: an earlier schedule stands.
  if (!next_ || *next_ > at) {
    next_ = at;
    wake_.notify_all();
  }
}

void Scheduler::run() {
  std::unique_lock lock(mu_);
  SteadyClock::duration interval = kDefaultInterval;
  std::chrono::nanoseconds gc_time{0};
  while (!stopping_) {
    if (!next_) {
      wake_.wait(lock);
      continue;
    }
    if (SteadyClock::now() < *next_) {
      wake_.wait_until(lock, *next_);
      continue;  // woken early or on time: look at the schedule again
    }
    // Nothing asked for a collection since the last one: look again later.
    if (!triggered_ && last_ && deletions_ == 0 &&
        (mutation_threshold_ == 0 || mutations_ < mutation_threshold_)) {
      next_ = SteadyClock::now() + interval;
      continue;
    }
    std::vector<std::shared_ptr<Waiter>> waiting = std::move(waiters_);
    waiters_.clear();
    triggered_ = false;
    deletions_ = 0;
    mutations_ = 0;
    lock.unlock();
    auto started = SteadyClock::now();
    StatusOr<metadata::GcStats> stats = target_->garbage_collect();
    auto ended = SteadyClock::now();
    lock.lock();

    last_ = ended;
    if (stats.ok()) {
      ++collections_;
      gc_time += std::chrono::duration_cast<std::chrono::nanoseconds>(ended - started);
      if (pause_threshold_ > 0.0) {
        // Spaced so that collecting takes at most pause_threshold of the time.
        double average = static_cast<double>(gc_time.count()) / static_cast<double>(collections_);
        interval = std::chrono::duration_cast<SteadyClock::duration>(
            std::chrono::duration<double, std::nano>(average / pause_threshold_ - average));
      }
      next_ = ended + interval;
      log::debug("garbage collected", {{"d", millis(ended - started)},
                                       {"blobs_removed", std::to_string(stats->blobs_removed)},
                                       {"snapshots_removed", std::to_string(stats->snapshots_removed)},
                                       {"ingests_removed", std::to_string(stats->ingests_removed)},
                                       {"mark", millis(stats->mark)},
                                       {"sweep", millis(stats->sweep)},
                                       {"cleanup", millis(stats->cleanup)}});
    } else {
      log::error("garbage collection failed", {{"error", stats.status().to_string()}});
      next_ = ended + interval + kFailureBackoff;
    }
    for (auto& waiter : waiting) waiter->result = stats;
    // Requests made while collecting want a collection that starts after them.
    if (!waiters_.empty()) {
      triggered_ = true;
      next_ = std::min(*next_, ended + schedule_delay_);
    }
    results_.notify_all();
  }
  for (auto& waiter : waiters_) {
    waiter->result = errdefs::Unavailable("garbage collection scheduler is closed");
  }
  waiters_.clear();
  results_.notify_all();
}

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kGC),
      .id = "scheduler",
      .requirements = {std::string(plugin::type::kMetadata)},
      .config = plugin::typed_config<Config>(),
      .init = [](plugin::InitContext& ic) -> StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(Config config, ic.config<Config>());
        CTRD_ASSIGN_OR_RETURN(auto db, ic.get<metadata::DB>(plugin::type::kMetadata));
        auto scheduler = Scheduler::start(collectable(std::move(db)), config);
        std::ostringstream pause;
        pause << std::clamp(config.pause_threshold, 0.0, 0.5);
        ic.meta().exports["PauseThreshold"] = pause.str();
        ic.meta().exports["DeletionThreshold"] = std::to_string(config.deletion_threshold);
        ic.meta().exports["MutationThreshold"] =
            std::to_string(std::max<int64_t>(config.mutation_threshold, 0));
        ic.meta().exports["ScheduleDelay"] =
            config::format_duration(std::max(config.schedule_delay.value, std::chrono::nanoseconds(0)));
        return plugin::Instance::of<Scheduler>(std::move(scheduler));
      },
  });
}

}  // namespace ctrd::gc
