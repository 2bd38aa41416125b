#include "runtime/v2/task_manager.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <github.com/containerd/containerd/api/events/task.pb.h>
#include <github.com/containerd/containerd/api/types/task/task.pb.h>
#include <github.com/containerd/containerd/runtime/v2/task/shim.pb.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "events/publish.h"
#include "executor/worker_pool.h"
#include "log/log.h"
#include "metadata/db.h"
#include "os/dirs.h"
#include "os/fs.h"
#include "os/process.h"
#include "protobuf/time.h"
#include "runtime/v2/bundle.h"
#include "runtime/v2/shim.h"

namespace ctrd::runtime::v2 {
namespace {

namespace shimapi = containerd::task::v2;
namespace types = containerd::v1::types;
using protobuf::from_timestamp;
using protobuf::to_timestamp;

// containerd's io.containerd.timeout.shim.* defaults.
constexpr auto kLoadTimeout = std::chrono::seconds(5);
constexpr auto kShutdownTimeout = std::chrono::seconds(3);

Status from_proto(types::Status s) {
  switch (s) {
    case types::CREATED:
      return Status::kCreated;
    case types::RUNNING:
      return Status::kRunning;
    case types::STOPPED:
      return Status::kStopped;
    case types::PAUSED:
      return Status::kPaused;
    case types::PAUSING:
      return Status::kPausing;
    default:
      return Status::kUnknown;
  }
}

std::vector<std::string> subdirectories(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
      out.push_back(name);
  }
  ::closedir(d);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string task_name(const std::string& ns, const std::string& id) { return ns + "/" + id; }

errdefs::Status process_finished(const std::string& id) {
  return errdefs::NotFound("task " + id + ": process already finished");
}

}  // namespace

std::string shim_binary_name(const std::string& runtime) {
  std::vector<std::string> parts;
  std::stringstream in(runtime);
  for (std::string part; std::getline(in, part, '.');) parts.push_back(part);
  if (parts.size() < 2) return "";
  return "containerd-shim-" + parts[parts.size() - 2] + "-" + parts.back();
}

// ---- ShimTask ----

ShimTask::ShimTask(std::string ns, std::string id, std::string runtime, std::string bundle)
    : ns_(std::move(ns)), id_(std::move(id)), runtime_(std::move(runtime)), bundle_(std::move(bundle)) {}

ShimTask::~ShimTask() = default;

uint32_t ShimTask::pid() const {
  std::lock_guard lock(mu_);
  return pid_;
}

bool ShimTask::dead() const {
  std::lock_guard lock(mu_);
  return dead_exit_.has_value();
}

std::optional<Exit> ShimTask::dead_exit() const {
  std::lock_guard lock(mu_);
  return dead_exit_;
}

std::shared_ptr<Shim> ShimTask::shim() const {
  std::lock_guard lock(mu_);
  return shim_;
}

void ShimTask::attach(std::shared_ptr<Shim> shim, uint32_t pid) {
  std::lock_guard lock(mu_);
  shim_ = std::move(shim);
  pid_ = pid;
}

void ShimTask::mark_dead(Exit exit) {
  std::vector<WaitCallback> waiters;
  std::shared_ptr<Shim> shim;
  {
    std::lock_guard lock(mu_);
    if (!dead_exit_) dead_exit_ = exit;
    if (pid_ == 0) pid_ = exit.pid;
    waiters.swap(init_waiters_);
    shim = std::move(shim_);
  }
  if (shim) shim->close();
  for (auto& done : waiters) done(exit);
}

errdefs::StatusOr<uint32_t> ShimTask::start(const std::string& exec_id) {
  auto s = shim();
  if (!s) return errdefs::FailedPrecondition("task " + id_ + " has exited: it cannot be started");
  shimapi::StartRequest req;
  req.set_id(id_);
  req.set_exec_id(exec_id);
  CTRD_ASSIGN_OR_RETURN(auto resp, s->call<shimapi::StartResponse>("Start", req));
  return resp.pid();
}

errdefs::StatusOr<ProcessState> ShimTask::state(const std::string& exec_id) {
  auto s = shim();
  if (!s) {
    std::lock_guard lock(mu_);
    if (!exec_id.empty()) return errdefs::NotFound("process " + exec_id + " not found in task " + id_);
    return ProcessState{.id = id_,
                        .pid = pid_,
                        .status = Status::kStopped,
                        .io = {},
                        .exit_status = dead_exit_ ? dead_exit_->status : 255,
                        .exited_at = dead_exit_ ? dead_exit_->at : SystemTime{}};
  }
  shimapi::StateRequest req;
  req.set_id(id_);
  req.set_exec_id(exec_id);
  CTRD_ASSIGN_OR_RETURN(auto resp, s->call<shimapi::StateResponse>("State", req));
  return ProcessState{.id = exec_id.empty() ? id_ : exec_id,
                      .pid = resp.pid(),
                      .status = from_proto(resp.status()),
                      .io = {resp.stdin(), resp.stdout(), resp.stderr(), resp.terminal()},
                      .exit_status = resp.exit_status(),
                      .exited_at = from_timestamp(resp.exited_at())};
}

errdefs::Status ShimTask::kill(const std::string& exec_id, uint32_t signal, bool all) {
  auto s = shim();
  if (!s) return process_finished(id_);
  shimapi::KillRequest req;
  req.set_id(id_);
  req.set_exec_id(exec_id);
  req.set_signal(signal);
  req.set_all(all);
  return s->call<google::protobuf::Empty>("Kill", req).status();
}

errdefs::Status ShimTask::exec(const std::string& exec_id, const IO& io, const Any& spec) {
  auto s = shim();
  if (!s) return errdefs::FailedPrecondition("task " + id_ + " has exited: cannot exec in it");
  shimapi::ExecProcessRequest req;
  req.set_id(id_);
  req.set_exec_id(exec_id);
  req.set_terminal(io.terminal);
  req.set_stdin(io.stdin);
  req.set_stdout(io.stdout);
  req.set_stderr(io.stderr);
  *req.mutable_spec() = spec;
  return s->call<google::protobuf::Empty>("Exec", req).status();
}

errdefs::StatusOr<Exit> ShimTask::delete_process(const std::string& exec_id) {
  if (exec_id.empty()) return errdefs::InvalidArgument("delete_process needs an exec id");
  auto s = shim();
  if (!s) return errdefs::NotFound("process " + exec_id + " not found in task " + id_);
  shimapi::DeleteRequest req;
  req.set_id(id_);
  req.set_exec_id(exec_id);
  CTRD_ASSIGN_OR_RETURN(auto resp, s->call<shimapi::DeleteResponse>("Delete", req));
  return Exit{resp.pid(), resp.exit_status(), from_timestamp(resp.exited_at())};
}

errdefs::Status ShimTask::resize_pty(const std::string& exec_id, uint32_t width, uint32_t height) {
  auto s = shim();
  if (!s) return process_finished(id_);
  shimapi::ResizePtyRequest req;
  req.set_id(id_);
  req.set_exec_id(exec_id);
  req.set_width(width);
  req.set_height(height);
  return s->call<google::protobuf::Empty>("ResizePty", req).status();
}

errdefs::Status ShimTask::close_io(const std::string& exec_id) {
  auto s = shim();
  if (!s) return process_finished(id_);
  shimapi::CloseIORequest req;
  req.set_id(id_);
  req.set_exec_id(exec_id);
  req.set_stdin(true);
  return s->call<google::protobuf::Empty>("CloseIO", req).status();
}

errdefs::Status ShimTask::pause() {
  auto s = shim();
  if (!s) return process_finished(id_);
  shimapi::PauseRequest req;
  req.set_id(id_);
  return s->call<google::protobuf::Empty>("Pause", req).status();
}

errdefs::Status ShimTask::resume() {
  auto s = shim();
  if (!s) return process_finished(id_);
  shimapi::ResumeRequest req;
  req.set_id(id_);
  return s->call<google::protobuf::Empty>("Resume", req).status();
}

errdefs::StatusOr<std::vector<types::ProcessInfo>> ShimTask::pids() {
  auto s = shim();
  if (!s) return std::vector<types::ProcessInfo>{};
  shimapi::PidsRequest req;
  req.set_id(id_);
  CTRD_ASSIGN_OR_RETURN(auto resp, s->call<shimapi::PidsResponse>("Pids", req));
  return std::vector<types::ProcessInfo>(resp.processes().begin(), resp.processes().end());
}

errdefs::StatusOr<Any> ShimTask::stats(std::optional<std::chrono::nanoseconds> timeout) {
  auto s = shim();
  if (!s) return process_finished(id_);
  shimapi::StatsRequest req;
  req.set_id(id_);
  CTRD_ASSIGN_OR_RETURN(auto resp, s->call<shimapi::StatsResponse>("Stats", req, timeout));
  return resp.stats();
}

errdefs::Status ShimTask::update(const Any& resources,
                                 const std::map<std::string, std::string>& annotations) {
  auto s = shim();
  if (!s) return process_finished(id_);
  shimapi::UpdateTaskRequest req;
  req.set_id(id_);
  *req.mutable_resources() = resources;
  req.mutable_annotations()->insert(annotations.begin(), annotations.end());
  return s->call<google::protobuf::Empty>("Update", req).status();
}

errdefs::Status ShimTask::checkpoint(const std::string& path, const std::optional<Any>& options) {
  auto s = shim();
  if (!s) return process_finished(id_);
  shimapi::CheckpointTaskRequest req;
  req.set_id(id_);
  req.set_path(path);
  if (options) *req.mutable_options() = *options;
  return s->call<google::protobuf::Empty>("Checkpoint", req).status();
}

void ShimTask::wait(const std::string& exec_id, WaitCallback done) {
  std::shared_ptr<Shim> s;
  std::optional<Exit> exit;
  {
    std::lock_guard lock(mu_);
    s = shim_;
    exit = dead_exit_;
  }
  if (!s) {
    if (!exec_id.empty()) return done(errdefs::NotFound("process " + exec_id + " not found in task " + id_));
    return done(*exit);
  }
  shimapi::WaitRequest req;
  req.set_id(id_);
  req.set_exec_id(exec_id);
  std::weak_ptr<ShimTask> weak = weak_from_this();
  s->call_async<shimapi::WaitResponse>(
      "Wait", req, [weak, exec_id, done](errdefs::StatusOr<shimapi::WaitResponse> resp) mutable {
        if (resp.ok()) return done(Exit{0, resp->exit_status(), from_timestamp(resp->exited_at())});
        auto self = weak.lock();
        if (!self || !exec_id.empty() || !shim_gone(resp.status())) return done(resp.status());
        // The shim died (or was shut down by a removal): the exit is known
        // once its cleanup has run.
        std::unique_lock lock(self->mu_);
        if (self->dead_exit_) {
          Exit exit = *self->dead_exit_;
          lock.unlock();
          return done(exit);
        }
        self->init_waiters_.push_back(std::move(done));
      });
}

// ---- TaskManager ----

class TaskManager::Impl : public std::enable_shared_from_this<TaskManager::Impl> {
 public:
  // Lets the lost-shim cleanups in progress finish and starts no more.
  void stop_cleanups() { cleanup_.stop(); }

