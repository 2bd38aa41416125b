// Tasks as a user drives them with the real ctr and Debian's
// containerd-shim-runc-v2: `ctr run` (output, exit codes, detached, -t in a
// terminal), exec, ps, pause/resume, metrics, kill and removal with nothing
// left behind (shims, mounts, cgroups, bundles), the event sequence of a run,
// reconnecting to shims after ctrd restarts or dies, a shim that died while
// ctrd was down, and many concurrent runs.
#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
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

const std::string kBusybox = "docker.io/library/busybox:latest";
const std::string kNamespace = "default";
const std::string kShimBinary = "containerd-shim-runc-v2";
// Where the shim keeps runc's state for our namespace (the shim's default runc root).
const fs::path kRuncRoot = fs::path("/run/containerd/runc") / kNamespace;
const fs::path kCgroupRoot = "/sys/fs/cgroup";

// A process's argv, from /proc/<pid>/cmdline (empty for zombies and kernel threads).
std::vector<std::string> cmdline_of(pid_t pid) {
  std::string raw = read_text(fs::path("/proc") / std::to_string(pid) / "cmdline");
  std::vector<std::string> argv;
  std::string cur;
  for (char c : raw) {
    if (c == '\0') {
      argv.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) argv.push_back(cur);
  return argv;
}

std::string flag_value(const std::vector<std::string>& argv, const std::string& flag) {
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag) return argv[i + 1];
  }
  return "";
}

// Shim processes started for the daemon listening on `address` (and for task
// `id`, when given). Shims of other daemons, containerd's included, never match.
std::vector<pid_t> shim_pids(const std::string& address, const std::string& id = "") {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc", ec); it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    auto argv = cmdline_of(pid);
    if (argv.empty() || fs::path(argv[0]).filename() != kShimBinary) continue;
    if (flag_value(argv, "-address") != address) continue;
    if (!id.empty() && flag_value(argv, "-id") != id) continue;
    pids.push_back(pid);
  }
  return pids;
}

// True when `pid` no longer runs: gone, a zombie, or reused by something else.
bool process_gone(pid_t pid, const std::vector<std::string>& argv) {
  const fs::path proc = fs::path("/proc") / std::to_string(pid);
  std::string stat = read_text(proc / "stat");
  if (stat.empty()) return true;
  const auto paren = stat.rfind(')');
  if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z') return true;
  return cmdline_of(pid) != argv;
}

// The cgroup ctr asks for (the spec's cgroupsPath: /<namespace>/<id>) in a v1 hierarchy.
fs::path task_cgroup(const std::string& hierarchy, const std::string& id) {
  return kCgroupRoot / hierarchy / kNamespace / id;
}

struct TaskRow {
  std::string pid;
  std::string status;
};

// `ctr task ls` parsed into id -> row; the header line is skipped.
std::map<std::string, TaskRow> task_table(Daemon& d) {
  std::map<std::string, TaskRow> rows;
  auto ls = d.ctr({"task", "ls"});
  auto lines = lines_of(ls.out);
  for (size_t i = 1; i < lines.size(); ++i) {
    auto f = fields_of(lines[i]);
    if (f.size() >= 3) rows[f[0]] = TaskRow{f[1], f[2]};
  }
  return rows;
}

std::string task_status(Daemon& d, const std::string& id) {
  auto rows = task_table(d);
  auto it = rows.find(id);
  return it == rows.end() ? "" : it->second.status;
}

// Polls `ctr task ls` until task `id` reports `status`; returns the last status seen.
std::string wait_task_status(Daemon& d, const std::string& id, const std::string& status,
                             std::chrono::milliseconds timeout = 20s) {
  std::string seen;
  poll_until(
      [&] {
        seen = task_status(d, id);
        return seen == status;
      },
      timeout);
  return seen;
}

