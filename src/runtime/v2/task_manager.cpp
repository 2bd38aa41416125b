#include "runtime/v2/task_manager.h"

#include <github.com/containerd/containerd/runtime/v2/task/shim.pb.h>

#include <map>
#include <mutex>
#include <set>

#include "log/log.h"
#include "os/dirs.h"
#include "protobuf/time.h"
#include "runtime/v2/bundle.h"
#include "runtime/v2/lost_shims.h"
#include "runtime/v2/recovery.h"
#include "runtime/v2/shim.h"
#include "runtime/v2/task_events.h"

namespace ctrd::runtime::v2 {
namespace {

namespace shimapi = containerd::task::v2;

ShimLauncherOptions launcher_options(const TaskManagerOptions& options) {
  return ShimLauncherOptions{.grpc_address = options.grpc_address,
                             .ttrpc_address = options.ttrpc_address,
                             .publish_binary = options.publish_binary,
                             .debug = options.shim_debug,
                             .sched_core = options.sched_core};
}

}  // namespace

// The task table. A task is in it from a successful create (or recovery)
// until a successful remove; `removing` holds off a second remove and a
// lost-shim cleanup while one is in progress.
class TaskManager::Impl : public std::enable_shared_from_this<TaskManager::Impl> {
 public:
  explicit Impl(TaskManagerOptions options)
      : options_(std::move(options)),
        launcher_(launcher_options(options_)),
        events_(options_.events),
        lost_(options_.state_dir, events_) {}