  explicit Impl(TaskManagerOptions options) : options_(std::move(options)) {}

  ~Impl() {
    // Shims outlive the daemon: only the connections close.
    for (auto& [key, entry] : tasks_) {
      if (auto s = entry.task->shim()) s->close();
    }
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
    std::shared_ptr<ShimTask> task;
    Entry entry_copy;
    {
      std::lock_guard lock(mu_);
      auto it = tasks_.find(key);
      if (it == tasks_.end()) return errdefs::NotFound("task " + id + " not found");
      if (it->second.removing) return errdefs::FailedPrecondition("task " + id + " is being deleted");
      it->second.removing = true;
      entry_copy = it->second;
      task = it->second.task;
    }
    auto result = remove_task(entry_copy);
    std::lock_guard lock(mu_);
    if (!result.ok()) {
      if (auto it = tasks_.find(key); it != tasks_.end()) it->second.removing = false;
      return result;
    }
    tasks_.erase(key);
    return result;
  }

  void recover() {
    for (const std::string& ns : subdirectories(options_.state_dir)) {
      for (const std::string& id : subdirectories(options_.state_dir + "/" + ns)) recover_task(ns, id);
      remove_orphan_work_dirs(ns);
    }
  }

 private:
  using Key = std::pair<std::string, std::string>;
  struct Entry {
    std::shared_ptr<ShimTask> task;
    ShimBinary binary;
    std::string bundle_ns;
    bool removing = false;
  };