// Whatever a test leaves behind for the ids it used, removed even when it
// fails half-way: tasks and containers through ctrd (when it runs), then
// this daemon's shims, the container processes they left, runc state,
// cgroups and mounts.
class TaskReaper {
 public:
  explicit TaskReaper(Daemon& d) : d_(d) {}
  TaskReaper(const TaskReaper&) = delete;
  TaskReaper& operator=(const TaskReaper&) = delete;
  ~TaskReaper() {
    if (d_.process().running()) {
      // Only what is still there: a passing test leaves nothing, and 50 ids
      // times three calls would slow every run of the load test.
      const auto tasks = lines_of(d_.ctr({"task", "ls", "-q"}).out);
      const auto containers = lines_of(d_.ctr({"containers", "ls", "-q"}).out);
      for (const auto& id : ids_) {
        if (std::find(tasks.begin(), tasks.end(), id) != tasks.end()) {
          d_.ctr({"task", "kill", "-s", "SIGKILL", id});
          d_.ctr({"task", "rm", "-f", id});
        }
        if (std::find(containers.begin(), containers.end(), id) != containers.end()) {
          d_.ctr({"containers", "rm", id});
        }
      }
    }
    for (pid_t pid : shim_pids(d_.address())) ::kill(pid, SIGKILL);
    for (const auto& id : ids_) reap_container(id);
    unmount_below(d_.dir());
  }

  // Registers `id` for cleanup and returns it.
  const std::string& use(const std::string& id) {
    std::lock_guard lock(mu_);
    ids_.push_back(id);
    return ids_.back();
  }

 private:
  // A container whose shim is gone keeps running: kill what is in its cgroup
  // and drop runc's record of it so the next run can reuse the id.
  static void reap_container(const std::string& id) {
    const fs::path procs = task_cgroup("pids", id) / "cgroup.procs";
    for (const auto& line : lines_of(read_text(procs))) ::kill(std::stoi(line), SIGKILL);
    if (fs::exists(kRuncRoot / id)) {
      run({"/usr/sbin/runc", "--root", kRuncRoot.string(), "delete", "--force", id}, 10s);
    }
    for (const char* hierarchy : {"pids", "memory", "cpu,cpuacct", "freezer", "devices", "blkio", "cpuset"}) {
      const fs::path cg = task_cgroup(hierarchy, id);
      if (fs::exists(cg)) poll_until([&] { return ::rmdir(cg.c_str()) == 0 || !fs::exists(cg); }, 5s);
    }
  }

  Daemon& d_;
  std::mutex mu_;
  std::deque<std::string> ids_;  // deque: use() hands out references that must stay valid
};

