// The launcher every daemon-starting test and benchmark relies on: that it
// reports a failed start, escalates to SIGKILL, and never leaves a process
// (or an unreaped zombie) behind.
#include "support/daemon_process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "support/temp_dir.h"

namespace ctrd::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string read_log(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(DaemonProcess, MissingBinaryThrowsNamingIt) {
  TempDir dir;
  try {
    DaemonProcess p({dir.sub("no-such-daemon")}, dir.sub("log"));
    FAIL() << "started a binary that does not exist";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_EQ(std::string(e.what()).rfind("spawn " + dir.sub("no-such-daemon") + ": ", 0), 0u) << e.what();
  }
}

TEST(DaemonProcess, StdoutStderrAndEnvironmentGoWhereAsked) {
  TempDir dir;
  DaemonProcess p({.argv = {"/bin/sh", "-c", "echo out $GREETING; echo err >&2"},
                   .log = dir.sub("log"),
                   .env = std::vector<std::string>{"GREETING=hello"}});
  EXPECT_EQ(p.wait(seconds(30)), 0);
  EXPECT_FALSE(p.killed_by_signal());
  EXPECT_EQ(read_log(dir.sub("log")), "out hello\nerr\n");
}

TEST(DaemonProcess, ExitedButUnreapedKeepsItsPid) {
  TempDir dir;
  DaemonProcess p({"/bin/sh", "-c", "exit 3"}, dir.sub("log"));
  ASSERT_TRUE(poll_until([&] { return !p.running(); }, seconds(30)));
  // A zombie still answers signal 0: the pid cannot have gone to another process.
  EXPECT_EQ(::kill(p.pid(), 0), 0);
  EXPECT_EQ(p.wait(milliseconds(0)), 3);
  EXPECT_EQ(::kill(p.pid(), 0), -1);
}

TEST(DaemonProcess, StopEscalatesToSigkillAfterTheGrace) {
  TempDir dir;
  // An ignored SIGTERM survives exec, so sleep itself ignores it.
  DaemonProcess p({"/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 60"}, dir.sub("log"));
  ASSERT_TRUE(poll_until([&] { return read_log(dir.sub("log")) == "ready\n"; }, seconds(30)));
  EXPECT_FALSE(p.wait(milliseconds(0)).has_value()) << "still running";
  EXPECT_EQ(p.stop(SIGTERM, milliseconds(200)), 128 + SIGKILL);
  EXPECT_TRUE(p.killed_by_signal());
  EXPECT_FALSE(p.running());
}

TEST(DaemonProcess, StopReportsAGracefulExit) {
  TempDir dir;
  DaemonProcess p({"/bin/sh", "-c", "trap 'exit 7' TERM; echo ready; while :; do sleep 0.01; done"},
                  dir.sub("log"));
  ASSERT_TRUE(poll_until([&] { return read_log(dir.sub("log")) == "ready\n"; }, seconds(30)));
  EXPECT_EQ(p.stop(SIGTERM, seconds(30)), 7);
  EXPECT_FALSE(p.killed_by_signal());
}

TEST(DaemonProcess, DestructorKillsAndReaps) {
  TempDir dir;
  pid_t pid = -1;
  {
    DaemonProcess p({"/bin/sleep", "60"}, dir.sub("log"));
    pid = p.pid();
    EXPECT_TRUE(p.running());
  }
  EXPECT_EQ(::kill(pid, 0), -1) << "neither running nor a zombie";
  EXPECT_EQ(errno, ESRCH);
}

}  // namespace
}  // namespace ctrd::testing
