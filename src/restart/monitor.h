// restart: io.containerd.internal.v1.restart — containerd's restart
// monitor. Every `interval` it makes the tasks of containers labelled
// containerd.io/restart.status match the label: "running" starts a task
// (after deleting a stopped one), with its output to the file named by
// containerd.io/restart.logpath or the URI in containerd.io/restart.loguri;
// "stopped" kills and deletes a running one. A container created less than
// max(interval, 2s) ago is left to its creator to start. It is a client of
// the tasks service (it drives tasks as a user would), so it sits above it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "errdefs/errdefs.h"
#include "metadata/db.h"
#include "plugin/plugin.h"
#include "services/tasks/tasks.h"

namespace ctrd::restart {

inline constexpr std::string_view kStatusLabel = "containerd.io/restart.status";
inline constexpr std::string_view kLogPathLabel = "containerd.io/restart.logpath";
inline constexpr std::string_view kLogUriLabel = "containerd.io/restart.loguri";

class Monitor : public plugin::Closer {
 public:
  // Reconciles at once, then every `interval`, on a thread of its own.
  static std::shared_ptr<Monitor> start(std::shared_ptr<metadata::DB> db,
                                        std::shared_ptr<services::tasks::TasksService> tasks,
                                        std::chrono::nanoseconds interval);
  ~Monitor() override;
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // One pass over every namespace; the first error met (the pass goes on).
  errdefs::Status reconcile();
  errdefs::Status close() override;

 private:
  Monitor(std::shared_ptr<metadata::DB> db, std::shared_ptr<services::tasks::TasksService> tasks,
          std::chrono::nanoseconds interval)
      : db_(std::move(db)), tasks_(std::move(tasks)), interval_(interval) {}
  void run();
  errdefs::Status reconcile(const std::string& ns, const metadata::Container& c);
  errdefs::Status start_task(const std::string& ns, const metadata::Container& c);
  errdefs::Status stop_task(const std::string& ns, const std::string& id);
  // How long a new container is left to its creator: max(interval, 2s).
  std::chrono::nanoseconds start_grace() const;

  std::shared_ptr<metadata::DB> db_;
  std::shared_ptr<services::tasks::TasksService> tasks_;
  const std::chrono::nanoseconds interval_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

void register_plugin(plugin::Registry& registry);

}  // namespace ctrd::restart
