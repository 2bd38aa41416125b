#include "mount/mount.h"

#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ctrd::mount {
namespace {

namespace stdfs = std::filesystem;

bool is_mounted(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    if (mount_point == path) return true;
  }
  return false;
}

long fs_type(const std::string& path) {
  struct statfs st {};
  if (::statfs(path.c_str(), &st) != 0) return -1;
  return static_cast<long>(st.f_type);
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path);
  out << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A scratch directory; everything mounted below it is unmounted (lazily as a
// last resort) before it is removed, even when a test fails half-way.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (stdfs::temp_directory_path() / "ctrd-mount-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    if (path_.empty()) return;
    std::vector<std::string> below;
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string id, parent, dev, root, mount_point;
      fields >> id >> parent >> dev >> root >> mount_point;
      if (mount_point.starts_with(path_)) below.push_back(mount_point);
    }
    // Deepest first.
    std::sort(below.begin(), below.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
    for (const auto& m : below) ::umount2(m.c_str(), MNT_DETACH);
    std::error_code ec;
    stdfs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const {
    std::string p = path_ + "/" + name;
    stdfs::create_directories(p);
    return p;
  }

 private:
  std::string path_;
};

class MountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    if (::geteuid() != 0) GTEST_SKIP() << "mounting needs root";
  }
  ScratchDir dir_;
};

TEST_F(MountTest, TmpfsMountsAndUnmounts) {
  std::string target = dir_.sub("t");
  ASSERT_TRUE(
      mount_all({{.type = "tmpfs", .source = "tmpfs", .target = "", .options = {"size=1m", "nosuid"}}},
                target)
          .ok());
  EXPECT_TRUE(is_mounted(target));
  EXPECT_EQ(fs_type(target), static_cast<long>(TMPFS_MAGIC));
  write_file(target + "/x", "hello");
  EXPECT_EQ(read_file(target + "/x"), "hello");

  ASSERT_TRUE(unmount_all(target).ok());
  EXPECT_FALSE(is_mounted(target));
  EXPECT_FALSE(stdfs::exists(target + "/x"));
  // Not mounted (any more) is not an error, nor is a missing path.
  EXPECT_TRUE(unmount_all(target).ok());
  EXPECT_TRUE(unmount_all(target + "/missing").ok());
}

TEST_F(MountTest, UnmountAllRemovesStackedMounts) {
  std::string target = dir_.sub("stack");
  Mount tmpfs{.type = "tmpfs", .source = "tmpfs", .target = "", .options = {"size=1m"}};
  ASSERT_TRUE(mount_all({tmpfs}, target).ok());
  ASSERT_TRUE(mount_all({tmpfs}, target).ok());
  ASSERT_TRUE(unmount_all(target).ok());
  EXPECT_FALSE(is_mounted(target));
}

TEST_F(MountTest, ReadOnlyBindIsRemountedReadOnly) {
  std::string source = dir_.sub("src");
  std::string target = dir_.sub("dst");
  write_file(source + "/file", "content");
  ASSERT_TRUE(
      mount_all({{.type = "bind", .source = source, .target = "", .options = {"rbind", "ro"}}}, target).ok());
  EXPECT_TRUE(is_mounted(target));
  EXPECT_EQ(read_file(target + "/file"), "content");
  FILE* f = std::fopen((target + "/new").c_str(), "w");
  const int err = errno;
  const bool opened = f != nullptr;
  if (opened) std::fclose(f);
  EXPECT_FALSE(opened);
  EXPECT_EQ(err, EROFS);
  ASSERT_TRUE(unmount_all(target).ok());
  EXPECT_FALSE(is_mounted(target));
}

TEST_F(MountTest, ReadWriteBindAsOption) {
  std::string source = dir_.sub("src");
  std::string target = dir_.sub("dst");
  ASSERT_TRUE(
      mount_all({{.type = "none", .source = source, .target = "", .options = {"bind", "rw"}}}, target).ok());
  write_file(target + "/through", "bind");
  EXPECT_EQ(read_file(source + "/through"), "bind");
  ASSERT_TRUE(unmount_all(target).ok());
}

TEST_F(MountTest, SubTargetMountsBelowTheMountPoint) {
  std::string target = dir_.sub("root");
  std::string source = dir_.sub("src");
  write_file(source + "/f", "sub");
  ASSERT_TRUE(mount_all({{.type = "tmpfs", .source = "tmpfs", .target = "", .options = {}}}, target).ok());
  stdfs::create_directory(target + "/inner");
  ASSERT_TRUE(
      mount_all({{.type = "bind", .source = source, .target = "inner", .options = {"rbind"}}}, target).ok());
  EXPECT_EQ(read_file(target + "/inner/f"), "sub");
  ASSERT_TRUE(unmount_all(target + "/inner").ok());
  ASSERT_TRUE(unmount_all(target).ok());
  EXPECT_FALSE(is_mounted(target));
}