  ShimBinary binary_at(const std::string& path) const {
    return ShimBinary{.path = path,
                      .grpc_address = options_.grpc_address,
                      .ttrpc_address = options_.ttrpc_address,
                      .publish_binary = options_.publish_binary,
                      .debug = options_.shim_debug,
                      .sched_core = options_.sched_core};
  }

  // As containerd: an absolute path as is; else the name's shim binary on
  // PATH, or next to the daemon's executable. Unlike containerd, a binary that
  // someone other than root could replace is refused.
  errdefs::StatusOr<std::string> resolve_runtime(const std::string& runtime) {
    CTRD_ASSIGN_OR_RETURN(std::string path, find_runtime(runtime));
    if (auto trusted = os::check_trusted_file(path); !trusted.ok()) {
      log::warn("refusing shim binary", {{"runtime", runtime}, {"path", path}, {"error", trusted.message()}});
      return errdefs::PermissionDenied("refusing shim binary " + path + " for runtime " + runtime + ": " +
                                       trusted.message());
    }
    return path;
  }

  errdefs::StatusOr<std::string> find_runtime(const std::string& runtime) {
    if (runtime.empty()) return errdefs::InvalidArgument("no runtime name");
    if (runtime.front() == '/') {
      struct stat st {};
      if (::stat(runtime.c_str(), &st) != 0)
        return errdefs::FromErrno(errno, "invalid custom binary path " + runtime);
      return runtime;
    }
    const std::string name = shim_binary_name(runtime);
    if (name.empty())
      return errdefs::InvalidArgument("invalid runtime name " + runtime +
                                      ", correct runtime name should be either format like "
                                      "`io.containerd.runc.v1` or a full path to the binary");
    {
      std::lock_guard lock(mu_);
      if (auto it = runtime_paths_.find(name); it != runtime_paths_.end()) return it->second;
    }
    auto found = os::look_path(name);
    if (!found.ok()) {
      const std::string self = options_.publish_binary;
      const std::string beside = self.substr(0, self.rfind('/') + 1) + name;
      if (::access(beside.c_str(), X_OK) != 0)
        return errdefs::NotFound("runtime \"" + runtime + "\" binary not installed \"" + name + "\"");
      found = beside;
    }
    std::lock_guard lock(mu_);
    runtime_paths_[name] = *found;
    return *found;
  }