class Tasks : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    image_dir_ = std::make_unique<TempDir>();
    image_ = busybox_tar(image_dir_->path());
  }
  static void TearDownTestSuite() { image_dir_.reset(); }

  void SetUp() override {
    auto imported = d_.ctr({"images", "import", image_.string()});
    ASSERT_EQ(imported.exit_code, 0) << imported.all() << d_.log();
    ASSERT_THAT(imported.out, HasSubstr(kBusybox));
  }

  fs::path bundle(const std::string& id) const {
    return fs::path(d_.state()) / "io.containerd.runtime.v2.task" / kNamespace / id;
  }

  // Runs a detached `sleep 1000` as `id` and waits until ctr lists it RUNNING.
  void run_sleeper(const std::string& id) {
    auto r = d_.ctr({"run", "-d", kBusybox, reaper_.use(id), "sleep", "1000"});
    ASSERT_EQ(r.exit_code, 0) << r.all() << d_.log();
    ASSERT_EQ(wait_task_status(d_, id, "RUNNING"), "RUNNING") << d_.log();
  }

  // Kills `id` with SIGKILL, waits for STOPPED, removes task and container.
  void kill_and_remove(const std::string& id) {
    auto kill = d_.ctr({"task", "kill", "-s", "SIGKILL", id});
    ASSERT_EQ(kill.exit_code, 0) << kill.all() << d_.log();
    ASSERT_EQ(wait_task_status(d_, id, "STOPPED"), "STOPPED") << d_.log();
    auto rm = d_.ctr({"task", "rm", id});
    ASSERT_EQ(rm.exit_code, 0) << rm.all() << d_.log();
    auto crm = d_.ctr({"containers", "rm", id});
    ASSERT_EQ(crm.exit_code, 0) << crm.all() << d_.log();
  }

  // Nothing of task `id` remains: shim, mounts under the state dir, cgroups, bundle.
  void expect_no_leftovers(const std::string& id) {
    EXPECT_TRUE(poll_until([&] { return shim_pids(d_.address(), id).empty(); }, 10s))
        << "shim for " << id << " still running\n"
        << d_.log();
    EXPECT_THAT(mounts_below(d_.state()), IsEmpty());
    for (const char* hierarchy : {"pids", "memory"}) {
      if (!fs::exists(kCgroupRoot / hierarchy / "cgroup.procs")) continue;  // not a v1 hierarchy here
      EXPECT_FALSE(fs::exists(task_cgroup(hierarchy, id))) << task_cgroup(hierarchy, id);
    }
    EXPECT_FALSE(fs::exists(bundle(id))) << bundle(id);
  }

  // Restarts ctrd after `stop` took it down.
  void restart() {
    d_.start();
    ASSERT_TRUE(d_.wait_ready()) << d_.log();
  }

  // t5 runs while `take_down` stops ctrd; after a restart ctrd still controls it.
  void expect_task_survives_restart(const std::function<void()>& take_down) {
    const std::string id = "t5";
    ASSERT_NO_FATAL_FAILURE(run_sleeper(id));
    ASSERT_NO_FATAL_FAILURE(take_down());
    ASSERT_EQ(shim_pids(d_.address(), id).size(), 1u) << "the shim outlives ctrd";
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(wait_task_status(d_, id, "RUNNING", 5s), "RUNNING") << d_.log();
    auto exec = d_.ctr({"task", "exec", "--exec-id", "e2", id, "echo", "back"});
    ASSERT_EQ(exec.exit_code, 0) << exec.all() << d_.log();
    EXPECT_EQ(trim(exec.out), "back");
    ASSERT_NO_FATAL_FAILURE(kill_and_remove(id));
    expect_no_leftovers(id);
  }

  static inline std::unique_ptr<TempDir> image_dir_;
  static inline fs::path image_;
  // Metrics served, and the restart monitor checking often enough for a test.
  const uint16_t metrics_port_ = free_port();
  Daemon d_{DaemonOptions{
      .config = "[metrics]\n  address = \"127.0.0.1:" + std::to_string(metrics_port_) +
                "\"\n[plugins.\"io.containerd.internal.v1.restart\"]\n  interval = \"100ms\"\n"}};
  TaskReaper reaper_{d_};  // declared after d_: reaps before ctrd stops
};

TEST_F(Tasks, RunPrintsOutputAndPassesExitCode) {
  auto hi = d_.ctr({"run", "--rm", kBusybox, reaper_.use("t1"), "echo", "hi"});
  ASSERT_EQ(hi.exit_code, 0) << hi.all() << d_.log();
  EXPECT_EQ(trim(hi.out), "hi");

  auto three = d_.ctr({"run", "--rm", kBusybox, reaper_.use("t1b"), "sh", "-c", "exit 3"});
  EXPECT_EQ(three.exit_code, 3) << three.all() << d_.log();

  // --rm removed both containers.
  EXPECT_THAT(lines_of(d_.ctr({"containers", "ls", "-q"}).out), IsEmpty());
  expect_no_leftovers("t1");
  expect_no_leftovers("t1b");
}

