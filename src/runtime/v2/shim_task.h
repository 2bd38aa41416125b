// runtime/v2/shim_task: a task as the v2 runtime runs it — each call is a
// ttRPC round trip to the task's shim (containerd.task.v2.Task); once the
// shim is gone, the task answers from the exit its cleanup reported.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "errdefs/errdefs.h"
#include "runtime/runtime.h"

namespace containerd::v1::types {
class ProcessInfo;
}

namespace ctrd::runtime::v2 {

using runtime::Any;
using runtime::CreateOptions;
using runtime::Exit;
using runtime::IO;
using runtime::ProcessState;
using runtime::Status;
using runtime::SystemTime;

class Shim;

// A runtime::Task run by a shim. Safe to use from any thread.
class ShimTask final : public runtime::Task, public std::enable_shared_from_this<ShimTask> {
 public:
  ShimTask(std::string ns, std::string id, std::string runtime, std::string bundle);
  ~ShimTask() override;
  ShimTask(const ShimTask&) = delete;
  ShimTask& operator=(const ShimTask&) = delete;

  const std::string& ns() const override { return ns_; }
  const std::string& id() const override { return id_; }
  const std::string& runtime() const override { return runtime_; }
  const std::string& bundle() const override { return bundle_; }
  uint32_t pid() const override;

  errdefs::StatusOr<uint32_t> start(const std::string& exec_id) override;
  errdefs::StatusOr<ProcessState> state(const std::string& exec_id) override;
  errdefs::Status kill(const std::string& exec_id, uint32_t signal, bool all) override;
  errdefs::Status exec(const std::string& exec_id, const IO& io, const Any& spec) override;
  errdefs::StatusOr<Exit> delete_process(const std::string& exec_id) override;
  errdefs::Status resize_pty(const std::string& exec_id, uint32_t width, uint32_t height) override;
  errdefs::Status close_io(const std::string& exec_id) override;
  errdefs::Status pause() override;
  errdefs::Status resume() override;
  errdefs::StatusOr<std::vector<containerd::v1::types::ProcessInfo>> pids() override;
  errdefs::StatusOr<Any> stats(std::optional<std::chrono::nanoseconds> timeout = std::nullopt) override;
  errdefs::Status update(const Any& resources,
                         const std::map<std::string, std::string>& annotations) override;
  errdefs::Status checkpoint(const std::string& path, const std::optional<Any>& options) override;
  void wait(const std::string& exec_id, WaitCallback done) override;
  // True once the shim is gone.
  bool dead() const override;

  // For the runtime's own parts (the task table, recovery, lost shims).
  std::shared_ptr<Shim> shim() const;
  std::optional<Exit> dead_exit() const;
  void attach(std::shared_ptr<Shim> shim, uint32_t pid);
  // The shim is gone: every call now answers from `exit`; waiters get it.
  void mark_dead(Exit exit);

 private:
  const std::string ns_;
  const std::string id_;
  const std::string runtime_;
  const std::string bundle_;
  mutable std::mutex mu_;
  std::shared_ptr<Shim> shim_;
  uint32_t pid_ = 0;
  std::optional<Exit> dead_exit_;
  std::vector<WaitCallback> init_waiters_;  // waits cut short by the shim's death
};

}  // namespace ctrd::runtime::v2
