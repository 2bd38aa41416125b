// Images, snapshots, layer apply and containers as a user drives them with the
// real ctr: import (OCI and docker layouts; gzip, zstd, plain layers), pull
// from a registry on loopback, mount, export, containers, garbage collection,
// and hostile or broken layers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "harness.h"

namespace ctrd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

namespace fs = std::filesystem;

const std::string kBusybox = "docker.io/library/busybox:latest";

size_t count_files(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  size_t n = 0;
  for (auto it = fs::directory_iterator(dir, ec); it != fs::directory_iterator(); it.increment(ec)) ++n;
  return n;
}

fs::path blobs_dir(Daemon& d) {
  return fs::path(d.root()) / "io.containerd.content.v1.content" / "blobs" / "sha256";
}
fs::path snapshots_dir(Daemon& d, const std::string& snapshotter) {
  return fs::path(d.root()) / ("io.containerd.snapshotter.v1." + snapshotter) / "snapshots";
}

// Mounts `ref` with ctr on a fresh directory and unmounts it again on destruction.
class ImageMount {
 public:
  ImageMount(Daemon& d, const std::string& ref, const std::string& ns = "default",
             const std::vector<std::string>& flags = {})
      : d_(d), ns_(ns), target_(d.dir() / ("mnt-" + std::to_string(counter_++))) {
    fs::create_directories(target_);
    std::vector<std::string> args{"images", "mount"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back(ref);
    args.push_back(target_.string());
    result_ = d_.ctr(args, ns_);
  }
  ~ImageMount() {
    d_.ctr({"images", "unmount", "--rm", target_.string()}, ns_);
    unmount_below(target_.parent_path());
  }
  const RunResult& result() const { return result_; }
  const fs::path& path() const { return target_; }

 private:
  static inline int counter_ = 0;
  Daemon& d_;
  std::string ns_;
  fs::path target_;
  RunResult result_;
};

void expect_busybox_tree(const fs::path& root) {
  EXPECT_TRUE(fs::is_regular_file(root / "bin" / "busybox")) << root;
  EXPECT_TRUE(fs::is_symlink(root / "bin" / "sh"));
  EXPECT_EQ(fs::read_symlink(root / "bin" / "sh"), "busybox");
  std::ifstream passwd(root / "etc" / "passwd");
  std::string line;
  std::getline(passwd, line);
  EXPECT_EQ(line, "root:x:0:0:root:/root:/bin/sh");
}

TEST(Images, ImportCheckMountExportLabelRemove) {
  Daemon d;
  fs::path tar = busybox_tar(d.dir());
  auto imported = d.ctr({"images", "import", tar.string()});
  ASSERT_EQ(imported.exit_code, 0) << imported.all() << d.log();
  EXPECT_THAT(imported.out, HasSubstr(kBusybox));

  auto ls = d.ctr({"images", "ls"});
  EXPECT_THAT(ls.out, HasSubstr(kBusybox));
  auto check = d.ctr({"images", "check"});
  ASSERT_EQ(check.exit_code, 0) << check.all();
  EXPECT_TRUE(std::regex_search(check.out, std::regex("complete \\(2/2\\).*true"))) << check.out;

  {
    ImageMount m(d, kBusybox);
    ASSERT_EQ(m.result().exit_code, 0) << m.result().all() << d.log();
    expect_busybox_tree(m.path());
  }

  ASSERT_EQ(d.ctr({"images", "label", kBusybox, "team=infra"}).exit_code, 0);
  EXPECT_THAT(d.ctr({"images", "ls"}).out, HasSubstr("team=infra"));
  EXPECT_THAT(d.ctr({"images", "ls", "labels.team==infra"}).out, HasSubstr(kBusybox));
  EXPECT_THAT(d.ctr({"images", "ls", "labels.team==other"}).out, Not(HasSubstr(kBusybox)));

  fs::path exported = d.dir() / "exported.tar";
  auto ex = d.ctr({"images", "export", exported.string(), kBusybox});
  ASSERT_EQ(ex.exit_code, 0) << ex.all();
  auto re = d.ctr({"images", "import", exported.string()}, "other");
  ASSERT_EQ(re.exit_code, 0) << re.all();
  EXPECT_THAT(d.ctr({"images", "check"}, "other").out, HasSubstr("true"));

  ASSERT_EQ(d.ctr({"images", "rm", kBusybox}).exit_code, 0);
  EXPECT_THAT(d.ctr({"images", "ls"}).out, Not(HasSubstr(kBusybox)));
  auto missing = d.ctr({"images", "rm", kBusybox});
  EXPECT_THAT(missing.all(), HasSubstr("not found"));
  // The other namespace's copy is untouched.
  EXPECT_THAT(d.ctr({"images", "ls"}, "other").out, HasSubstr(kBusybox));
}

struct Layout {
  std::string format;
  std::string compression;
  std::string snapshotter;
};

class ImportLayouts : public ::testing::TestWithParam<Layout> {};

TEST_P(ImportLayouts, UnpacksAndMounts) {
  const Layout& l = GetParam();
  Daemon d;
  fs::path tar = busybox_tar(d.dir(), l.format, l.compression);
  auto imported = d.ctr({"images", "import", "--snapshotter", l.snapshotter, tar.string()});
  ASSERT_EQ(imported.exit_code, 0) << imported.all() << d.log();
  auto check = d.ctr({"images", "check", "--snapshotter", l.snapshotter});
  EXPECT_THAT(check.out, HasSubstr("true")) << check.all();
  ImageMount m(d, kBusybox, "default", {"--snapshotter", l.snapshotter});
  ASSERT_EQ(m.result().exit_code, 0) << m.result().all() << d.log();
  expect_busybox_tree(m.path());
}

INSTANTIATE_TEST_SUITE_P(
    Formats, ImportLayouts,
    ::testing::Values(Layout{"oci", "zstd", "overlayfs"}, Layout{"oci", "none", "overlayfs"},
                      Layout{"docker", "gzip", "overlayfs"}, Layout{"oci", "gzip", "native"},
                      Layout{"docker", "none", "native"}),
    [](const auto& info) {
      return info.param.format + "_" + info.param.compression + "_" + info.param.snapshotter;
    });

TEST(Images, ManyLayersMountWithLongLowerdirList) {
  Daemon d;
  // 128 layers, each adding one file; the overlay option string with
  // absolute lower paths would not fit in a page.
  std::vector<std::string> args{"docker.io/library/layers:128"};
  for (int i = 0; i < 128; ++i) {
    fs::path layer = d.dir() / "layers" / std::to_string(i);
    fs::create_directories(layer / "data");
    std::ofstream(layer / "data" / ("f" + std::to_string(i))) << i;
    args.push_back(layer.string());
  }
  fs::path tar = mkimage(d.dir(), "layers.tar", args);
  auto imported = d.ctr({"images", "import", tar.string()}, "default");
  ASSERT_EQ(imported.exit_code, 0) << imported.all() << d.log();
  ImageMount m(d, "docker.io/library/layers:128");
  ASSERT_EQ(m.result().exit_code, 0) << m.result().all() << d.log();
  EXPECT_EQ(count_files(m.path() / "data"), 128u);
}

TEST(Snapshots, CtrSnapshotCommands) {
  // ctr's snapshot commands take no lease: what they make is garbage to the
  // collector, as in containerd, so it must not run during this test.
  Daemon d(without_gc());
  for (std::string sn : {"overlayfs", "native"}) {
    SCOPED_TRACE(sn);
    auto ctr = [&](std::vector<std::string> args) {
      args.insert(args.begin(), {"snapshots", "--snapshotter", sn});
      return d.ctr(args);
    };
    auto prep = ctr({"prepare", "base-active"});
    ASSERT_EQ(prep.exit_code, 0) << prep.all() << d.log();
    auto mounts = ctr({"mounts", (d.dir() / "m").string(), "base-active"});
    ASSERT_EQ(mounts.exit_code, 0) << mounts.all();
    EXPECT_THAT(mounts.out, HasSubstr("mount -t"));
    ASSERT_EQ(ctr({"commit", "base", "base-active"}).exit_code, 0);
    ASSERT_EQ(ctr({"prepare", "child", "base"}).exit_code, 0);
    ASSERT_EQ(ctr({"view", "child-view", "base"}).exit_code, 0);
    auto ls = ctr({"ls"});
    EXPECT_TRUE(std::regex_search(ls.out, std::regex("\\bbase\\s+Committed"))) << ls.out;
    EXPECT_TRUE(std::regex_search(ls.out, std::regex("\\bchild\\s+base\\s+Active"))) << ls.out;
    EXPECT_TRUE(std::regex_search(ls.out, std::regex("\\bchild-view\\s+base\\s+View"))) << ls.out;
    EXPECT_THAT(ls.out, Not(HasSubstr("base-active")));
    auto tree = ctr({"tree"});
    EXPECT_THAT(tree.out, HasSubstr("base")) << tree.all();
    EXPECT_THAT(tree.out, HasSubstr("child"));
    ASSERT_EQ(ctr({"label", "child", "team=infra"}).exit_code, 0);
    auto info = ctr({"info", "child"});
    EXPECT_THAT(info.out, HasSubstr("\"team\": \"infra\"")) << info.all();
    EXPECT_THAT(info.out, HasSubstr("\"Parent\": \"base\""));
    auto usage = ctr({"usage", "child"});
    EXPECT_EQ(usage.exit_code, 0) << usage.all();
    auto busy = ctr({"rm", "base"});
    EXPECT_NE(busy.exit_code, 0);
    EXPECT_THAT(busy.all(), HasSubstr("child"));
    ASSERT_EQ(ctr({"rm", "child", "child-view"}).exit_code, 0);
    ASSERT_EQ(ctr({"rm", "base"}).exit_code, 0);
    EXPECT_THAT(ctr({"ls"}).out, Not(HasSubstr("base")));
    auto unknown = ctr({"info", "nope"});
    EXPECT_NE(unknown.exit_code, 0);
    EXPECT_THAT(unknown.all(), HasSubstr("not found"));
  }
  auto bad = d.ctr({"snapshots", "--snapshotter", "nosuch", "ls"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.all(), HasSubstr("snapshotter not loaded: nosuch"));
}

TEST(Containers, CreateListInfoLabelRemove) {
  Daemon d;
  ASSERT_EQ(d.ctr({"images", "import", busybox_tar(d.dir()).string()}).exit_code, 0);
  auto created = d.ctr({"containers", "create", kBusybox, "c1"});
  ASSERT_EQ(created.exit_code, 0) << created.all() << d.log();
  auto ls = d.ctr({"containers", "ls"});
  EXPECT_TRUE(std::regex_search(
      ls.out, std::regex("\\bc1\\s+" + std::regex_replace(kBusybox, std::regex("\\."), "\\.") +
                         "\\s+io\\.containerd\\.runc\\.v2")))
      << ls.out;
  auto info = d.ctr({"containers", "info", "c1"});
  EXPECT_THAT(info.out, HasSubstr("\"SnapshotKey\": \"c1\"")) << info.all();
  EXPECT_THAT(info.out, HasSubstr("\"Snapshotter\": \"overlayfs\""));
  EXPECT_TRUE(std::regex_search(d.ctr({"snapshots", "ls"}).out, std::regex("(^|\\n)c1\\s")));
  ASSERT_EQ(d.ctr({"containers", "label", "c1", "containerd.io/restart.status=running"}).exit_code, 0);
  EXPECT_THAT(d.ctr({"containers", "info", "c1"}).out, HasSubstr("containerd.io/restart.status"));
  auto dup = d.ctr({"containers", "create", kBusybox, "c1"});
  EXPECT_NE(dup.exit_code, 0);
  EXPECT_THAT(dup.all(), HasSubstr("already exists"));
  auto bad = d.ctr({"containers", "create", kBusybox, "bad/id"});
  EXPECT_NE(bad.exit_code, 0);
  ASSERT_EQ(d.ctr({"containers", "rm", "c1"}).exit_code, 0);
  const std::regex c1_row("(^|\\n)c1\\s");
  EXPECT_FALSE(std::regex_search(d.ctr({"containers", "ls"}).out, c1_row));
  EXPECT_FALSE(std::regex_search(d.ctr({"snapshots", "ls"}).out, c1_row))
      << "rm removes the container's snapshot";
}

TEST(Snapshots, DiffOfAContainerSnapshotIsALayerOfItsChanges) {
  Daemon d;
  ASSERT_EQ(d.ctr({"images", "import", busybox_tar(d.dir()).string()}).exit_code, 0);
  ASSERT_EQ(d.ctr({"containers", "create", kBusybox, "c1"}).exit_code, 0);
  fs::path target = d.dir() / "c1-rootfs";
  fs::create_directories(target);
  auto mount_cmd = d.ctr({"snapshots", "mounts", target.string(), "c1"});
  ASSERT_EQ(mount_cmd.exit_code, 0) << mount_cmd.all();
  auto mounted = run({"/bin/sh", "-c", mount_cmd.out});
  ASSERT_EQ(mounted.exit_code, 0) << mounted.all();
  std::ofstream(target / "etc" / "hello") << "hello\n";
  fs::remove(target / "bin" / "ls");
  unmount_below(d.dir());

  auto diff = d.ctr({"snapshots", "diff", "c1"});
  ASSERT_EQ(diff.exit_code, 0) << diff.all() << d.log();
  std::ofstream(d.dir() / "diff.tgz", std::ios::binary) << diff.out;
  auto listing = run({"/bin/tar", "-tzvf", (d.dir() / "diff.tgz").string()});
  ASSERT_EQ(listing.exit_code, 0) << listing.all();
  EXPECT_THAT(listing.out, HasSubstr("etc/hello"));
  EXPECT_THAT(listing.out, HasSubstr("bin/.wh.ls"));
  EXPECT_THAT(listing.out, Not(HasSubstr("busybox"))) << "only what changed";
}

TEST(GarbageCollection, RemoveSyncLeavesNothingOnDisk) {
  Daemon d;
  ASSERT_EQ(d.ctr({"images", "import", busybox_tar(d.dir()).string()}).exit_code, 0);
  // Manifest, config and layer (and, until the collector takes it, the
  // archive's index, which nothing refers to).
  ASSERT_GE(count_files(blobs_dir(d)), 3u);
  ASSERT_GT(count_files(snapshots_dir(d, "overlayfs")), 0u);
  auto rm = d.ctr({"images", "rm", "--sync", kBusybox});
  ASSERT_EQ(rm.exit_code, 0) << rm.all() << d.log();
  EXPECT_EQ(count_files(blobs_dir(d)), 0u);
  EXPECT_EQ(count_files(snapshots_dir(d, "overlayfs")), 0u);
  EXPECT_EQ(count_files(fs::path(d.root()) / "io.containerd.content.v1.content" / "ingest"), 0u);
  EXPECT_THAT(d.ctr({"snapshots", "ls"}).out, Not(HasSubstr("sha256")));
}

// Hostile layers: nothing outside the snapshot changes and the daemon goes on.
class HostileLayers : public ::testing::TestWithParam<std::string> {};

TEST_P(HostileLayers, ChangeNothingOutside) {
  Daemon d;
  fs::path outside = d.dir() / "outside";
  fs::create_directories(outside);
  std::ofstream(outside / "victim") << "keep me\n";
  fs::path tar = d.dir() / "bad.tar";
  auto made = run({"/usr/bin/python3", CTRD_BADIMAGE_PATH, tar.string(), GetParam(), outside.string()});
  ASSERT_EQ(made.exit_code, 0) << made.all();
  auto imported = d.ctr({"images", "import", tar.string()});
  // Clamped inside the root, or refused: either way, outside is untouched.
  EXPECT_EQ(count_files(outside), 1u) << "import said: " << imported.all();
  EXPECT_TRUE(fs::exists(outside / "victim"));
  EXPECT_EQ(fs::hard_link_count(outside / "victim"), 1u);
  std::ifstream victim(outside / "victim");
  std::string line;
  std::getline(victim, line);
  EXPECT_EQ(line, "keep me");
  EXPECT_EQ(d.ctr({"version"}).exit_code, 0) << "daemon still serving";
}

INSTANTIATE_TEST_SUITE_P(Kinds, HostileLayers,
                         ::testing::Values("dotdot", "absolute", "symlink", "symlink-earlier-layer",
                                           "hardlink", "whiteout"),
                         [](const auto& info) {
                           return std::regex_replace(info.param, std::regex("-"), "_");
                         });

TEST(BrokenLayers, ClearErrorsAndNothingCommitted) {
  Daemon d;
  fs::path outside = d.dir() / "outside";
  fs::create_directories(outside);
  struct Case {
    std::string kind;
    std::string error;
  };
  for (const Case& c :
       {Case{"truncated-gzip", "gzip"}, Case{"unknown-mediatype", "application/vnd.example.layer"},
        Case{"wrong-diffid", "diff"}}) {
    SCOPED_TRACE(c.kind);
    fs::path tar = d.dir() / (c.kind + ".tar");
    ASSERT_EQ(run({"/usr/bin/python3", CTRD_BADIMAGE_PATH, tar.string(), c.kind, outside.string()}).exit_code,
              0);
    auto imported = d.ctr({"images", "import", tar.string()});
    EXPECT_NE(imported.exit_code, 0) << imported.all();
    EXPECT_THAT(imported.all(), HasSubstr(c.error));
    auto ls = d.ctr({"snapshots", "ls"});
    EXPECT_THAT(ls.out, Not(HasSubstr("Committed"))) << ls.out;
  }
  EXPECT_EQ(d.ctr({"version"}).exit_code, 0);
}

// ctr pulls from a docker-registry on loopback that skopeo pushed busybox to.
TEST(Images, PullFromLoopbackRegistry) {
  Daemon d;
  Registry registry(d.dir() / "registry");
  auto pushed = registry.push(busybox_tar(d.dir()), "library/busybox:latest");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.all();
  const std::string ref = registry.host() + "/library/busybox:latest";
  auto pulled = d.ctr({"images", "pull", "--plain-http", ref});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.all() << d.log();
  EXPECT_THAT(d.ctr({"images", "ls"}).out, HasSubstr(ref));
  EXPECT_THAT(d.ctr({"images", "check"}).out, HasSubstr("true"));
  ImageMount m(d, ref);
  ASSERT_EQ(m.result().exit_code, 0) << m.result().all();
  expect_busybox_tree(m.path());
}

TEST(Fault, Kill9DuringUnpackLeavesNothingHalfCommitted) {
  Daemon d;
  // One large uncompressed layer of many files, so the unpack takes a while.
  fs::path layer = d.dir() / "big";
  std::string chunk(16 << 10, 'x');
  for (int i = 0; i < 16000; ++i) {
    fs::path dir = layer / ("d" + std::to_string(i / 500));
    if (i % 500 == 0) fs::create_directories(dir);
    chunk[0] = static_cast<char>(i);
    std::ofstream(dir / ("f" + std::to_string(i)), std::ios::binary) << chunk;
  }
  fs::path tar =
      mkimage(d.dir(), "big.tar", {"--compression", "none", "docker.io/library/big:1", layer.string()});
  fs::remove_all(layer);

  Process import({ctr_binary(), "-a", d.address(), "images", "import", tar.string()},
                 (d.dir() / "import.log").string());
  // Bounded: kill the daemon as soon as the layer's snapshot is being written.
  bool caught = false;
  for (int i = 0; i < 3000 && !caught && import.running(); ++i) {
    caught = std::regex_search(d.ctr({"snapshots", "ls"}).out, std::regex("extract-.*Active"));
  }
  ASSERT_TRUE(caught) << "the import finished before the unpack could be interrupted";
  d.kill9();
  import.wait(std::chrono::seconds(60));
  d.start();
  ASSERT_TRUE(d.wait_ready()) << d.log();

  auto ls = d.ctr({"snapshots", "ls"});
  EXPECT_THAT(ls.out, Not(HasSubstr("Committed"))) << ls.out;
  // The half-written snapshot is held only by the import's lease; without it
  // the collector takes it.
  auto leases = d.ctr({"leases", "ls", "-q"});
  std::istringstream ids(leases.out);
  for (std::string id; std::getline(ids, id);) {
    if (!id.empty()) {
      EXPECT_EQ(d.ctr({"leases", "rm", "--sync", id}).exit_code, 0);
    }
  }
  EXPECT_THAT(d.ctr({"snapshots", "ls"}).out, Not(HasSubstr("extract-")));
  EXPECT_EQ(count_files(snapshots_dir(d, "overlayfs")), 0u);

  auto again = d.ctr({"images", "import", tar.string()});
  ASSERT_EQ(again.exit_code, 0) << again.all() << d.log();
  EXPECT_THAT(d.ctr({"images", "check"}).out, HasSubstr("true"));
}

}  // namespace
}  // namespace ctrd::testing
