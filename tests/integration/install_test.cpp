// What `cmake --install` lays out, as a packager and an operator use it:
// DESTDIR and the prefix honoured, a unit systemd accepts, and an installed
// daemon that starts on the installed config.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"

namespace ctrd::testing {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

RunResult install(const std::string& prefix, const std::string& destdir = "") {
  std::vector<std::string> argv{"/usr/bin/env"};
  if (!destdir.empty()) argv.push_back("DESTDIR=" + destdir);
  argv.insert(argv.end(), {"cmake", "--install", CTRD_BUILD_DIR, "--prefix", prefix});
  return run(argv, std::chrono::seconds(120));
}

TEST(Install, HonoursDestdirAndPrefix) {
  TempDir stage;
  auto r = install("/usr", stage.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.all();
  const fs::path root = stage.path();
  EXPECT_TRUE(fs::exists(root / "usr/bin/ctrd"));
  EXPECT_TRUE(fs::exists(root / "etc/ctrd/config.toml")) << "prefix /usr puts the config in /etc";
  EXPECT_TRUE(fs::exists(root / "usr/share/doc/ctrd/README.md"));
  EXPECT_TRUE(fs::exists(root / "usr/share/doc/ctrd/tasks.md"));
  const std::string unit = read_text(root / "usr/lib/systemd/system/ctrd.service");
  EXPECT_THAT(unit, HasSubstr("ExecStart=/usr/bin/ctrd --config /etc/ctrd/config.toml"));
  for (const char* line : {"Type=notify", "Delegate=yes", "KillMode=process",
                           "LimitNOFILE=", "OOMScoreAdjust=-999", "ExecStartPre=-/sbin/modprobe overlay"}) {
    EXPECT_THAT(unit, HasSubstr(line)) << line;
  }
  const std::string config = read_text(root / "etc/ctrd/config.toml");
  EXPECT_THAT(config, HasSubstr("[plugins.\"io.containerd.runtime.v2.task\"]"));
}

TEST(Install, InstalledDaemonStartsOnInstalledConfigAndSystemdAcceptsTheUnit) {
  TempDir dir;
  const fs::path prefix = dir.path() / "usr/local";
  auto r = install(prefix.string());
  ASSERT_EQ(r.exit_code, 0) << r.all();
  const fs::path unit = prefix / "lib/systemd/system/ctrd.service";
  const fs::path config = prefix / "etc/ctrd/config.toml";
  EXPECT_THAT(read_text(unit),
              HasSubstr("ExecStart=" + (prefix / "bin/ctrd").string() + " --config " + config.string()));
  if (fs::exists("/usr/bin/systemd-analyze")) {
    auto verify = run({"/usr/bin/systemd-analyze", "verify", unit.string()});
    EXPECT_EQ(verify.exit_code, 0) << verify.all();
  }

  // The installed binary on the installed config, with its own directories.
  const fs::path sock = dir.path() / "ctrd.sock";
  Process daemon(
      {(prefix / "bin/ctrd").string(), "--config", config.string(), "--root", (dir.path() / "root").string(),
       "--state", (dir.path() / "state").string(), "--address", sock.string()},
      (dir.path() / "ctrd.log").string());
  // A bounded poll: the socket answers once the daemon is up.
  RunResult version;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline && daemon.running()) {
    version = run({ctr_binary(), "-a", sock.string(), "version"}, std::chrono::seconds(5));
    if (version.exit_code == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(version.exit_code, 0) << version.all() << read_text(dir.path() / "ctrd.log");
  EXPECT_THAT(version.out, HasSubstr("Server:"));
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(std::chrono::seconds(30)), 0) << read_text(dir.path() / "ctrd.log");
}

}  // namespace
}  // namespace ctrd::testing