TEST_F(Tasks, DetachedLifecycleLeavesNothingBehind) {
  const std::string id = "t2";
  ASSERT_NO_FATAL_FAILURE(run_sleeper(id));
  const std::string pid = task_table(d_)[id].pid;
  ASSERT_FALSE(pid.empty());
  ASSERT_NE(pid, "0");
  // What must be gone at the end is there now (so the checks below can see it).
  EXPECT_EQ(shim_pids(d_.address(), id).size(), 1u);
  EXPECT_THAT(mounts_below(d_.state()), Not(IsEmpty()));
  EXPECT_TRUE(fs::exists(bundle(id)));
  for (const char* hierarchy : {"pids", "memory"}) {
    if (fs::exists(kCgroupRoot / hierarchy / "cgroup.procs")) {
      EXPECT_TRUE(fs::exists(task_cgroup(hierarchy, id))) << task_cgroup(hierarchy, id);
    }
  }

  auto exec = d_.ctr({"task", "exec", "--exec-id", "e1", id, "ps"});
  ASSERT_EQ(exec.exit_code, 0) << exec.all() << d_.log();
  EXPECT_THAT(exec.out, HasSubstr("sleep 1000"));

  auto ps = d_.ctr({"task", "ps", id});
  ASSERT_EQ(ps.exit_code, 0) << ps.all() << d_.log();
  std::vector<std::string> ps_pids;
  for (const auto& line : lines_of(ps.out)) ps_pids.push_back(fields_of(line).front());
  EXPECT_THAT(ps_pids, ::testing::Contains(pid)) << ps.out;

  auto pause = d_.ctr({"task", "pause", id});
  ASSERT_EQ(pause.exit_code, 0) << pause.all() << d_.log();
  EXPECT_EQ(task_status(d_, id), "PAUSED");
  auto resume = d_.ctr({"task", "resume", id});
  ASSERT_EQ(resume.exit_code, 0) << resume.all() << d_.log();
  EXPECT_EQ(task_status(d_, id), "RUNNING");

  auto metrics = d_.ctr({"task", "metrics", id});
  ASSERT_EQ(metrics.exit_code, 0) << metrics.all() << d_.log();
  EXPECT_THAT(metrics.out, HasSubstr("memory.usage"));
  EXPECT_THAT(metrics.out, HasSubstr("pids.current"));

  ASSERT_NO_FATAL_FAILURE(kill_and_remove(id));
  EXPECT_THAT(task_table(d_), IsEmpty());
  expect_no_leftovers(id);
}

TEST_F(Tasks, EventsOfARunArriveInOrder) {
  const fs::path log = d_.dir() / "events.log";
  Process events({ctr_binary(), "-a", d_.address(), "events"}, log.string());
  // The subscription is up once an event we cause shows up in its output.
  bool subscribed = false;
  for (int i = 0; i < 20 && !subscribed; ++i) {
    d_.ctr({"namespaces", "label", kNamespace, "probe=" + std::to_string(i)});
    subscribed =
        wait_for_content(log, {"/namespaces/update"}, 1s).find("/namespaces/update") != std::string::npos;
  }
  ASSERT_TRUE(subscribed) << read_text(log) << d_.log();

  auto r = d_.ctr({"run", "--rm", kBusybox, reaper_.use("t3"), "true"});
  ASSERT_EQ(r.exit_code, 0) << r.all() << d_.log();

  const std::vector<std::string> topics{"/containers/create", "/tasks/create", "/tasks/start",
                                        "/tasks/exit",        "/tasks/delete", "/containers/delete"};
  std::vector<std::string> needles;
  for (const auto& t : topics) needles.push_back(" " + t + " ");
  const std::string text = wait_for_content(log, needles);
  size_t last = 0;
  for (const auto& n : needles) {
    const size_t at = text.find(n);
    ASSERT_NE(at, std::string::npos) << n << " missing from:\n" << text;
    EXPECT_GT(at, last) << n << " out of order in:\n" << text;
    last = at;
  }
  // The run's events carry its container id.
  EXPECT_THAT(text, HasSubstr("t3"));
}

// A tmux server on a private socket, killed on destruction.
class Tmux {
 public:
  explicit Tmux(const fs::path& dir) : socket_((dir / "tmux.sock").string()) {}
  ~Tmux() { run({"/usr/bin/tmux", "-S", socket_, "kill-server"}, 10s); }
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  RunResult operator()(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/tmux", "-S", socket_});
    return run(args, 10s);
  }
  std::string pane() { return (*this)({"capture-pane", "-p", "-t", "main"}).out; }
  bool session_alive() { return (*this)({"has-session", "-t", "main"}).exit_code == 0; }

 private:
  std::string socket_;
};

