// runtime/v2/lost_shims: after a shim died without being asked to. Its
// `delete` action cleans up what it left (the container, runc's state, the
// rootfs mounts) and reports the exit, the bundle goes, the task is marked
// dead with that exit and the exit is published. The ttRPC loop that notices
// a lost connection must not wait for a process, so cleanups run on a small
// pool of their own, which the runtime stops (and joins) when it closes.
#pragma once

#include <functional>
#include <string>

#include "executor/worker_pool.h"
#include "runtime/runtime.h"
#include "runtime/v2/shim.h"
#include "runtime/v2/task_events.h"

namespace ctrd::runtime::v2 {

class ShimTask;

class LostShims {
 public:
  LostShims(std::string state_dir, const TaskEvents& events)
      : state_dir_(std::move(state_dir)), events_(events) {}

  // The shim's `delete` action and the bundle's removal: the exit it
  // reported, or 255 now when it could not say.
  runtime::Exit clean_up(const ShimBinary& binary, const ShimTask& task) const;
  // clean_up, then the task marked dead and its exit published.
  runtime::Exit bury(const ShimBinary& binary, ShimTask& task) const;

  // Runs `job` on the cleanup pool (dropped once stopped).
  void submit(std::function<void()> job) { (void)pool_.submit(std::move(job)); }
  // Cleanups in progress finish; none starts after this.
  void stop() { pool_.stop(); }

 private:
  const std::string state_dir_;
  const TaskEvents& events_;
  executor::WorkerPool pool_{4};
};

}  // namespace ctrd::runtime::v2
