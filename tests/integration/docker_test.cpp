// Docker Engine (Debian's dockerd 20.10) using ctrd as its containerd: image
// load, `docker run` with output and exit codes passed through, detached
// containers, exec, forced removal and a clean engine shutdown. Skipped where
// docker.io is not installed. dockerd is kept off the host's network: no
// bridge, iptables, NAT or IP forwarding, so containers run with --network none.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "harness.h"

namespace ctrd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kDockerd = "/usr/sbin/dockerd";
// /usr/local/bin/docker may be some other client: use Debian's explicitly.
const std::string kDocker = "/usr/bin/docker";
// The namespace dockerd keeps its containers in, in ctrd.
const std::string kNamespace = "moby";

// dockerd on its own data root, exec root and socket, with ctrd as its
// containerd. Destruction removes every container, stops dockerd (SIGKILL if
// it will not stop) and detaches whatever it left mounted (it bind-mounts its
// data root onto itself, and overlay and shm mounts live below it).
class DockerEngine {
 public:
  DockerEngine(const std::string& containerd_address, fs::path dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_ / "cli");
    // A config file of its own keeps /etc/docker/daemon.json out of the test,
    // and moves the identity key dockerd would otherwise write to
    // /etc/docker/key.json (this dockerd has no command-line flag for it).
    std::ofstream(dir_ / "daemon.json")
        << "{\"deprecated-key-path\": \"" << (dir_ / "key.json").string() << "\"}\n";
    // clang-format off
    std::vector<std::string> argv{
        kDockerd,
        "--config-file", (dir_ / "daemon.json").string(),
        "--data-root", (dir_ / "data").string(),
        "--exec-root", (dir_ / "exec").string(),
        "--pidfile", (dir_ / "docker.pid").string(),
        "-H", "unix://" + socket(),
        "--containerd", containerd_address,
        "--containerd-namespace", kNamespace,
        "--containerd-plugins-namespace", "plugins." + kNamespace,
        "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--ip-forward=false",
        "--bridge=none", "--userland-proxy=false",
        "--storage-driver", "overlay2",
        "--debug",
    };
    // clang-format on
    process_ = std::make_unique<Process>(argv, log_path().string());
  }

  ~DockerEngine() {
    if (process_->running()) {
      for (const auto& id : lines_of(docker({"ps", "-aq"}, 30s).out)) docker({"rm", "-f", id}, 60s);
      stop();
    }
    process_.reset();
    unmount_below(dir_);
  }

  DockerEngine(const DockerEngine&) = delete;
  DockerEngine& operator=(const DockerEngine&) = delete;

  std::string socket() const { return (dir_ / "docker.sock").string(); }
  fs::path data_root() const { return dir_ / "data"; }
  fs::path log_path() const { return dir_ / "dockerd.log"; }
  std::string log() const { return read_text(log_path()); }

  // `docker -H <socket> args...`, with a private client config directory.
  RunResult docker(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 120s) {
    std::vector<std::string> argv{kDocker, "--config", (dir_ / "cli").string(), "-H", "unix://" + socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, timeout);
  }

  // Polls `docker version` until the engine answers (it listens only after it
  // has connected to containerd); false once dockerd has exited or on timeout.
  bool wait_ready(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!process_->running()) return false;
      if (docker({"version", "--format", "{{.Server.Version}}"}, 10s).exit_code == 0) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  // SIGTERM and wait. dockerd gives running containers 10 s to stop before
  // killing them, so the bound is well above that.
  std::optional<int> stop() {
    process_->signal(SIGTERM);
    return process_->wait(40s);
  }

 private:
  fs::path dir_;
  std::unique_ptr<Process> process_;
};

class Docker : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kDockerd) || !fs::exists(kDocker)) {
      GTEST_SKIP() << "docker.io is not installed (" << kDockerd << ", " << kDocker << ")";
    }
    ctrd_ = std::make_unique<Daemon>();
    engine_ = std::make_unique<DockerEngine>(ctrd_->address(), ctrd_->dir() / "docker");
    ASSERT_TRUE(engine_->wait_ready(60s)) << "dockerd log:\n"
                                          << engine_->log() << "\nctrd log:\n"
                                          << ctrd_->log();

    const fs::path tar = ctrd_->dir() / "busybox-docker.tar";
    auto made =
        run({"/usr/bin/python3", CTRD_MKIMAGE_PATH, "--busybox", "--format", "docker", tar.string()}, 300s);
    ASSERT_EQ(made.exit_code, 0) << made.all();
    auto loaded = engine_->docker({"load", "-i", tar.string()});
    ASSERT_EQ(loaded.exit_code, 0) << loaded.all() << engine_->log();
    EXPECT_THAT(loaded.out, HasSubstr("Loaded image: busybox:latest"));
  }

  void TearDown() override {
    engine_.reset();  // before ctrd: dockerd needs it to remove its containers
    ctrd_.reset();
  }

  RunResult docker(const std::vector<std::string>& args) { return engine_->docker(args); }
  std::string logs() { return "\ndockerd log:\n" + engine_->log() + "\nctrd log:\n" + ctrd_->log(); }
  // Container ids ctrd holds for dockerd.
  std::vector<std::string> ctrd_containers() {
    return lines_of(ctrd_->ctr({"containers", "ls", "-q"}, kNamespace).out);
  }

  std::unique_ptr<Daemon> ctrd_;
  std::unique_ptr<DockerEngine> engine_;
};