  ~Impl() {
    // Shims outlive the daemon: only the connections close.
    for (auto& [key, entry] : tasks_) {
      if (auto s = entry.task->shim()) s->close();
    }
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Lets the lost-shim cleanups in progress finish and starts no more.
  void stop_cleanups() { lost_.stop(); }

  void recover() {
    recover_tasks(RecoveryContext{.state_dir = options_.state_dir,
                                  .root_dir = options_.root_dir,
                                  .launcher = launcher_,
                                  .lost = lost_,
                                  .events = events_,
                                  .db = options_.db,
                                  .on_lost = [this](const std::string& ns,
                                                    const std::string& id) { return on_lost(ns, id); }},
                  [this](RecoveredTask recovered) {
                    std::lock_guard lock(mu_);
                    const Key key{recovered.task->ns(), recovered.task->id()};
                    tasks_.emplace(
                        key, Entry{.task = std::move(recovered.task), .binary = std::move(recovered.binary)});
                  });
  }

  errdefs::StatusOr<std::shared_ptr<ShimTask>> create(const std::string& ns, const std::string& id,
                                                      const CreateOptions& opts) {
    const Key key{ns, id};
    {
      std::lock_guard lock(mu_);
      if (tasks_.contains(key) || creating_.contains(key))
        return errdefs::AlreadyExists("task " + id + ": already exists");
      creating_.insert(key);
    }
    auto created = create_reserved(ns, id, opts);
    std::lock_guard lock(mu_);
    creating_.erase(key);
    if (!created.ok()) return created.status();
    auto task = created->task;
    tasks_.emplace(key, std::move(created).value());
    return task;
  }

  errdefs::StatusOr<std::shared_ptr<ShimTask>> get(const std::string& ns, const std::string& id) const {
    std::lock_guard lock(mu_);
    auto it = tasks_.find({ns, id});
    if (it == tasks_.end()) return errdefs::NotFound("task " + id + " not found");
    return it->second.task;
  }

  std::vector<std::shared_ptr<ShimTask>> list(const std::string& ns) const {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<ShimTask>> out;
    for (const auto& [key, entry] : tasks_) {
      if (ns.empty() || key.first == ns) out.push_back(entry.task);
    }
    return out;
  }

  errdefs::StatusOr<Exit> remove(const std::string& ns, const std::string& id) {
    const Key key{ns, id};
    Entry entry;
    {
      std::lock_guard lock(mu_);
      auto it = tasks_.find(key);
      if (it == tasks_.end()) return errdefs::NotFound("task " + id + " not found");
      if (it->second.removing) return errdefs::FailedPrecondition("task " + id + " is being deleted");
      it->second.removing = true;
      entry = it->second;
    }
    auto result = remove_task(entry);
    std::lock_guard lock(mu_);
    if (!result.ok()) {
      if (auto it = tasks_.find(key); it != tasks_.end()) it->second.removing = false;
      return result;
    }
    tasks_.erase(key);
    return result;
  }

 private:
  using Key = std::pair<std::string, std::string>;
  struct Entry {
    std::shared_ptr<ShimTask> task;
    ShimBinary binary;
    bool removing = false;
  };

  // What a shim's connection calls when it is lost without being closed.
  std::function<void()> on_lost(const std::string& ns, const std::string& id) {
    std::weak_ptr<Impl> weak = weak_from_this();
    return [weak, ns, id] {
      // On the ttRPC loop: the cleanup runs a process and closes that very
      // connection, so it goes to the cleanup pool.
      if (auto self = weak.lock()) {
        self->lost_.submit([weak, ns, id] {
          if (auto alive = weak.lock()) alive->handle_lost(ns, id);
        });
      }
    };
  }

  errdefs::StatusOr<Entry> create_reserved(const std::string& ns, const std::string& id,
                                           const CreateOptions& opts) {
    CTRD_ASSIGN_OR_RETURN(std::string binary_path, launcher_.resolve(opts.runtime));
    CTRD_ASSIGN_OR_RETURN(Bundle bundle,
                          Bundle::create(options_.state_dir, options_.root_dir, ns, id, opts.spec));
    Entry entry{.task = std::make_shared<ShimTask>(ns, id, opts.runtime, bundle.path()),
                .binary = launcher_.binary_at(binary_path)};
    auto started = launcher_.start(entry.binary, bundle, opts, on_lost(ns, id));
    if (!started.ok()) {
      if (errdefs::Status removed = bundle.remove(); !removed.ok())
        log::error("failed to remove bundle", {{"id", id}, {"error", removed.message()}});
      return started.status();
    }
    entry.task->attach(std::move(started->shim), started->pid);
    return entry;
  }

  errdefs::StatusOr<Exit> remove_task(const Entry& entry) {
    const auto& task = entry.task;
    const Bundle bundle = Bundle::at(options_.state_dir, task->ns(), task->id());
    auto shim = task->shim();
    if (!shim) {
      // Dead shim: cleaned up already; the delete event is ours to send.
      const Exit exit = task->dead_exit().value_or(Exit{task->pid(), 255, std::chrono::system_clock::now()});
      events_.deleted(*task, exit);
      return exit;
    }
    shimapi::DeleteRequest req;
    req.set_id(task->id());
    auto deleted = shim->call<shimapi::DeleteResponse>("Delete", req);
    Exit exit;
    if (deleted.ok()) {
      exit = Exit{deleted->pid(), deleted->exit_status(), protobuf::from_timestamp(deleted->exited_at())};
    } else if (shim_gone(deleted.status())) {
      exit = lost_.bury(entry.binary, *task);
      events_.deleted(*task, exit);
      return exit;
    } else if (deleted.status().code() != errdefs::Code::kNotFound) {
      return deleted.status();
    }
    shimapi::ShutdownRequest shutdown;
    shutdown.set_id(task->id());
    if (auto s = shim->call<google::protobuf::Empty>("Shutdown", shutdown, kShimShutdownTimeout);
        !s.ok() && !shim_gone(s.status())) {
      log::warn("failed to shut the shim down", {{"id", task->id()}, {"error", s.status().message()}});
    }
    task->mark_dead(exit);
    if (errdefs::Status removed = bundle.remove(); !removed.ok())
      log::error("failed to delete bundle", {{"id", task->id()}, {"error", removed.message()}});
    return exit;
  }

  void handle_lost(const std::string& ns, const std::string& id) {
    Entry entry;
    {
      std::lock_guard lock(mu_);
      auto it = tasks_.find({ns, id});
      if (it == tasks_.end() || it->second.removing || it->second.task->dead()) return;
      // Held like a removal, so a concurrent Delete waits for the cleanup.
      it->second.removing = true;
      entry = it->second;
    }
    lost_.bury(entry.binary, *entry.task);
    std::lock_guard lock(mu_);
    if (auto it = tasks_.find({ns, id}); it != tasks_.end()) it->second.removing = false;
  }

  const TaskManagerOptions options_;
  ShimLauncher launcher_;
  const TaskEvents events_;
  // Stopped (joined) with the TaskManager, before the table goes.
  LostShims lost_;
  mutable std::mutex mu_;
  std::map<Key, Entry> tasks_;
  std::set<Key> creating_;
};

errdefs::StatusOr<std::shared_ptr<TaskManager>> TaskManager::open(TaskManagerOptions options) {
  for (const std::string& dir : {options.state_dir, options.root_dir}) {
    CTRD_RETURN_IF_ERROR(os::ensure_dir(dir, 0711));
  }
  auto impl = std::make_shared<Impl>(std::move(options));
  impl->recover();
  return std::shared_ptr<TaskManager>(new TaskManager(std::move(impl)));
}

TaskManager::TaskManager(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
TaskManager::~TaskManager() {
  // Cleanups in progress finish; none starts after this.
  impl_->stop_cleanups();
}

errdefs::StatusOr<std::shared_ptr<runtime::Task>> TaskManager::create(const std::string& ns,
                                                                      const std::string& id,
                                                                      const CreateOptions& options) {
  CTRD_ASSIGN_OR_RETURN(std::shared_ptr<ShimTask> task, impl_->create(ns, id, options));
  return std::shared_ptr<runtime::Task>(std::move(task));
}
errdefs::StatusOr<std::shared_ptr<runtime::Task>> TaskManager::get(const std::string& ns,
                                                                   const std::string& id) const {
  CTRD_ASSIGN_OR_RETURN(std::shared_ptr<ShimTask> task, impl_->get(ns, id));
  return std::shared_ptr<runtime::Task>(std::move(task));
}
std::vector<std::shared_ptr<runtime::Task>> TaskManager::list(const std::string& ns) const {
  auto tasks = impl_->list(ns);
  return {tasks.begin(), tasks.end()};
}
errdefs::StatusOr<Exit> TaskManager::remove(const std::string& ns, const std::string& id) {
  return impl_->remove(ns, id);
}

}  // namespace ctrd::runtime::v2
