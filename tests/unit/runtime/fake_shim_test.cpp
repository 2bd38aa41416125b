// The v2 runtime against a fake shim: a ttRPC server in this process serving
// containerd.task.v2.Task, and a script standing in for the shim binary
// (`start` prints the server's address, `delete` prints a DeleteResponse).
// Each test makes the shim misbehave the way real ones do.
#include <fcntl.h>
#include <github.com/containerd/containerd/api/events/task.pb.h>
#include <github.com/containerd/containerd/runtime/v2/task/shim.pb.h>
#include <google/protobuf/empty.pb.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>

#include "events/exchange.h"
#include "os/unix_socket.h"
#include "runtime/v2/task_manager.h"
#include "support/temp_dir.h"
#include "ttrpc/ttrpc.h"

namespace ctrd::runtime::v2 {
namespace {

namespace fs = std::filesystem;
namespace shimapi = containerd::task::v2;
using namespace std::chrono_literals;

constexpr std::string_view kTaskService = "containerd.task.v2.Task";

// The in-process shim: what each call answers is up to the test.
class FakeShim {
 public:
  explicit FakeShim(const fs::path& socket) : socket_(socket) {
    auto listener = os::UnixListener::listen(socket.string(), ::getuid(), ::getgid());
    EXPECT_TRUE(listener.ok()) << listener.status().message();
    listener_ = std::move(listener).value();
    handle("Create", [this](std::string_view) -> errdefs::StatusOr<std::string> {
      if (on_create) return on_create();
      shimapi::CreateTaskResponse resp;
      resp.set_pid(100);
      return resp.SerializeAsString();
    });
    handle("Start", [this](std::string_view) -> errdefs::StatusOr<std::string> {
      if (on_start) on_start();
      shimapi::StartResponse resp;
      resp.set_pid(100);
      return resp.SerializeAsString();
    });
    handle("Wait", [this](std::string_view) -> errdefs::StatusOr<std::string> {
      std::unique_lock lock(mu_);
      exited_cv_.wait(lock, [this] { return exit_status_.has_value(); });
      shimapi::WaitResponse resp;
      resp.set_exit_status(*exit_status_);
      return resp.SerializeAsString();
    });
    handle("Connect", [this](std::string_view) -> errdefs::StatusOr<std::string> {
      shimapi::ConnectResponse resp;
      resp.set_task_pid(connect_pid);
      return resp.SerializeAsString();
    });
    handle("State", [](std::string_view) -> errdefs::StatusOr<std::string> {
      shimapi::StateResponse resp;
      resp.set_pid(100);
      resp.set_status(containerd::v1::types::RUNNING);
      return resp.SerializeAsString();
    });
    handle("Delete", [](std::string_view) -> errdefs::StatusOr<std::string> {
      shimapi::DeleteResponse resp;
      resp.set_pid(100);
      resp.set_exit_status(0);
      return resp.SerializeAsString();
    });
    handle("Shutdown", [this](std::string_view) -> errdefs::StatusOr<std::string> {
      if (on_shutdown) return on_shutdown();
      return google::protobuf::Empty().SerializeAsString();
    });
    const int fd = ::fcntl(listener_->fd(), F_DUPFD_CLOEXEC, 0);
    EXPECT_TRUE(server_.serve(os::UniqueFd(fd)).ok());
  }
  ~FakeShim() { server_.shutdown(); }

  std::string address() const { return "unix://" + socket_.string(); }
  void exit_with(uint32_t status) {
    {
      std::lock_guard lock(mu_);
      exit_status_ = status;
    }
    exited_cv_.notify_all();
  }
  // Drops every connection, as a shim that died would.
  void die() { server_.shutdown(); }

  std::function<errdefs::StatusOr<std::string>()> on_create;
  std::function<void()> on_start;
  std::function<errdefs::StatusOr<std::string>()> on_shutdown;
  uint32_t connect_pid = 100;

 private:
  void handle(std::string_view method, std::function<errdefs::StatusOr<std::string>(std::string_view)> fn) {
    ASSERT_TRUE(server_
                    .add_handler(kTaskService, method,
                                 [fn = std::move(fn)](const ttrpc::CallContext&, std::string_view req) {
                                   return fn(req);
                                 })
                    .ok());
  }

