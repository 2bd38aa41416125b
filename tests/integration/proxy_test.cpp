// Proxy plugins with the real ctr: a snapshotter and a content store served
// by `ctrd serve-snapshotter` / `ctrd serve-content` in a process of their
// own, used by a daemon through `[proxy_plugins]` — listed, used for import
// and run, failing with Unavailable while their server is down (the daemon
// itself unaffected) and working again once it is back on the same socket.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "harness.h"

namespace ctrd::testing {
namespace {

using ::testing::HasSubstr;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kBusybox = "docker.io/library/busybox:latest";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// `ctrd serve-*` on a socket; restartable, stopped by SIGTERM.
class ExternalServer {
 public:
  ExternalServer(std::vector<std::string> args, fs::path dir) : args_(std::move(args)), dir_(std::move(dir)) {
    args_.insert(args_.begin(), ctrd_binary());
  }

  void start() {
    // A log per start, so waiting for "serving" sees this start's line.
    log_ = dir_ / ("serve-" + std::to_string(++starts_) + ".log");
    process_ = std::make_unique<Process>(args_, log_.string());
    auto text = wait_for_content(log_, {"msg=\"serving\""});
    ASSERT_THAT(text, HasSubstr("msg=\"serving\"")) << text;
  }

  void stop() {
    process_->signal(SIGTERM);
    EXPECT_EQ(process_->wait(30s), 0) << log();
  }

  std::string log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  std::vector<std::string> args_;
  fs::path dir_;
  fs::path log_;
  int starts_ = 0;
  std::unique_ptr<Process> process_;
};

std::string proxy_config(const std::string& name, const std::string& type, const std::string& address,
                         const std::string& before = "") {
  return before + "[proxy_plugins." + name + "]\n  type = \"" + type + "\"\n  address = \"" + address +
         "\"\n";
}

// The daemon's call after the plugin is back may still meet the channel's
// reconnect backoff, which that failure resets: a second call connects.
RunResult until_ok(Daemon& d, const std::vector<std::string>& args) {
  RunResult r;
  for (int attempt = 0; attempt < 3; ++attempt) {
    r = d.ctr(args);
    if (r.exit_code == 0) break;
  }
  return r;
}

TEST(ProxyPlugins, ExternalSnapshotter) {
  TempDir tmp;
  const std::string sock = (tmp.path() / "extsnap.sock").string();
  ExternalServer server({"serve-snapshotter", "--snapshotter", "native", "--root",
                         (tmp.path() / "snaps").string(), "--address", sock},
                        tmp.path());
  ASSERT_NO_FATAL_FAILURE(server.start());
  Daemon d(DaemonOptions{.config = proxy_config("extsnap", "snapshot", sock)});

  auto plugins = d.ctr({"plugins", "ls"});
  ASSERT_EQ(plugins.exit_code, 0) << plugins.all();
  bool listed = false;
  std::istringstream lines(plugins.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("io.containerd.snapshotter.v1") != std::string::npos &&
        line.find(" extsnap ") != std::string::npos) {
      listed = true;
      EXPECT_THAT(line, HasSubstr(" ok")) << line;
    }
  }
  EXPECT_TRUE(listed) << plugins.out;

  auto imported = d.ctr({"images", "import", "--snapshotter", "extsnap", busybox_tar(tmp.path()).string()});
  ASSERT_EQ(imported.exit_code, 0) << imported.all() << d.log() << server.log();
  auto snaps = d.ctr({"snapshots", "--snapshotter", "extsnap", "ls"});
  ASSERT_EQ(snaps.exit_code, 0) << snaps.all();
  EXPECT_THAT(snaps.out, HasSubstr("Committed"));
  // The layers live in the external server's root, not the daemon's.
  EXPECT_FALSE(fs::exists(fs::path(d.root()) / "io.containerd.snapshotter.v1.extsnap" / "snapshots"));