  std::function<void()> on_lost(const std::string& ns, const std::string& id) {
    std::weak_ptr<Impl> weak = weak_from_this();
    return [weak, ns, id] {
      // On the connection's reader thread: the cleanup runs a process and
      // closes that very connection, so it goes to the cleanup pool.
      if (auto self = weak.lock()) {
        self->cleanup_.submit([weak, ns, id] {
          if (auto alive = weak.lock()) alive->handle_lost(ns, id);
        });
      }
    };
  }

  errdefs::StatusOr<Entry> create_reserved(const std::string& ns, const std::string& id,
                                           const CreateOptions& opts) {
    CTRD_ASSIGN_OR_RETURN(std::string binary_path, resolve_runtime(opts.runtime));
    CTRD_ASSIGN_OR_RETURN(Bundle bundle,
                          Bundle::create(options_.state_dir, options_.root_dir, ns, id, opts.spec));
    Entry entry{.task = std::make_shared<ShimTask>(ns, id, opts.runtime, bundle.path()),
                .binary = binary_at(binary_path),
                .bundle_ns = ns};
    const std::optional<Any>& shim_options = opts.task_options ? opts.task_options : opts.runtime_options;
    auto shim = Shim::start(entry.binary, bundle, shim_options, logs_, on_lost(ns, id));
    if (!shim.ok()) {
      (void)bundle.remove();
      return shim.status().with_context("failed to start shim");
    }

    shimapi::CreateTaskRequest req;
    req.set_id(id);
    req.set_bundle(bundle.path());
    req.set_stdin(opts.io.stdin);
    req.set_stdout(opts.io.stdout);
    req.set_stderr(opts.io.stderr);
    req.set_terminal(opts.io.terminal);
    req.set_checkpoint(opts.checkpoint);
    if (shim_options) *req.mutable_options() = *shim_options;
    for (const auto& m : opts.rootfs) {
      auto* out = req.add_rootfs();
      out->set_type(m.type);
      out->set_source(m.source);
      for (const auto& o : m.options) out->add_options(o);
    }
    auto created = (*shim)->call<shimapi::CreateTaskResponse>("Create", req);
    if (!created.ok()) {
      shut_down(**shim, id);
      if (errdefs::Status removed = bundle.remove(); !removed.ok())
        log::error("failed to remove bundle", {{"id", id}, {"error", removed.message()}});
      return created.status().with_context("failed to create shim task");
    }
    entry.task->attach(std::move(shim).value(), created->pid());
    return entry;
  }