TEST_F(MountTest, FailedMountUndoesEarlierOnes) {
  std::string target = dir_.sub("t");
  std::vector<Mount> mounts = {
      {.type = "tmpfs", .source = "tmpfs", .target = "", .options = {}},
      {.type = "no-such-fs-type", .source = "none", .target = "", .options = {}},
  };
  errdefs::Status s = mount_all(mounts, target);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no-such-fs-type"), std::string::npos) << s.to_string();
  EXPECT_FALSE(is_mounted(target));
}

TEST(MountOptions, OptionValueAndLowerdirs) {
  Mount m{.type = "overlay",
          .source = "overlay",
          .target = "",
          .options = {"index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l1:/l2:/l3"}};
  EXPECT_EQ(option_value(m, "upperdir"), "/u");
  EXPECT_EQ(option_value(m, "workdir"), "/w");
  EXPECT_EQ(option_value(m, "upper"), "");
  EXPECT_EQ(option_value(m, "missing"), "");
  EXPECT_EQ(overlay_lowerdirs(m), (std::vector<std::string>{"/l1", "/l2", "/l3"}));
  EXPECT_TRUE(
      overlay_lowerdirs(Mount{.type = "bind", .source = "/x", .target = "", .options = {"rbind"}}).empty());
}

TEST_F(MountTest, OverlayWith128LongLowerdirsUsesRelativePaths) {
  // tmpfs below: overlay's upper dir needs a filesystem that supports it.
  std::string base = dir_.sub("base");
  ASSERT_TRUE(mount_all({{.type = "tmpfs", .source = "tmpfs", .target = "", .options = {}}}, base).ok());
  const std::string parent = base + "/a-directory-name-long-enough-to-matter-for-the-page-limit";
  constexpr int kLayers = 128;
  std::string lowerdir = "lowerdir=";
  for (int i = 0; i < kLayers; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "layer-%03d-padding", i);
    std::string dir = parent + "/" + name;
    stdfs::create_directories(dir);
    write_file(dir + "/own-" + std::to_string(i), std::to_string(i));
    write_file(dir + "/shared", std::to_string(i));
    if (i > 0) lowerdir += ":";
    lowerdir += dir;
  }
  stdfs::create_directories(parent + "/upper");
  stdfs::create_directories(parent + "/work");
  Mount overlay{.type = "overlay",
                .source = "overlay",
                .target = "",
                .options = {"workdir=" + parent + "/work", "upperdir=" + parent + "/upper", lowerdir}};
  size_t total = 0;
  for (const auto& o : overlay.options) total += o.size() + 1;
  ASSERT_GT(total, 4096u) << "the test must exceed a page with absolute paths";

  std::string merged = dir_.sub("merged");
  errdefs::Status s = mount_all({overlay}, merged);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(is_mounted(merged));
  for (int i = 0; i < kLayers; ++i)
    EXPECT_EQ(read_file(merged + "/own-" + std::to_string(i)), std::to_string(i));
  EXPECT_EQ(read_file(merged + "/shared"), "0") << "the first lowerdir is the top-most";
  write_file(merged + "/written", "up");
  EXPECT_EQ(read_file(parent + "/upper/written"), "up");
  // The daemon's working directory is untouched by the mount.
  EXPECT_NE(stdfs::current_path().string(), parent);

  ASSERT_TRUE(unmount_all(merged).ok());
  EXPECT_FALSE(is_mounted(merged));
}

TEST_F(MountTest, TempMountUnmountsAndRemoves) {
  std::string source = dir_.sub("src");
  write_file(source + "/f", "temp");
  std::string path;
  {
    auto tm = TempMount::create(dir_.path(),
                                {{.type = "bind", .source = source, .target = "", .options = {"rbind"}}});
    ASSERT_TRUE(tm.ok()) << tm.status().to_string();
    path = tm->path();
    EXPECT_TRUE(is_mounted(path));
    EXPECT_EQ(read_file(path + "/f"), "temp");
  }
  EXPECT_FALSE(is_mounted(path));
  EXPECT_FALSE(stdfs::exists(path));

  auto tm =
      TempMount::create(dir_.path(), {{.type = "tmpfs", .source = "tmpfs", .target = "", .options = {}}});
  ASSERT_TRUE(tm.ok());
  path = tm->path();
  ASSERT_TRUE(tm->release().ok());
  EXPECT_FALSE(stdfs::exists(path));
  EXPECT_TRUE(tm->release().ok());

  auto bad = TempMount::create(dir_.path(),
                               {{.type = "no-such-fs-type", .source = "x", .target = "", .options = {}}});
  EXPECT_FALSE(bad.ok());
  size_t leftovers = 0;
  for (const auto& e : stdfs::directory_iterator(dir_.path()))
    leftovers += e.path().filename().string().starts_with("ctrd-mount-");
  EXPECT_EQ(leftovers, 0u);
}

}  // namespace
}  // namespace ctrd::mount