TEST_F(Tasks, InteractiveShellInATerminal) {
  const fs::path rc_file = d_.dir() / "ctr-rc";
  Tmux tmux(d_.dir());
  // The exit code goes to a file: the session (and with it ctr's output) is gone by the end.
  const std::string command = ctr_binary() + " -a " + d_.address() + " run -t --rm " + kBusybox + " " +
                              reaper_.use("t4") + " sh; echo $? > " + rc_file.string();
  auto started = tmux({"new-session", "-d", "-s", "main", "-x", "120", "-y", "30", command});
  ASSERT_EQ(started.exit_code, 0) << started.all();

  std::string pane;
  ASSERT_TRUE(poll_until(
      [&] {
        pane = tmux.pane();
        // busybox sh's prompt for root ends in '#', with or without the working directory.
        const auto lines = lines_of(pane);
        return std::any_of(lines.begin(), lines.end(), [](const std::string& l) { return l.back() == '#'; });
      },
      20s))
      << "no prompt; pane:\n"
      << pane << d_.log();
  ASSERT_EQ(tmux({"send-keys", "-t", "main", "echo $((6*7))", "Enter"}).exit_code, 0);
  EXPECT_TRUE(poll_until(
      [&] {
        pane = tmux.pane();
        const auto lines = lines_of(pane);
        return std::find(lines.begin(), lines.end(), "42") != lines.end();
      },
      10s))
      << "pane:\n"
      << pane << d_.log();

  ASSERT_EQ(tmux({"send-keys", "-t", "main", "exit", "Enter"}).exit_code, 0);
  EXPECT_TRUE(poll_until([&] { return !tmux.session_alive(); }, 20s)) << "pane:\n" << tmux.pane() << d_.log();
  EXPECT_EQ(trim(read_text(rc_file)), "0");
  EXPECT_THAT(lines_of(d_.ctr({"containers", "ls", "-q"}).out), IsEmpty());
  expect_no_leftovers("t4");
}

TEST_F(Tasks, ReconnectsToRunningTaskAfterSigterm) {
  expect_task_survives_restart([this] { ASSERT_EQ(d_.stop(), 0) << d_.log(); });
}

// A client waiting on the task when SIGTERM comes: the daemon drains the
// Wait (it ends cancelled, the task does not) and stops well within its limit.
TEST_F(Tasks, ReconnectsToRunningTaskAfterSigtermWithAWaitInFlight) {
  expect_task_survives_restart([this] {
    auto stub = containerd::services::tasks::v1::Tasks::NewStub(d_.channel());
    auto ctx = context_for(kNamespace);
    containerd::services::tasks::v1::WaitRequest req;
    req.set_container_id("t5");
    containerd::services::tasks::v1::WaitResponse resp;
    std::promise<grpc::Status> waited;
    std::thread waiter([&] { waited.set_value(stub->Wait(ctx.get(), req, &resp)); });
    // In flight once the daemon counts it as started.
    const std::string started_wait =
        "grpc_server_started_total{grpc_method=\"Wait\",grpc_service=\"containerd.services.tasks.v1.Tasks\","
        "grpc_type=\"unary\"} 1";
    EXPECT_TRUE(poll_until(
        [&] { return http_get(metrics_port_, "/v1/metrics").find(started_wait) != std::string::npos; }, 10s))
        << http_get(metrics_port_, "/v1/metrics");
    const auto started = std::chrono::steady_clock::now();
    auto code = d_.stop(20s);
    waiter.join();
    ASSERT_EQ(code, 0) << d_.log();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 8s);
    EXPECT_THAT(d_.log(), HasSubstr("msg=\"stopped\""));
    EXPECT_FALSE(waited.get_future().get().ok()) << "the task did not exit";
  });
}