  // Asks the shim to delete what it may still hold and to exit; then drops
  // the connection.
  void shut_down(Shim& shim, const std::string& id) {
    shimapi::DeleteRequest del;
    del.set_id(id);
    (void)shim.call<shimapi::DeleteResponse>("Delete", del, kShutdownTimeout);
    shimapi::ShutdownRequest req;
    req.set_id(id);
    req.set_now(true);
    (void)shim.call<google::protobuf::Empty>("Shutdown", req, kShutdownTimeout);
    shim.close();
  }

  errdefs::StatusOr<Exit> remove_task(const Entry& entry) {
    const auto& task = entry.task;
    const Bundle bundle = Bundle::at(options_.state_dir, task->ns(), task->id());
    auto shim = task->shim();
    if (!shim) {
      // Dead shim: cleaned up already; the delete event is ours to send.
      const Exit exit = task->dead_exit().value_or(Exit{task->pid(), 255, std::chrono::system_clock::now()});
      publish_delete(*task, exit);
      return exit;
    }
    shimapi::DeleteRequest req;
    req.set_id(task->id());
    auto deleted = shim->call<shimapi::DeleteResponse>("Delete", req);
    Exit exit;
    if (deleted.ok()) {
      exit = Exit{deleted->pid(), deleted->exit_status(), from_timestamp(deleted->exited_at())};
    } else if (shim_gone(deleted.status())) {
      exit = cleanup_dead(entry);
      task->mark_dead(exit);
      publish_exit(*task, exit);
      publish_delete(*task, exit);
      return exit;
    } else if (deleted.status().code() != errdefs::Code::kNotFound) {
      return deleted.status();
    }
    shimapi::ShutdownRequest shutdown;
    shutdown.set_id(task->id());
    if (auto s = shim->call<google::protobuf::Empty>("Shutdown", shutdown, kShutdownTimeout);
        !s.ok() && !shim_gone(s.status())) {
      log::warn("failed to shut the shim down", {{"id", task->id()}, {"error", s.status().message()}});
    }
    task->mark_dead(exit);
    if (errdefs::Status removed = bundle.remove(); !removed.ok())
      log::error("failed to delete bundle", {{"id", task->id()}, {"error", removed.message()}});
    return exit;
  }

  // The shim's `delete` action and the bundle's removal; the exit it
  // reported, or 255 now when it could not say.
  Exit cleanup_dead(const Entry& entry) {
    const auto& task = entry.task;
    const Bundle bundle = Bundle::at(options_.state_dir, task->ns(), task->id());
    log::warn("cleaning up after shim disconnected", {{"id", task->id()}, {"namespace", task->ns()}});
    Exit exit{task->pid(), 255, std::chrono::system_clock::now()};
    if (auto reported = Shim::cleanup(entry.binary, bundle); reported.ok()) {
      exit = *reported;
      if (exit.pid == 0) exit.pid = task->pid();
    } else {
      log::warn("failed to clean up after shim disconnected",
                {{"id", task->id()}, {"error", reported.status().message()}});
    }
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
    const Exit exit = cleanup_dead(entry);
    entry.task->mark_dead(exit);
    publish_exit(*entry.task, exit);
    std::lock_guard lock(mu_);
    if (auto it = tasks_.find({ns, id}); it != tasks_.end()) it->second.removing = false;
  }

