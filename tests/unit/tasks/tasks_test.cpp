#include "services/tasks/tasks.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>

#include "fake_runtime.h"
#include "test_support.h"

namespace ctrd::services::tasks {
namespace {

using errdefs::Code;
using metadata::test_support::MetadataTest;
using metadata::test_support::TempDir;
using runtime::fake::FakeRuntime;

// Sets PATH for the test's duration, so CRIU's presence can be chosen.
class ScopedPath {
 public:
  explicit ScopedPath(const std::string& path) {
    if (const char* old = std::getenv("PATH")) old_ = old;
    ::setenv("PATH", path.c_str(), 1);
  }
  ~ScopedPath() {
    if (old_) {
      ::setenv("PATH", old_->c_str(), 1);
    } else {
      ::unsetenv("PATH");
    }
  }
  ScopedPath(const ScopedPath&) = delete;
  ScopedPath& operator=(const ScopedPath&) = delete;

 private:
  std::optional<std::string> old_;
};

class TasksTest : public MetadataTest {
 protected:
  void SetUp() override {
    MetadataTest::SetUp();
    runtime_ = std::make_shared<FakeRuntime>();
    monitor_ = std::make_shared<monitor::TaskMonitor>();
    service_ = std::make_unique<TasksService>(db_, runtime_, monitor_);
  }
  void add_container(const std::string& ns, const std::string& id, metadata::AnyValue runtime_options = {}) {
    metadata::Container c;
    c.id = id;
    c.runtime = {"io.containerd.runc.v2", std::move(runtime_options)};
    c.spec = {"types.containerd.io/opencontainers/runtime-spec/1/Spec", "{\"ociVersion\":\"1.0.2\"}"};
    auto created = db_->containers(ns).create(c);
    ASSERT_TRUE(created.ok()) << created.status().to_string();
  }
  size_t monitored() const { return monitor_->tasks().size(); }