// With a container running, an image imported and an ingest half-written,
// another user (nobody) who can reach the root and state directories can
// list, read, execute, write or connect to nothing below them.
TEST_F(Tasks, NobodyCanUseNothingUnderRootOrState) {
  ASSERT_EQ(::chmod(d_.dir().c_str(), 0711), 0) << "the daemon's parent is world-traversable";
  ASSERT_NO_FATAL_FAILURE(run_sleeper("t8"));
  auto content = containerd::services::content::v1::Content::NewStub(d_.channel());
  auto write_ctx = context_for(kNamespace);
  auto ingest = content->Write(write_ctx.get());
  containerd::services::content::v1::WriteContentRequest req;
  req.set_action(containerd::services::content::v1::WRITE);
  req.set_ref("walk-ingest");
  req.set_total(2 << 20);
  req.set_data(std::string(1 << 20, 'i'));
  containerd::services::content::v1::WriteContentResponse resp;
  ASSERT_TRUE(ingest->Write(req) && ingest->Read(&resp));

  auto listed = run({"/usr/bin/python3", CTRD_NOBODY_WALK_PATH, "list", d_.root(), d_.state()});
  ASSERT_EQ(listed.exit_code, 0) << listed.all();
  const auto entries = lines_of(listed.out);
  // What the walk must have seen for it to mean anything.
  for (const char* expected : {"/blobs/sha256/", "/ingest/", "/io.containerd.metadata.v1.lmdb/",
                               "/io.containerd.runtime.v2.task/default/t8/config.json",
                               "/io.containerd.snapshotter.v1.overlayfs/snapshots/"}) {
    EXPECT_TRUE(std::any_of(entries.begin(), entries.end(),
                            [&](const std::string& e) { return e.find(expected) != std::string::npos; }))
        << "the walk saw nothing under " << expected;
  }
  const fs::path list = d_.dir() / "walk.list";
  {
    std::ofstream out(list);
    out << listed.out << "socket\t" << d_.address() << "\nsocket\t" << d_.address() << ".ttrpc\n";
  }
  auto tried = run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    "/usr/bin/python3", CTRD_NOBODY_WALK_PATH, "try", d_.root(), d_.state()},
                   60s, list.string());
  EXPECT_EQ(tried.exit_code, 0) << tried.all();
  EXPECT_THAT(tried.out, HasSubstr("reached 2 top directories as uid 65534; tried " +
                                   std::to_string(entries.size() + 2) + " entries"));

  write_ctx->TryCancel();
  (void)ingest->Finish();
  ASSERT_NO_FATAL_FAILURE(kill_and_remove("t8"));
}

TEST_F(Tasks, ReconnectsToRunningTaskAfterKill9) {
  expect_task_survives_restart([this] { d_.kill9(); });
}

TEST_F(Tasks, ShimKilledWhileDaemonDownLeavesStoppedTask) {
  const std::string id = "t6";
  ASSERT_NO_FATAL_FAILURE(run_sleeper(id));
  const std::string pid_text = task_table(d_)[id].pid;
  ASSERT_FALSE(pid_text.empty());
  const pid_t task_pid = std::stoi(pid_text);
  const auto task_argv = cmdline_of(task_pid);
  ASSERT_EQ(task_argv, (std::vector<std::string>{"sleep", "1000"}));

  ASSERT_EQ(d_.stop(), 0) << d_.log();
  auto shims = shim_pids(d_.address(), id);
  ASSERT_EQ(shims.size(), 1u);
  ASSERT_EQ(::kill(shims.front(), SIGKILL), 0);
  ASSERT_TRUE(poll_until([&] { return shim_pids(d_.address(), id).empty(); }, 10s));
  ASSERT_NO_FATAL_FAILURE(restart());

  EXPECT_EQ(wait_task_status(d_, id, "STOPPED"), "STOPPED") << d_.log();
  auto rm = d_.ctr({"task", "rm", id});
  EXPECT_EQ(rm.exit_code, 0) << rm.all() << d_.log();
  auto crm = d_.ctr({"containers", "rm", id});
  EXPECT_EQ(crm.exit_code, 0) << crm.all() << d_.log();

  EXPECT_TRUE(poll_until([&] { return process_gone(task_pid, task_argv); }, 10s))
      << "the container's sleep " << task_pid << " still runs\n"
      << d_.log();
  expect_no_leftovers(id);
}

TEST_F(Tasks, MetricsShowRunningContainers) {
  ASSERT_NO_FATAL_FAILURE(run_sleeper("t8"));
  const std::string text = body_of(http_get(metrics_port_, "/v1/metrics"));
  const std::string labels = "{container_id=\"t8\",namespace=\"" + kNamespace + "\"}";
  for (const std::string family :
       {"container_memory_usage_usage_bytes", "container_pids_current", "container_cpu_total_nanoseconds"}) {
    EXPECT_THAT(text, HasSubstr(family + labels)) << family;
  }
  // One process runs in it: `sleep`.
  EXPECT_THAT(text, HasSubstr("container_pids_current" + labels + " 1\n"));
  if (fs::exists("/usr/bin/promtool")) {
    const auto file = d_.dir() / "metrics.txt";
    std::ofstream(file) << text;
    auto check = run({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + file.string()});
    // The text parses (exit 1 would be an error). containerd's own container_*
    // names are gauges in nanoseconds and with _total, which promtool's naming
    // lint (exit 3) flags; dashboards know those names, so they stay. Nothing
    // else may be flagged.
    EXPECT_TRUE(check.exit_code == 0 || check.exit_code == 3) << check.all();
    for (const auto& line : lines_of(check.all())) {
      const bool naming_lint = line.starts_with("container_") &&
                               (line.ends_with("use base unit \"seconds\" instead of \"nanoseconds\"") ||
                                line.ends_with("non-counter metrics should not have \"_total\" suffix"));
      EXPECT_TRUE(naming_lint) << line;
    }
  }
  ASSERT_NO_FATAL_FAILURE(kill_and_remove("t8"));
  EXPECT_THAT(body_of(http_get(metrics_port_, "/v1/metrics")), Not(HasSubstr("container_id=\"t8\"")));
}