  void publish_exit(const ShimTask& task, const Exit& exit) {
    if (!options_.events) return;
    containerd::events::TaskExit event;
    event.set_container_id(task.id());
    event.set_id(task.id());
    event.set_pid(exit.pid);
    event.set_exit_status(exit.status);
    *event.mutable_exited_at() = to_timestamp(exit.at);
    (void)events::publish(*options_.events, task.ns(), "/tasks/exit", event);
  }

  void publish_delete(const ShimTask& task, const Exit& exit) {
    if (!options_.events) return;
    containerd::events::TaskDelete event;
    event.set_container_id(task.id());
    event.set_pid(exit.pid);
    event.set_exit_status(exit.status);
    *event.mutable_exited_at() = to_timestamp(exit.at);
    (void)events::publish(*options_.events, task.ns(), "/tasks/delete", event);
  }

  std::string runtime_of_container(const std::string& ns, const std::string& id) const {
    if (!options_.db) return "";
    auto container = options_.db->containers(ns).get(id);
    return container.ok() ? container->runtime.name : "";
  }

  void recover_task(const std::string& ns, const std::string& id) {
    const Bundle bundle = Bundle::at(options_.state_dir, ns, id);
    const std::string name = task_name(ns, id);
    if (subdirectories(bundle.path()).empty() && !std::ifstream(bundle.file("config.json"))) {
      (void)bundle.remove();
      return;
    }
    const std::string runtime_name = runtime_of_container(ns, id);
    std::string binary_path = read_file(bundle.file("shim-binary-path"));
    if (binary_path.empty()) {
      auto resolved = resolve_runtime(runtime_name);
      if (!resolved.ok()) {
        log::warn("removing a bundle whose runtime is unknown",
                  {{"task", name}, {"error", resolved.status().message()}});
        (void)bundle.remove();
        return;
      }
      binary_path = *resolved;
    }
    Entry entry{.task = std::make_shared<ShimTask>(ns, id, runtime_name.empty() ? binary_path : runtime_name,
                                                   bundle.path()),
                .binary = binary_at(binary_path),
                .bundle_ns = ns};

    auto shim = Shim::connect(bundle, logs_, on_lost(ns, id));
    if (shim.ok()) {
      shimapi::ConnectRequest req;
      req.set_id(id);
      auto connected = (*shim)->call<shimapi::ConnectResponse>("Connect", req, kLoadTimeout);
      if (connected.ok() && connected->task_pid() != 0) {
        entry.task->attach(std::move(shim).value(), connected->task_pid());
        log::info("reconnected to shim", {{"task", name}, {"pid", std::to_string(connected->task_pid())}});
        std::lock_guard lock(mu_);
        tasks_.emplace(Key{ns, id}, std::move(entry));
        return;
      }
      if (connected.ok()) {
        // The daemon stopped between starting the shim and creating the
        // task: nothing runs there, and nothing must be left.
        log::warn("shutting down a shim that holds no task", {{"task", name}});
        shut_down(**shim, id);
        (void)Shim::cleanup(entry.binary, bundle);
        (void)bundle.remove();
        return;
      }
      (*shim)->close();
    }
    const Exit exit = cleanup_dead(entry);
    if (exit.pid == 0) return;  // no container was ever created
    entry.task->mark_dead(exit);
    publish_exit(*entry.task, exit);
    std::lock_guard lock(mu_);
    tasks_.emplace(Key{ns, id}, std::move(entry));
  }

  void remove_orphan_work_dirs(const std::string& ns) {
    const std::string dir = options_.root_dir + "/" + ns;
    for (const std::string& id : subdirectories(dir)) {
      std::lock_guard lock(mu_);
      if (tasks_.contains({ns, id})) continue;
      std::string work = dir;
      work += '/';
      work += id;
      (void)os::fs::remove_tree(work);
    }
  }

  const TaskManagerOptions options_;
  ShimLogs logs_;
  // Where lost shims are cleaned up; stopped (joined) with the TaskManager.
  executor::WorkerPool cleanup_{4};
  mutable std::mutex mu_;
  std::map<Key, Entry> tasks_;
  std::set<Key> creating_;
  std::map<std::string, std::string> runtime_paths_;
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
