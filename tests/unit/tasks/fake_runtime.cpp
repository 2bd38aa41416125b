#include "fake_runtime.h"

namespace ctrd::runtime::v2 {

fake::Runtime& fake::Runtime::get() {
  static Runtime runtime;
  return runtime;
}

void fake::Runtime::reset() {
  std::lock_guard lock(mu);
  creates.clear();
  running.clear();
  next_create_error = errdefs::Status::Ok();
}

Task::Task(std::string ns, std::string id, std::string runtime, std::string bundle)
    : ns_(std::move(ns)), id_(std::move(id)), runtime_(std::move(runtime)), bundle_(std::move(bundle)) {}
Task::~Task() = default;

uint32_t Task::pid() const {
  std::lock_guard lock(mu_);
  return pid_;
}

// The monitor's metrics collector calls it; the service tests never scrape.
errdefs::StatusOr<Any> Task::stats(std::optional<std::chrono::nanoseconds>) {
  return errdefs::NotFound("the fake runtime has no statistics");
}

class TaskManager::Impl {
 public:
  std::mutex mu;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Task>> tasks;
};

TaskManager::TaskManager(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
TaskManager::~TaskManager() = default;

errdefs::StatusOr<std::shared_ptr<TaskManager>> TaskManager::open(TaskManagerOptions) {
  return std::shared_ptr<TaskManager>(new TaskManager(std::make_shared<Impl>()));
}

errdefs::StatusOr<std::shared_ptr<Task>> TaskManager::create(const std::string& ns, const std::string& id,
                                                             const CreateOptions& options) {
  auto& fake = fake::Runtime::get();
  {
    std::lock_guard lock(fake.mu);
    fake.creates.push_back({ns, id, options});
    if (!fake.next_create_error.ok()) return std::exchange(fake.next_create_error, errdefs::Status::Ok());
  }
  std::lock_guard lock(impl_->mu);
  auto task = std::make_shared<Task>(ns, id, options.runtime, "/bundles/" + ns + "/" + id);
  task->pid_ = 4242;
  if (!impl_->tasks.emplace(std::make_pair(ns, id), task).second) {
    return errdefs::AlreadyExists("task " + id + " exists in the fake runtime");
  }
  return task;
}

errdefs::StatusOr<std::shared_ptr<Task>> TaskManager::get(const std::string& ns,
                                                          const std::string& id) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->tasks.find({ns, id});
  if (it == impl_->tasks.end()) return errdefs::NotFound("runtime: no task " + id);
  return it->second;
}

std::vector<std::shared_ptr<Task>> TaskManager::list(const std::string& ns) const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::shared_ptr<Task>> out;
  for (const auto& [key, task] : impl_->tasks) {
    if (ns.empty() || key.first == ns) out.push_back(task);
  }
  return out;
}

errdefs::StatusOr<Exit> TaskManager::remove(const std::string& ns, const std::string& id) {
  auto& fake = fake::Runtime::get();
  {
    std::lock_guard lock(fake.mu);
    if (fake.running.count({ns, id}) != 0) return errdefs::FailedPrecondition("task " + id + " is running");
  }
  std::lock_guard lock(impl_->mu);
  auto it = impl_->tasks.find({ns, id});
  if (it == impl_->tasks.end()) return errdefs::NotFound("runtime: no task " + id);
  Exit exit{.pid = it->second->pid_, .status = 7, .at = SystemTime(std::chrono::seconds(1700000000))};
  impl_->tasks.erase(it);
  return exit;
}

}  // namespace ctrd::runtime::v2