TEST_F(Tasks, RestartMonitorStartsALabelledContainerAgain) {
  const std::string id = reaper_.use("t9");
  const auto log = d_.dir() / "t9.log";
  auto r = d_.ctr({"run", "-d", "--label", "containerd.io/restart.status=running", "--label",
                   "containerd.io/restart.logpath=" + log.string(), kBusybox, id, "sh", "-c",
                   "echo started; exec sleep 1000"});
  ASSERT_EQ(r.exit_code, 0) << r.all() << d_.log();
  ASSERT_EQ(wait_task_status(d_, id, "RUNNING"), "RUNNING");
  const std::string first_pid = task_table(d_)[id].pid;
  ASSERT_EQ(d_.ctr({"task", "kill", "-s", "SIGKILL", id}).exit_code, 0);
  // The monitor deletes the stopped task and starts a new one, logging to the labelled file.
  ASSERT_TRUE(poll_until(
      [&] {
        auto rows = task_table(d_);
        return rows.contains(id) && rows[id].status == "RUNNING" && rows[id].pid != first_pid;
      },
      20s))
      << d_.log();
  EXPECT_THAT(wait_for_content(log, {"started"}, 10s), HasSubstr("started"));

  // Labelled stopped, it is stopped and its task deleted.
  ASSERT_EQ(d_.ctr({"containers", "label", id, "containerd.io/restart.status=stopped"}).exit_code, 0);
  ASSERT_TRUE(poll_until([&] { return !task_table(d_).contains(id); }, 20s)) << d_.log();
  EXPECT_EQ(d_.ctr({"containers", "rm", id}).exit_code, 0);
  expect_no_leftovers(id);
}

TEST_F(Tasks, FiftyConcurrentRunsLeaveNothing) {
  constexpr int kThreads = 10;
  constexpr int kRunsPerThread = 5;
  std::vector<std::string> ids;
  for (int i = 0; i < kThreads * kRunsPerThread; ++i) ids.push_back(reaper_.use("l" + std::to_string(i)));

  std::vector<RunResult> results(ids.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRunsPerThread; ++r) {
        const size_t i = static_cast<size_t>(t * kRunsPerThread + r);
        results[i] = d_.ctr({"run", "--rm", kBusybox, ids[i], "true"});
      }
    });
  }
  for (auto& th : threads) th.join();

  int failures = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(results[i].exit_code, 0) << ids[i] << ": " << results[i].all();
    if (results[i].exit_code != 0) ++failures;
  }
  if (failures > 0) ADD_FAILURE() << failures << " runs failed; daemon log:\n" << d_.log();

  EXPECT_THAT(lines_of(d_.ctr({"containers", "ls", "-q"}).out), IsEmpty());
  EXPECT_THAT(lines_of(d_.ctr({"task", "ls", "-q"}).out), IsEmpty());
  EXPECT_TRUE(poll_until([&] { return shim_pids(d_.address()).empty(); }, 10s)) << "shims left";
  EXPECT_THAT(mounts_below(d_.state()), IsEmpty());
  std::error_code ec;
  const fs::path bundles = fs::path(d_.state()) / "io.containerd.runtime.v2.task" / kNamespace;
  EXPECT_TRUE(!fs::exists(bundles) || fs::is_empty(bundles, ec)) << "bundles left under " << bundles;
}

}  // namespace
}  // namespace ctrd::testing
