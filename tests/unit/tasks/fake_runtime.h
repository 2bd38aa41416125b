// A runtime::Runtime for tests of what sits above the runtime interface: no
// shims, tasks kept in memory, every create recorded so tests can check what
// they asked for, and answers the test chooses.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <github.com/containerd/containerd/api/types/task/task.pb.h>

#include "runtime/runtime.h"

namespace ctrd::runtime::fake {

struct Recorded {
  std::string ns;
  std::string id;
  CreateOptions options;
};

class FakeTask final : public Task {
 public:
  FakeTask(std::string ns, std::string id, std::string runtime)
      : ns_(std::move(ns)),
        id_(std::move(id)),
        runtime_(std::move(runtime)),
        bundle_("/bundles/" + ns_ + "/" + id_) {}

  const std::string& ns() const override { return ns_; }
  const std::string& id() const override { return id_; }
  const std::string& runtime() const override { return runtime_; }
  const std::string& bundle() const override { return bundle_; }
  uint32_t pid() const override { return 4242; }

  errdefs::StatusOr<uint32_t> start(const std::string&) override { return pid(); }
  errdefs::StatusOr<ProcessState> state(const std::string& exec_id) override {
    return ProcessState{.id = exec_id.empty() ? id_ : exec_id, .pid = pid(), .status = Status::kCreated};
  }
  errdefs::Status kill(const std::string&, uint32_t, bool) override { return errdefs::Status::Ok(); }
  errdefs::Status exec(const std::string&, const IO&, const Any&) override { return unsupported(); }
  errdefs::StatusOr<Exit> delete_process(const std::string&) override { return unsupported(); }
  errdefs::Status resize_pty(const std::string&, uint32_t, uint32_t) override { return unsupported(); }
  errdefs::Status close_io(const std::string&) override { return unsupported(); }
  errdefs::Status pause() override { return unsupported(); }
  errdefs::Status resume() override { return unsupported(); }
  errdefs::StatusOr<std::vector<containerd::v1::types::ProcessInfo>> pids() override { return unsupported(); }
  // The monitor's metrics collector calls it; the service tests never scrape.
  errdefs::StatusOr<Any> stats(std::optional<std::chrono::nanoseconds>) override { return unsupported(); }
  errdefs::Status update(const Any&, const std::map<std::string, std::string>&) override {
    return unsupported();
  }
  errdefs::Status checkpoint(const std::string&, const std::optional<Any>&) override { return unsupported(); }
  void wait(const std::string&, WaitCallback done) override { done(unsupported()); }
  bool dead() const override { return false; }

 private:
  static errdefs::Status unsupported() { return errdefs::NotImplemented("not in the fake runtime"); }

  const std::string ns_;
  const std::string id_;
  const std::string runtime_;
  const std::string bundle_;
};

class FakeRuntime final : public Runtime {
 public:
  errdefs::StatusOr<std::shared_ptr<Task>> create(const std::string& ns, const std::string& id,
                                                  const CreateOptions& options) override {
    std::lock_guard lock(mu);
    creates.push_back({ns, id, options});
    if (!next_create_error.ok()) return std::exchange(next_create_error, errdefs::Status::Ok());
    auto task = std::make_shared<FakeTask>(ns, id, options.runtime);
    if (!tasks_.emplace(std::make_pair(ns, id), task).second) {
      return errdefs::AlreadyExists("task " + id + " exists in the fake runtime");
    }
    return std::shared_ptr<Task>(task);
  }
  errdefs::StatusOr<std::shared_ptr<Task>> get(const std::string& ns, const std::string& id) const override {
    std::lock_guard lock(mu);
    auto it = tasks_.find({ns, id});
    if (it == tasks_.end()) return errdefs::NotFound("runtime: no task " + id);
    return it->second;
  }
  std::vector<std::shared_ptr<Task>> list(const std::string& ns) const override {
    std::lock_guard lock(mu);
    std::vector<std::shared_ptr<Task>> out;
    for (const auto& [key, task] : tasks_) {
      if (ns.empty() || key.first == ns) out.push_back(task);
    }
    return out;
  }
  errdefs::StatusOr<Exit> remove(const std::string& ns, const std::string& id) override {
    std::lock_guard lock(mu);
    if (running.count({ns, id}) != 0) return errdefs::FailedPrecondition("task " + id + " is running");
    auto it = tasks_.find({ns, id});
    if (it == tasks_.end()) return errdefs::NotFound("runtime: no task " + id);
    Exit exit{.pid = it->second->pid(), .status = 7, .at = SystemTime(std::chrono::seconds(1700000000))};
    tasks_.erase(it);
    return exit;
  }

  // What the test reads and sets; guarded by mu.
  mutable std::mutex mu;
  std::vector<Recorded> creates;
  std::set<std::pair<std::string, std::string>> running;  // remove() refuses these
  errdefs::Status next_create_error;                      // returned once by create()

 private:
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Task>> tasks_;
};

}  // namespace ctrd::runtime::fake