  auto hi = d.ctr({"run", "--rm", "--snapshotter", "extsnap", kBusybox, "p1", "echo", "hi"});
  ASSERT_EQ(hi.exit_code, 0) << hi.all() << d.log();
  EXPECT_EQ(hi.out, "hi\n");

  server.stop();
  auto down = d.ctr({"snapshots", "--snapshotter", "extsnap", "ls"});
  EXPECT_NE(down.exit_code, 0) << down.all();
  EXPECT_THAT(lower(down.all()), HasSubstr("unavailable"));
  EXPECT_THAT(down.all(), HasSubstr(sock));
  auto version = d.ctr({"version"});
  EXPECT_EQ(version.exit_code, 0) << version.all();
  EXPECT_TRUE(d.process().running());

  ASSERT_NO_FATAL_FAILURE(server.start());
  auto back = until_ok(d, {"snapshots", "--snapshotter", "extsnap", "ls"});
  ASSERT_EQ(back.exit_code, 0) << back.all() << d.log();
  EXPECT_EQ(back.out, snaps.out);
}

TEST(ProxyPlugins, ExternalContentStore) {
  TempDir tmp;
  const std::string sock = (tmp.path() / "extcontent.sock").string();
  const fs::path blobs_root = tmp.path() / "blobs";
  ExternalServer server({"serve-content", "--root", blobs_root.string(), "--address", sock}, tmp.path());
  ASSERT_NO_FATAL_FAILURE(server.start());
  // The metadata store takes the first content plugin: the local one goes.
  Daemon d(
      DaemonOptions{.config = proxy_config("extcontent", "content", sock,
                                           "disabled_plugins = [\"io.containerd.content.v1.content\"]\n")});

  auto imported = d.ctr({"images", "import", busybox_tar(tmp.path()).string()});
  ASSERT_EQ(imported.exit_code, 0) << imported.all() << d.log() << server.log();
  auto listing = d.ctr({"content", "ls"});
  ASSERT_EQ(listing.exit_code, 0) << listing.all();
  // The layer: the blob labelled with its uncompressed digest.
  std::string layer;
  std::istringstream lines(listing.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("containerd.io/uncompressed=") != std::string::npos)
      layer = line.substr(0, line.find('\t'));
  }
  ASSERT_THAT(layer, ::testing::StartsWith("sha256:")) << listing.out;
  // Its bytes are in the external store, not under the daemon's root.
  const fs::path blob = blobs_root / "blobs" / "sha256" / layer.substr(7);
  ASSERT_TRUE(fs::exists(blob)) << blob;
  EXPECT_FALSE(fs::exists(fs::path(d.root()) / "io.containerd.content.v1.content"));
  auto got = d.ctr({"content", "get", layer});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_EQ(got.out.size(), fs::file_size(blob));

  server.stop();
  // Listing reads the metadata store only; reading a blob needs the plugin.
  auto down = d.ctr({"content", "get", layer});
  EXPECT_NE(down.exit_code, 0) << down.err;
  EXPECT_THAT(lower(down.err), HasSubstr("unavailable"));
  EXPECT_THAT(down.err, HasSubstr(sock));
  EXPECT_EQ(d.ctr({"version"}).exit_code, 0);
  EXPECT_TRUE(d.process().running());

  ASSERT_NO_FATAL_FAILURE(server.start());
  auto back = until_ok(d, {"content", "get", layer});
  ASSERT_EQ(back.exit_code, 0) << back.err << d.log();
  EXPECT_EQ(back.out, got.out);
}

TEST(ProxyPlugins, UnknownTypeStopsTheDaemonNamingTheEntry) {
  Daemon d(DaemonOptions{.config = proxy_config("weird", "runtime", "/nonexistent.sock"), .start = false});
  d.start();
  auto code = d.process().wait(30s);
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_THAT(d.log(), HasSubstr("proxy_plugins.weird"));
  EXPECT_THAT(d.log(), HasSubstr("unsupported proxy plugin type"));
}

}  // namespace
}  // namespace ctrd::testing
