#include "gc/scheduler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "../metadata/test_support.h"
#include "metadata/db.h"

namespace ctrd::gc {
namespace {

using errdefs::Code;
using errdefs::Status;
using errdefs::StatusOr;

// Generous: only reached when the scheduler fails to run a collection.
constexpr auto kBound = std::chrono::seconds(10);

// Counts collections and hands out the registered callback.
class FakeCollectable : public Collectable {
 public:
  StatusOr<metadata::GcStats> garbage_collect() override {
    std::lock_guard lock(mu_);
    ++collections_;
    changed_.notify_all();
    if (!fail_.ok()) return fail_;
    metadata::GcStats stats;
    stats.blobs_removed = collections_;
    return stats;
  }
  void set_mutation_callback(std::function<void(bool)> callback) override {
    std::lock_guard lock(mu_);
    callback_ = std::move(callback);
  }

  void mutate(bool deletion) {
    std::function<void(bool)> callback;
    {
      std::lock_guard lock(mu_);
      callback = callback_;
    }
    ASSERT_TRUE(callback) << "no callback registered";
    callback(deletion);
  }
  bool wait_for_collections(size_t n) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, kBound, [&] { return collections_ >= n; });
  }
  size_t collections() {
    std::lock_guard lock(mu_);
    return collections_;
  }
  bool has_callback() {
    std::lock_guard lock(mu_);
    return static_cast<bool>(callback_);
  }
  void fail_with(Status s) {
    std::lock_guard lock(mu_);
    fail_ = std::move(s);
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  size_t collections_ = 0;
  std::function<void(bool)> callback_;
  Status fail_;
};

// No collection unless something asks: startup far away.
Config quiet() {
  Config c;
  c.startup_delay.value = std::chrono::hours(1);
  c.pause_threshold = 0;
  return c;
}

TEST(SchedulerTest, CollectNowReturnsTheStatsOfANewCollection) {
  auto fake = std::make_shared<FakeCollectable>();
  auto scheduler = Scheduler::start(fake, quiet());
  auto first = scheduler->collect_now();
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(first->blobs_removed, 1u);
  auto second = scheduler->collect_now();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->blobs_removed, 2u) << "each call waits for a collection of its own";
  EXPECT_EQ(scheduler->collections(), 2u);
  EXPECT_TRUE(scheduler->close().ok());
}

TEST(SchedulerTest, CollectNowReportsAFailedCollection) {
  auto fake = std::make_shared<FakeCollectable>();
  fake->fail_with(errdefs::Internal("disk on fire"));
  auto scheduler = Scheduler::start(fake, quiet());
  auto result = scheduler->collect_now();
  EXPECT_EQ(result.status().code(), Code::kInternal);
  EXPECT_EQ(scheduler->collections(), 0u);
}

TEST(SchedulerTest, MutationThresholdTriggersACollection) {
  auto fake = std::make_shared<FakeCollectable>();
  Config config = quiet();
  config.startup_delay.value = std::chrono::nanoseconds(0);
  config.mutation_threshold = 3;
  auto scheduler = Scheduler::start(fake, config);
  fake->mutate(false);
  fake->mutate(false);
  EXPECT_EQ(fake->collections(), 0u) << "below the threshold nothing is scheduled";
  fake->mutate(false);
  EXPECT_TRUE(fake->wait_for_collections(1)) << "the third mutation schedules a collection";
}

TEST(SchedulerTest, DeletionSchedulesACollectionWhenNoneIs) {
  auto fake = std::make_shared<FakeCollectable>();
  Config config = quiet();
  config.startup_delay.value = std::chrono::nanoseconds(0);
  auto scheduler = Scheduler::start(fake, config);
  fake->mutate(true);
  EXPECT_TRUE(fake->wait_for_collections(1));
}

TEST(SchedulerTest, StartupCollectionRuns) {
  auto fake = std::make_shared<FakeCollectable>();
  Config config;  // containerd's defaults: 100ms after start
  auto scheduler = Scheduler::start(fake, config);
  EXPECT_TRUE(fake->wait_for_collections(1));
}

TEST(SchedulerTest, CloseStopsAndUnregisters) {
  auto fake = std::make_shared<FakeCollectable>();
  auto scheduler = Scheduler::start(fake, quiet());
  EXPECT_TRUE(fake->has_callback());
  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(scheduler->close().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5))
      << "no wait for the 1h startup";
  EXPECT_FALSE(fake->has_callback());
  EXPECT_EQ(scheduler->collect_now().status().code(), Code::kUnavailable);
  EXPECT_TRUE(scheduler->close().ok()) << "idempotent";
}

TEST(SchedulerTest, DrivesTheMetadataStore) {
  metadata::test_support::TempDir dir;
  auto blobs = std::make_shared<metadata::test_support::FakeBlobStore>();
  auto db = metadata::DB::open(dir.sub("m"), blobs);
  ASSERT_TRUE(db.ok()) << db.status().to_string();
  auto scheduler = Scheduler::start(collectable(*db), quiet());
  auto store = (*db)->content_store("ns");
  ASSERT_TRUE(metadata::test_support::write_blob(*store, "ref", "garbage").ok());
  std::string digest = metadata::test_support::sha256("garbage");
  ASSERT_TRUE(store->remove(digest).ok());
  EXPECT_TRUE(blobs->has_blob(digest));
  auto stats = scheduler->collect_now();
  ASSERT_TRUE(stats.ok()) << stats.status().to_string();
  EXPECT_EQ(stats->blobs_removed, 1u);
  EXPECT_FALSE(blobs->has_blob(digest));
  EXPECT_TRUE(scheduler->close().ok());
}

TEST(SchedulerTest, PluginConfigDefaultsAsContainerd) {
  auto table = config::encode_from(*std::make_unique<Config>());
  EXPECT_EQ(table->at_path("pause_threshold").value<double>(), 0.02);
  EXPECT_EQ(table->at_path("deletion_threshold").value<int64_t>(), 0);
  EXPECT_EQ(table->at_path("mutation_threshold").value<int64_t>(), 100);
  EXPECT_EQ(table->at_path("schedule_delay").value<std::string>(), "0s");
  EXPECT_EQ(table->at_path("startup_delay").value<std::string>(), "100ms");

  plugin::Registry registry;
  register_plugin(registry);
  EXPECT_TRUE(registry.rejected().empty());
  ASSERT_EQ(registry.registrations().size(), 1u);
  const auto& r = *registry.registrations()[0];
  EXPECT_EQ(r.uri(), "io.containerd.gc.v1.scheduler");
  EXPECT_EQ(r.requirements, (std::vector<std::string>{"io.containerd.metadata.v1"}));
  EXPECT_TRUE(r.config);
}

}  // namespace
}  // namespace ctrd::gc
