#include "runtime/v2/shim_task.h"

#include <github.com/containerd/containerd/api/types/task/task.pb.h>
#include <github.com/containerd/containerd/runtime/v2/task/shim.pb.h>

#include "protobuf/time.h"
#include "runtime/v2/shim.h"

namespace ctrd::runtime::v2 {
namespace {

namespace shimapi = containerd::task::v2;
namespace types = containerd::v1::types;
using protobuf::from_timestamp;

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

errdefs::Status process_finished(const std::string& id) {
  return errdefs::NotFound("task " + id + ": process already finished");
}

}  // namespace

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

}  // namespace ctrd::runtime::v2