  fs::path socket_;
  std::unique_ptr<os::UnixListener> listener_;
  ttrpc::Server server_;
  std::mutex mu_;
  std::condition_variable exited_cv_;
  std::optional<uint32_t> exit_status_;
};

class FakeShimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    shim_ = std::make_unique<FakeShim>(dir_.path() / "shim.sock");
    // The stand-in for the shim binary: `start` answers with the fake's
    // address; `delete` with the DeleteResponse the test left beside it.
    const fs::path script = dir_.path() / "fake-shim";
    std::ofstream(script) << "#!/bin/sh\n"
                          << "for action; do :; done\n"
                          << "case \"$action\" in\n"
                          << "  start) cat >/dev/null; echo " << shim_->address() << " ;;\n"
                          << "  delete) cat " << (dir_.path() / "delete-response").string() << " ;;\n"
                          << "esac\n";
    ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
    binary_ = script.string();
    shimapi::DeleteResponse dead;
    dead.set_pid(200);
    dead.set_exit_status(137);
    std::ofstream(dir_.path() / "delete-response") << dead.SerializeAsString();
  }

  std::shared_ptr<TaskManager> open_manager() {
    auto manager = TaskManager::open({.state_dir = (dir_.path() / "state").string(),
                                      .root_dir = (dir_.path() / "root").string(),
                                      .grpc_address = (dir_.path() / "ctrd.sock").string(),
                                      .ttrpc_address = (dir_.path() / "ctrd.sock.ttrpc").string(),
                                      .publish_binary = "/bin/true",
                                      .events = events_});
    EXPECT_TRUE(manager.ok()) << manager.status().message();
    return manager.ok() ? *manager : nullptr;
  }

  CreateOptions options() const {
    return CreateOptions{.spec = "{\"ociVersion\":\"1.0.2\"}", .runtime = binary_};
  }
  fs::path bundle(const std::string& id) const { return dir_.path() / "state" / "ns" / id; }

  // Only root can write there: shim binaries are refused elsewhere.
  ctrd::testing::TempDir dir_{ctrd::testing::trusted_temp_parent()};
  std::unique_ptr<FakeShim> shim_;
  std::string binary_;
  std::shared_ptr<events::Exchange> events_ = std::make_shared<events::Exchange>();
};

TEST_F(FakeShimTest, CreateStartWaitAndRemove) {
  auto manager = open_manager();
  auto task = manager->create("ns", "t1", options());
  ASSERT_TRUE(task.ok()) << task.status().message();
  EXPECT_EQ((*task)->pid(), 100u);
  EXPECT_TRUE(fs::exists(bundle("t1") / "config.json"));
  ASSERT_TRUE((*task)->start("").ok());
  std::promise<errdefs::StatusOr<Exit>> exited;
  (*task)->wait("", [&](errdefs::StatusOr<Exit> e) { exited.set_value(std::move(e)); });
  shim_->exit_with(3);
  auto exit = exited.get_future().get();
  ASSERT_TRUE(exit.ok()) << exit.status().message();
  EXPECT_EQ(exit->status, 3u);
  EXPECT_TRUE(manager->remove("ns", "t1").ok());
  EXPECT_FALSE(fs::exists(bundle("t1")));
  EXPECT_TRUE(manager->list("ns").empty());
}

// The exit is reported by the shim before Start has returned: a wait made
// right after Start still gets it.
TEST_F(FakeShimTest, AnExitThatArrivesBeforeStartReturnsIsNotLost) {
  auto manager = open_manager();
  auto task = manager->create("ns", "quick", options());
  ASSERT_TRUE(task.ok());
  shim_->on_start = [this] { shim_->exit_with(0); };
  ASSERT_TRUE((*task)->start("").ok());
  std::promise<errdefs::StatusOr<Exit>> exited;
  (*task)->wait("", [&](errdefs::StatusOr<Exit> e) { exited.set_value(std::move(e)); });
  auto future = exited.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  auto exit = future.get();
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->status, 0u);
  EXPECT_TRUE(manager->remove("ns", "quick").ok());
}

