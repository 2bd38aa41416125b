#include "restart/monitor.h"

#include <signal.h>

#include <algorithm>
#include <future>

#include "config/binder.h"
#include "log/log.h"

namespace ctrd::restart {
namespace {

using errdefs::Status;

struct Config {
  config::Duration interval{std::chrono::seconds(10)};
  void bind(config::Binder& b) { b.field("interval", interval); }
};

std::string status_name(runtime::Status s) {
  switch (s) {
    case runtime::Status::kCreated:
      return "created";
    case runtime::Status::kRunning:
      return "running";
    case runtime::Status::kStopped:
      return "stopped";
    case runtime::Status::kPaused:
      return "paused";
    case runtime::Status::kPausing:
      return "pausing";
    default:
      return "unknown";
  }
}

std::string label(const metadata::Container& c, std::string_view key) {
  auto it = c.labels.find(std::string(key));
  return it == c.labels.end() ? "" : it->second;
}

// Bounded: a task that ignores SIGKILL (stuck in D state) must not stall
// the monitor forever.
errdefs::StatusOr<runtime::Exit> wait_exit(runtime::Task& task, std::chrono::seconds timeout) {
  auto promise = std::make_shared<std::promise<errdefs::StatusOr<runtime::Exit>>>();
  auto future = promise->get_future();
  task.wait("", [promise](errdefs::StatusOr<runtime::Exit> exit) { promise->set_value(std::move(exit)); });
  if (future.wait_for(timeout) != std::future_status::ready)
    return errdefs::DeadlineExceeded("task " + task.id() + " did not exit after SIGKILL");
  return future.get();
}

}  // namespace

std::shared_ptr<Monitor> Monitor::start(std::shared_ptr<metadata::DB> db,
                                        std::shared_ptr<services::tasks::TasksService> tasks,
                                        std::chrono::nanoseconds interval) {
  if (interval <= std::chrono::nanoseconds::zero()) interval = std::chrono::seconds(10);
  std::shared_ptr<Monitor> monitor(new Monitor(std::move(db), std::move(tasks), interval));
  monitor->thread_ = std::thread([self = monitor.get()] { self->run(); });
  return monitor;
}

Monitor::~Monitor() { (void)close(); }

Status Monitor::close() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  return Status::Ok();
}

void Monitor::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    if (Status s = reconcile(); !s.ok()) log::error("reconcile", {{"error", s.message()}});
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

Status Monitor::reconcile() {
  CTRD_ASSIGN_OR_RETURN(auto namespaces, db_->namespaces().list());
  Status first;
  for (const auto& ns : namespaces) {
    auto containers = db_->containers(ns.name).list({"labels.\"" + std::string(kStatusLabel) + "\""});
    if (!containers.ok()) {
      if (first.ok()) first = containers.status();
      continue;
    }
    for (const auto& c : *containers) {
      if (Status s = reconcile(ns.name, c); !s.ok()) {
        log::error("apply change", {{"namespace", ns.name}, {"container", c.id}, {"error", s.message()}});
        if (first.ok()) first = s;
      }
    }
  }
  return first;
}

Status Monitor::reconcile(const std::string& ns, const metadata::Container& c) {
  const std::string desired = label(c, kStatusLabel);
  std::string current = "stopped";
  if (auto task = tasks_->task(ns, c.id); task.ok()) {
    auto state = (*task)->state("");
    if (state.ok()) current = status_name(state->status);
  }
  if (desired == current) return Status::Ok();
  if (desired == "running") {
    // A container this new is its creator's to start (`ctr run --label
    // containerd.io/restart.status=running` creates the task right after the
    // container); starting it here would race the creator and fail one of
    // the two with AlreadyExists.
    if (current == "stopped" && std::chrono::system_clock::now() - c.created_at < start_grace())
      return Status::Ok();
    return start_task(ns, c);
  }
  if (desired == "stopped") return stop_task(ns, c.id);
  return Status::Ok();
}

std::chrono::nanoseconds Monitor::start_grace() const {
  return std::max<std::chrono::nanoseconds>(interval_, std::chrono::seconds(2));
}

Status Monitor::stop_task(const std::string& ns, const std::string& id) {
  auto task = tasks_->task(ns, id);
  if (!task.ok()) return Status::Ok();
  auto state = (*task)->state("");
  if (state.ok() && state->status != runtime::Status::kStopped) {
    if (Status killed = (*task)->kill("", SIGKILL, true);
        !killed.ok() && killed.code() != errdefs::Code::kNotFound)
      return killed;
    CTRD_RETURN_IF_ERROR(wait_exit(**task, std::chrono::seconds(10)).status());
  }
  return tasks_->remove(ns, id).status();
}

Status Monitor::start_task(const std::string& ns, const metadata::Container& c) {
  CTRD_RETURN_IF_ERROR(stop_task(ns, c.id));
  services::tasks::CreateRequest request;
  request.container_id = c.id;
  const std::string uri = label(c, kLogUriLabel);
  const std::string path = label(c, kLogPathLabel);
  if (!uri.empty()) {
    if (!path.empty())
      log::warn("restart.logpath is deprecated, using restart.loguri", {{"logpath", path}, {"loguri", uri}});
    request.io.stdout = request.io.stderr = uri;
  } else if (!path.empty()) {
    if (path.front() != '/')
      return errdefs::InvalidArgument("restart.logpath " + path + ": absolute path needed");
    request.io.stdout = request.io.stderr = "file://" + path;
  }
  if (!c.snapshot_key.empty()) {
    CTRD_ASSIGN_OR_RETURN(auto snapshotter, db_->snapshotter(ns, c.snapshotter));
    CTRD_ASSIGN_OR_RETURN(request.rootfs, snapshotter->mounts(c.snapshot_key));
  }
  CTRD_ASSIGN_OR_RETURN(auto task, tasks_->create(ns, request));
  if (auto started = task->start(""); !started.ok()) {
    (void)tasks_->remove(ns, c.id);
    return started.status();
  }
  log::info("restarted container", {{"namespace", ns}, {"container", c.id}});
  return Status::Ok();
}

void register_plugin(plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(plugin::type::kInternal),
      .id = "restart",
      .requirements = {std::string(plugin::type::kEvent), std::string(plugin::type::kService)},
      .config = plugin::typed_config<Config>(),
      .init = [](plugin::InitContext& ic) -> errdefs::StatusOr<plugin::Instance> {
        CTRD_ASSIGN_OR_RETURN(Config config, ic.config<Config>());
        CTRD_ASSIGN_OR_RETURN(auto db, ic.get<metadata::DB>(plugin::type::kMetadata));
        CTRD_ASSIGN_OR_RETURN(
            auto tasks, ic.get_by_id<services::tasks::TasksService>(plugin::type::kService, "tasks-service"));
        return plugin::Instance::of(Monitor::start(std::move(db), std::move(tasks), config.interval.value));
      },
  });
}

}  // namespace ctrd::restart