TEST_F(Docker, RunPassesOutputThroughAndRemovesTheContainer) {
  auto hi = docker({"run", "--rm", "--network", "none", "busybox", "echo", "hi"});
  ASSERT_EQ(hi.exit_code, 0) << hi.all() << logs();
  EXPECT_EQ(hi.out, "hi\n");

  auto err = docker({"run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo oops >&2"});
  EXPECT_EQ(err.exit_code, 0) << err.all();
  EXPECT_THAT(err.err, HasSubstr("oops"));
  EXPECT_THAT(err.out, Not(HasSubstr("oops")));

  EXPECT_THAT(lines_of(docker({"ps", "-aq"}).out), IsEmpty());
  EXPECT_THAT(ctrd_containers(), IsEmpty()) << "--rm removes the container from ctrd too";
}

TEST_F(Docker, ExitCodesPassThrough) {
  auto three = docker({"run", "--rm", "--network", "none", "busybox", "sh", "-c", "exit 3"});
  EXPECT_EQ(three.exit_code, 3) << three.all() << logs();

  // Kept after exit: the engine records the code it got from ctrd.
  auto kept = docker({"run", "--name", "exits42", "--network", "none", "busybox", "sh", "-c", "exit 42"});
  EXPECT_EQ(kept.exit_code, 42) << kept.all() << logs();
  auto state = docker({"inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "exits42"});
  ASSERT_EQ(state.exit_code, 0) << state.all();
  EXPECT_EQ(trim(state.out), "exited 42");
  EXPECT_THAT(ctrd_containers(), IsEmpty()) << "an exited container's task and container are deleted in ctrd";
  EXPECT_EQ(docker({"rm", "exits42"}).exit_code, 0);
}

TEST_F(Docker, DetachedContainerExecAndForceRemove) {
  auto started = docker({"run", "-d", "--name", "sleeper", "--network", "none", "busybox", "sleep", "1000"});
  ASSERT_EQ(started.exit_code, 0) << started.all() << logs();
  const std::string id = trim(started.out);
  ASSERT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{64}"))) << started.out;

  auto running = docker({"inspect", "--format", "{{.State.Running}}", "sleeper"});
  EXPECT_EQ(trim(running.out), "true") << running.all();
  // The container really runs in ctrd.
  auto tasks = ctrd_->ctr({"tasks", "ls"}, kNamespace);
  EXPECT_TRUE(std::regex_search(tasks.out, std::regex(id + "\\s+\\d+\\s+RUNNING"))) << tasks.all();
  EXPECT_THAT(ctrd_containers(), ::testing::ElementsAre(id));

  auto echoed = docker({"exec", "sleeper", "echo", "from-exec"});
  EXPECT_EQ(echoed.exit_code, 0) << echoed.all() << logs();
  EXPECT_EQ(echoed.out, "from-exec\n");
  auto seven = docker({"exec", "sleeper", "sh", "-c", "exit 7"});
  EXPECT_EQ(seven.exit_code, 7) << seven.all();
  // The exec joins the container's pid namespace, where sleep is pid 1.
  auto init = docker({"exec", "sleeper", "cat", "/proc/1/cmdline"});
  EXPECT_THAT(init.out, HasSubstr("sleep")) << init.all();
  auto still = ctrd_->ctr({"tasks", "ls"}, kNamespace);
  EXPECT_TRUE(std::regex_search(still.out, std::regex(id + "\\s+\\d+\\s+RUNNING")))
      << "exec processes exiting leave the container running:\n"
      << still.all();

  auto removed = docker({"rm", "-f", "sleeper"});
  ASSERT_EQ(removed.exit_code, 0) << removed.all() << logs();
  EXPECT_EQ(trim(removed.out), "sleeper");
  EXPECT_THAT(lines_of(docker({"ps", "-aq"}).out), IsEmpty());
  EXPECT_THAT(ctrd_->ctr({"tasks", "ls"}, kNamespace).out, Not(HasSubstr(id)));
  EXPECT_THAT(ctrd_containers(), IsEmpty());
}

TEST_F(Docker, EngineShutsDownCleanlyAndLeavesNothingMounted) {
  auto started = docker({"run", "-d", "--name", "sleeper", "--network", "none", "busybox", "sleep", "1000"});
  ASSERT_EQ(started.exit_code, 0) << started.all() << logs();
  ASSERT_EQ(docker({"rm", "-f", "sleeper"}).exit_code, 0);

  EXPECT_EQ(engine_->stop(), 0) << logs();
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  const std::string below = engine_->data_root().string();
  while (std::getline(mounts, line)) {
    EXPECT_THAT(line, Not(HasSubstr(below))) << "dockerd left a mount behind";
  }
  EXPECT_EQ(ctrd_->ctr({"version"}).exit_code, 0) << "ctrd serves on after dockerd has gone";
}

}  // namespace
}  // namespace ctrd::testing