// The shim goes away while Create is in flight: Create fails, and neither
// the task nor its bundle is left.
TEST_F(FakeShimTest, AShimThatDiesMidCreateLeavesNothing) {
  auto manager = open_manager();
  std::atomic<bool> dying{false};
  std::thread killer;
  shim_->on_create = [&]() -> errdefs::StatusOr<std::string> {
    dying = true;
    killer = std::thread([this] { shim_->die(); });
    return errdefs::Unavailable("shim is going away");
  };
  auto task = manager->create("ns", "doomed", options());
  if (killer.joinable()) killer.join();
  EXPECT_TRUE(dying);
  EXPECT_FALSE(task.ok());
  EXPECT_FALSE(fs::exists(bundle("doomed")));
  EXPECT_TRUE(manager->list("ns").empty());
  EXPECT_FALSE(manager->get("ns", "doomed").ok());
}

// A shim that never answers Shutdown holds a removal only as long as the
// shutdown timeout (3 s), not for ever.
TEST_F(FakeShimTest, AShimThatNeverAnswersShutdownIsBoundedByTheTimeout) {
  auto manager = open_manager();
  std::promise<void> release;
  auto released = release.get_future().share();
  shim_->on_shutdown = [released]() -> errdefs::StatusOr<std::string> {
    released.wait_for(30s);
    return google::protobuf::Empty().SerializeAsString();
  };
  auto task = manager->create("ns", "stuck", options());
  ASSERT_TRUE(task.ok());
  auto removal = std::async(std::launch::async, [&] { return manager->remove("ns", "stuck"); });
  const auto status = removal.wait_for(15s);
  release.set_value();
  ASSERT_EQ(status, std::future_status::ready) << "remove() waited on the shim past its timeout";
  EXPECT_TRUE(removal.get().ok());
}

// After a restart: the live shim is reconnected, the dead one is cleaned up
// with the binary's `delete`, its exit published and its task kept STOPPED.
TEST_F(FakeShimTest, RecoveryWithOneLiveAndOneDeadShim) {
  for (const auto& [id, address] : {std::pair{"live", shim_->address()},
                                    std::pair{"dead", "unix://" + (dir_.path() / "gone.sock").string()}}) {
    fs::create_directories(bundle(id));
    std::ofstream(bundle(id) / "config.json") << "{}";
    std::ofstream(bundle(id) / "address") << address;
    std::ofstream(bundle(id) / "shim-binary-path") << binary_;
  }
  auto sub = events_->subscribe({"topic==\"/tasks/exit\""});
  ASSERT_TRUE(sub.ok());
  auto manager = open_manager();

  auto live = manager->get("ns", "live");
  ASSERT_TRUE(live.ok()) << live.status().message();
  EXPECT_FALSE((*live)->dead());
  EXPECT_EQ((*live)->pid(), 100u);
  auto state = (*live)->state("");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->status, Status::kRunning);

  auto dead = manager->get("ns", "dead");
  ASSERT_TRUE(dead.ok()) << dead.status().message();
  EXPECT_TRUE((*dead)->dead());
  auto dead_state = (*dead)->state("");
  ASSERT_TRUE(dead_state.ok());
  EXPECT_EQ(dead_state->status, Status::kStopped);
  EXPECT_EQ(dead_state->exit_status, 137u);
  EXPECT_FALSE(fs::exists(bundle("dead"))) << "the dead shim's bundle goes with its cleanup";

  auto published = (*sub)->pop();
  ASSERT_TRUE(published.has_value()) << "no /tasks/exit for the dead shim's task";
  containerd::events::TaskExit event;
  ASSERT_TRUE(event.ParseFromString(published->value));
  EXPECT_EQ(event.container_id(), "dead");
  EXPECT_EQ(event.exit_status(), 137u);

  EXPECT_TRUE(manager->remove("ns", "dead").ok());
  EXPECT_TRUE(manager->remove("ns", "live").ok());
}

}  // namespace
}  // namespace ctrd::runtime::v2