  std::shared_ptr<FakeRuntime> runtime_;
  std::shared_ptr<monitor::TaskMonitor> monitor_;
  std::unique_ptr<TasksService> service_;
};

TEST_F(TasksTest, CreatePassesTheContainerAndRequestToTheRuntime) {
  add_container("ns", "web", {"containerd.runc.v1.Options", "runc-opts"});
  CreateRequest r;
  r.container_id = "web";
  r.rootfs = {{"overlay", "overlay", "", {"lowerdir=/a", "upperdir=/b"}}};
  r.io = {.stdin = "/fifo/in", .stdout = "/fifo/out", .stderr = "", .terminal = true};
  google::protobuf::Any task_options;
  task_options.set_type_url("containerd.runc.v1.Options");
  task_options.set_value("task-opts");
  r.options = task_options;

  auto task = service_->create("ns", r);
  ASSERT_TRUE(task.ok()) << task.status().to_string();
  EXPECT_EQ((*task)->id(), "web");
  EXPECT_EQ((*task)->pid(), 4242u);

  auto& fake = *runtime_;
  ASSERT_EQ(fake.creates.size(), 1u);
  const auto& got = fake.creates[0];
  EXPECT_EQ(got.ns, "ns");
  EXPECT_EQ(got.id, "web");
  EXPECT_EQ(got.options.spec, "{\"ociVersion\":\"1.0.2\"}");
  EXPECT_EQ(got.options.runtime, "io.containerd.runc.v2");
  ASSERT_EQ(got.options.rootfs.size(), 1u);
  EXPECT_EQ(got.options.rootfs[0].options, (std::vector<std::string>{"lowerdir=/a", "upperdir=/b"}));
  EXPECT_EQ(got.options.io.stdin, "/fifo/in");
  EXPECT_EQ(got.options.io.stdout, "/fifo/out");
  EXPECT_TRUE(got.options.io.terminal);
  ASSERT_TRUE(got.options.runtime_options.has_value());
  EXPECT_EQ(got.options.runtime_options->type_url(), "containerd.runc.v1.Options");
  EXPECT_EQ(got.options.runtime_options->value(), "runc-opts");
  ASSERT_TRUE(got.options.task_options.has_value());
  EXPECT_EQ(got.options.task_options->value(), "task-opts");
  EXPECT_TRUE(got.options.checkpoint.empty());
  EXPECT_EQ(monitored(), 1u);
}

TEST_F(TasksTest, CreateWithoutRuntimeOptionsLeavesThemUnset) {
  add_container("ns", "web");
  auto task = service_->create("ns", {.container_id = "web"});
  ASSERT_TRUE(task.ok()) << task.status().to_string();
  ASSERT_EQ(runtime_->creates.size(), 1u);
  EXPECT_FALSE(runtime_->creates[0].options.runtime_options.has_value());
  EXPECT_FALSE(runtime_->creates[0].options.task_options.has_value());
}

TEST_F(TasksTest, RuntimePathOverridesTheContainersRuntime) {
  add_container("ns", "web");
  auto task = service_->create("ns", {.container_id = "web", .runtime_path = "/opt/bin/my-shim"});
  ASSERT_TRUE(task.ok()) << task.status().to_string();
  ASSERT_EQ(runtime_->creates.size(), 1u);
  EXPECT_EQ(runtime_->creates[0].options.runtime, "/opt/bin/my-shim");
}

TEST_F(TasksTest, CreateForAMissingContainerIsNotFoundAndStartsNothing) {
  auto task = service_->create("ns", {.container_id = "ghost"});
  ASSERT_FALSE(task.ok());
  EXPECT_EQ(task.status().code(), Code::kNotFound);
  EXPECT_TRUE(runtime_->creates.empty());
  EXPECT_EQ(monitored(), 0u);
}

TEST_F(TasksTest, SecondCreateIsAlreadyExistsBeforeReachingTheRuntime) {
  add_container("ns", "web");
  ASSERT_TRUE(service_->create("ns", {.container_id = "web"}).ok());
  auto again = service_->create("ns", {.container_id = "web"});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(again.status().message(), "task web: already exists");
  EXPECT_EQ(runtime_->creates.size(), 1u);
}

TEST_F(TasksTest, FailedCreateIsNotMonitored) {
  add_container("ns", "web");
  runtime_->next_create_error = errdefs::Unavailable("shim did not start");
  auto task = service_->create("ns", {.container_id = "web"});
  ASSERT_FALSE(task.ok());
  EXPECT_EQ(task.status().code(), Code::kUnavailable);
  EXPECT_EQ(monitored(), 0u);
}

TEST_F(TasksTest, RestoreWithoutCriuIsFailedPrecondition) {
  add_container("ns", "web");
  TempDir empty;
  ScopedPath path(empty.path());
  auto task = service_->create("ns", {.container_id = "web", .checkpoint = true});
  ASSERT_FALSE(task.ok());
  EXPECT_EQ(task.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(task.status().message().find("CRIU"), std::string::npos) << task.status().message();
  EXPECT_TRUE(runtime_->creates.empty());
}

TEST_F(TasksTest, RestoreWithCriuIsNotImplemented) {
  add_container("ns", "web");
  TempDir bin;
  const std::string criu = bin.sub("criu");
  std::ofstream(criu) << "#!/bin/sh\nexit 0\n";
  ASSERT_EQ(::chmod(criu.c_str(), 0755), 0);
  ScopedPath path(bin.path());
  auto task = service_->create("ns", {.container_id = "web", .checkpoint = true});
  ASSERT_FALSE(task.ok());
  EXPECT_EQ(task.status().code(), Code::kNotImplemented);
  EXPECT_TRUE(runtime_->creates.empty());
}

TEST_F(TasksTest, TaskLookup) {
  add_container("ns", "web");
  auto missing_container = service_->task("ns", "ghost");
  ASSERT_FALSE(missing_container.ok());
  EXPECT_EQ(missing_container.status().code(), Code::kNotFound);

  auto no_task = service_->task("ns", "web");
  ASSERT_FALSE(no_task.ok());
  EXPECT_EQ(no_task.status().code(), Code::kNotFound);
  EXPECT_EQ(no_task.status().message(), "task web not found");

  ASSERT_TRUE(service_->create("ns", {.container_id = "web"}).ok());
  auto found = service_->task("ns", "web");
  ASSERT_TRUE(found.ok()) << found.status().to_string();
  EXPECT_EQ((*found)->id(), "web");
  // The same id in another namespace is another container.
  EXPECT_EQ(service_->task("other", "web").status().code(), Code::kNotFound);
}

TEST_F(TasksTest, ListIsPerNamespace) {
  add_container("a", "one");
  add_container("a", "two");
  add_container("b", "three");
  for (auto [ns, id] : {std::pair{"a", "one"}, {"a", "two"}, {"b", "three"}}) {
    ASSERT_TRUE(service_->create(ns, {.container_id = id}).ok());
  }
  auto a = service_->list("a");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0]->id(), "one");
  EXPECT_EQ(a[1]->id(), "two");
  ASSERT_EQ(service_->list("b").size(), 1u);
  EXPECT_TRUE(service_->list("c").empty());
}

TEST_F(TasksTest, RemoveReturnsTheExitAndStopsMonitoring) {
  add_container("ns", "web");
  ASSERT_TRUE(service_->create("ns", {.container_id = "web"}).ok());
  ASSERT_EQ(monitored(), 1u);
  auto exit = service_->remove("ns", "web");
  ASSERT_TRUE(exit.ok()) << exit.status().to_string();
  EXPECT_EQ(exit->pid, 4242u);
  EXPECT_EQ(exit->status, 7u);
  EXPECT_EQ(monitored(), 0u);
  EXPECT_EQ(service_->task("ns", "web").status().code(), Code::kNotFound);
}

TEST_F(TasksTest, RefusedRemoveKeepsTheTaskMonitored) {
  add_container("ns", "web");
  ASSERT_TRUE(service_->create("ns", {.container_id = "web"}).ok());
  runtime_->running.insert({"ns", "web"});
  auto exit = service_->remove("ns", "web");
  ASSERT_FALSE(exit.ok());
  EXPECT_EQ(exit.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(monitored(), 1u);
  EXPECT_TRUE(service_->task("ns", "web").ok());
}

TEST_F(TasksTest, RemoveWithoutTaskOrContainerIsNotFound) {
  add_container("ns", "web");
  auto no_task = service_->remove("ns", "web");
  ASSERT_FALSE(no_task.ok());
  EXPECT_EQ(no_task.status().message(), "task web not found");
  EXPECT_EQ(service_->remove("ns", "ghost").status().code(), Code::kNotFound);
}

TEST_F(TasksTest, ExecNeedsAnExecIdAndClosingNoStreamIsANoOp) {
  add_container("ns", "web");
  auto task = service_->create("ns", {.container_id = "web"});
  ASSERT_TRUE(task.ok());
  auto exec = service_->exec(**task, "", {}, {});
  EXPECT_EQ(exec.code(), Code::kInvalidArgument);
  EXPECT_EQ(exec.message(), "exec id cannot be empty");
  // The fake runtime refuses close_io: not reaching it is the point.
  EXPECT_TRUE(service_->close_io(**task, "", /*close_stdin=*/false).ok());
  EXPECT_EQ(service_->close_io(**task, "", /*close_stdin=*/true).code(), Code::kNotImplemented);
}

TEST_F(TasksTest, StatesListEveryInitProcessOfTheNamespace) {
  add_container("ns", "one");
  add_container("ns", "two");
  ASSERT_TRUE(service_->create("ns", {.container_id = "one"}).ok());
  ASSERT_TRUE(service_->create("ns", {.container_id = "two"}).ok());
  auto states = service_->states("ns");
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[0].id, "one");
  EXPECT_EQ(states[0].pid, 4242u);
  EXPECT_EQ(states[1].id, "two");
  EXPECT_TRUE(service_->states("other").empty());
}

TEST_F(TasksTest, MetricsFollowTheFilterAndSkipTasksWithoutStatistics) {
  add_container("ns", "web");
  ASSERT_TRUE(service_->create("ns", {.container_id = "web"}).ok());
  auto none = filters::parse_all({"id==nothing"});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(service_->metrics("ns", *none).empty());
  // The fake task has no statistics: it is left out, not an error.
  auto all = filters::parse_all({});
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(service_->metrics("ns", *all).empty());
}

}  // namespace
}  // namespace ctrd::services::tasks
