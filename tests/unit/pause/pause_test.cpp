// ctrd-pause: static, stops on SIGTERM and SIGINT, and as PID 1 of its own
// PID namespace reaps the orphans reparented to it.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include "os/process.h"
#include "support/daemon_process.h"
#include "support/temp_dir.h"

namespace ctrd::testing {
namespace {

const std::string kPause = CTRD_PAUSE_PATH;

TEST(Pause, StopsOnSigtermAndSigint) {
  TempDir dir;
  for (const int sig : {SIGTERM, SIGINT}) {
    DaemonProcess pause({kPause}, dir.sub("pause.log"));
    // Bounded: the handlers are installed at start; a signal before that
    // kills it by default, which the exit code tells apart.
    ASSERT_TRUE(poll_until([&] { return pause.running(); }, std::chrono::seconds(5)));
    auto code = pause.stop(sig, std::chrono::seconds(10));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 128 + sig);
  }
}

TEST(Pause, IsStaticAndSaysWhatItIs) {
  auto version = os::run({kPause, "-v"});
  ASSERT_TRUE(version.ok() && version->ok());
  EXPECT_EQ(version->out, "ctrd-pause\n");
  auto file = os::run({"ldd", kPause});
  ASSERT_TRUE(file.ok());
  EXPECT_NE((file->out + file->err).find("not a dynamic executable"), std::string::npos) << file->out;
}

TEST(Pause, AsPidOneItReapsOrphans) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a PID namespace";
  TempDir dir;
  // In a new PID namespace the pause process is PID 1; a shell there starts
  // an orphan that exits at once, then reports zombies among PID 1's children.
  const std::string script = dir.sub("check.sh");
  std::ofstream(script) << "sleep 0 & wait; (sleep 0 &) ; "
                           "for i in $(seq 100); do "
                           "  z=$(grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l); "
                           "  [ \"$z\" = 0 ] && { echo reaped; exit 0; }; sleep 0.05; "
                           "done; echo zombies; exit 1\n";
  // --kill-child: if the test ends early and unshare is killed, the pause
  // process goes with it.
  DaemonProcess pid1({"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "--kill-child", kPause},
                     dir.sub("pid1.log"));
  ASSERT_TRUE(poll_until(
      [&] {
        auto children = os::run({"pgrep", "-P", std::to_string(pid1.pid())});
        return children.ok() && children->ok();
      },
      std::chrono::seconds(10)));
  auto child = os::run({"pgrep", "-P", std::to_string(pid1.pid())});
  const std::string pause_pid = child->out.substr(0, child->out.find('\n'));
  auto checked = os::run({"nsenter", "--target", pause_pid, "--pid", "--mount", "sh", script});
  ASSERT_TRUE(checked.ok());
  EXPECT_EQ(checked->out, "reaped\n") << checked->err;
  // unshare passes on its child's exit: the pause process ends on SIGTERM.
  ASSERT_EQ(::kill(std::stoi(pause_pid), SIGTERM), 0);
  EXPECT_EQ(pid1.wait(std::chrono::seconds(10)), 128 + SIGTERM);
}

}  // namespace
}  // namespace ctrd::testing
