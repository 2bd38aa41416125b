#include "os/process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

namespace ctrd::os {
namespace {

TEST(ProcessTest, CapturesOutputAndExitCode) {
  auto r = run({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_FALSE(r->ok());
}

TEST(ProcessTest, FeedsStdinAndSetsDirectoryAndEnvironment) {
  RunOptions options;
  options.working_dir = "/tmp";
  options.env = {"GREETING=hello", "PATH=/usr/bin:/bin"};
  options.stdin_data = std::string(200000, 'x');  // more than a pipe holds
  auto r = run({"sh", "-c", "pwd; echo $GREETING; wc -c"}, options);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, "/tmp\nhello\n200000\n");
}

TEST(ProcessTest, ChildStartsWithNoSignalsBlocked) {
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &block, &old);
  auto r = run({"/bin/sh", "-c", "grep SigBlk /proc/self/status"});
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "SigBlk:\t0000000000000000\n");
}

TEST(ProcessTest, NewProcessGroup) {
  RunOptions options;
  options.new_process_group = true;
  auto r = run({"/bin/sh", "-c", "ps -o pgid= -p $$; echo $$"}, options);
  ASSERT_TRUE(r.ok());
  std::istringstream in(r->out);
  std::string pgid, pid;
  in >> pgid >> pid;
  EXPECT_EQ(pgid, pid);
}

TEST(ProcessTest, TimeoutKillsTheChild) {
  RunOptions options;
  options.timeout = std::chrono::milliseconds(200);
  auto r = run({"/bin/sleep", "30"}, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), errdefs::Code::kDeadlineExceeded);
}

TEST(ProcessTest, ReturnsWhenTheChildExitsEvenIfAGrandchildHoldsItsOutput) {
  const auto start = std::chrono::steady_clock::now();
  // The backgrounded sleep keeps stdout open, as a shim's daemon half would
  // if it did not redirect it.
  auto r = run({"/bin/sh", "-c", "sleep 5 & echo started"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "started\n");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

TEST(ProcessTest, MissingProgramIsNotFound) {
  auto r = run({"no-such-program-here"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), errdefs::Code::kNotFound);
  EXPECT_NE(r.status().message().find("no-such-program-here"), std::string::npos);
}

}  // namespace
}  // namespace ctrd::os
