#include "os/fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "scratch.h"
#include "support/temp_dir.h"

namespace ctrd::os::fs {
namespace {

using ctrd::testing::TempDir;
using snapshots::testing::read_file;
using snapshots::testing::write_file;

struct stat lstat_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

void set_mtime(const std::string& path, time_t sec) {
  const struct timespec times[2] = {{sec, 0}, {sec, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

TEST(FsTest, CopyTreeKeepsEverythingALayerCarries) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown and mknod need root";
  TempDir dir;
  const std::string src = dir.mkdir("src");
  const std::string dst = dir.mkdir("dst");
  ASSERT_EQ(::chmod(src.c_str(), 0751), 0);
  std::filesystem::create_directories(src + "/sub/deeper");
  write_file(src + "/sub/deeper/file", std::string(100000, 'x'));
  write_file(src + "/owned", "owned");
  ASSERT_EQ(::chown((src + "/owned").c_str(), 1234, 5678), 0);
  ASSERT_EQ(::chmod((src + "/owned").c_str(), 04750), 0);
  ASSERT_EQ(::setxattr((src + "/owned").c_str(), "trusted.ctrd", "value", 5, 0), 0);
  ASSERT_EQ(::symlink("sub/deeper/file", (src + "/link").c_str()), 0);
  ASSERT_EQ(::link((src + "/owned").c_str(), (src + "/sub/hardlink").c_str()), 0);
  ASSERT_EQ(::mkfifo((src + "/fifo").c_str(), 0600), 0);
  ASSERT_EQ(::mknod((src + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  set_mtime(src + "/sub/deeper/file", 1000000);
  set_mtime(src + "/link", 2000000);
  set_mtime(src + "/sub", 3000000);

  errdefs::Status s = copy_tree(src, dst);
  ASSERT_TRUE(s.ok()) << s.to_string();

  EXPECT_EQ(read_file(dst + "/sub/deeper/file"), std::string(100000, 'x'));
  EXPECT_EQ(lstat_of(dst).st_mode & 07777, 0751u);
  auto owned = lstat_of(dst + "/owned");
  EXPECT_EQ(owned.st_uid, 1234u);
  EXPECT_EQ(owned.st_gid, 5678u);
  EXPECT_EQ(owned.st_mode & 07777, 04750u) << "set-id bits survive the chown";
  char value[16] = {};
  EXPECT_EQ(::getxattr((dst + "/owned").c_str(), "trusted.ctrd", value, sizeof value), 5);
  EXPECT_STREQ(value, "value");
  EXPECT_EQ(std::filesystem::read_symlink(dst + "/link"), "sub/deeper/file");
  EXPECT_EQ(lstat_of(dst + "/link").st_mtim.tv_sec, 2000000);
  EXPECT_EQ(lstat_of(dst + "/sub/hardlink").st_ino, owned.st_ino) << "hard links stay links";
  EXPECT_EQ(owned.st_nlink, 2u);
  EXPECT_TRUE(S_ISFIFO(lstat_of(dst + "/fifo").st_mode));
  auto null = lstat_of(dst + "/null");
  EXPECT_TRUE(S_ISCHR(null.st_mode));
  EXPECT_EQ(null.st_rdev, makedev(1, 3));
  EXPECT_EQ(lstat_of(dst + "/sub/deeper/file").st_mtim.tv_sec, 1000000);
  EXPECT_EQ(lstat_of(dst + "/sub").st_mtim.tv_sec, 3000000) << "directory times are set after its children";
}

TEST(FsTest, DiskUsageCountsEachInodeOnce) {
  TempDir dir;
  const std::string root = dir.mkdir("root");
  auto empty = disk_usage(root);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->inodes, 1) << "the directory itself";

  write_file(root + "/big", std::string(1 << 20, 'y'));
  ASSERT_EQ(::link((root + "/big").c_str(), (root + "/big-link").c_str()), 0);
  std::filesystem::create_directory(root + "/d");
  auto usage = disk_usage(root);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->inodes, 3);
  EXPECT_GE(usage->size, 1 << 20);
  EXPECT_LT(usage->size, 2 << 20) << "a hard-linked file is counted once";

  EXPECT_EQ(disk_usage(root + "/missing").status().code(), errdefs::Code::kNotFound);
}

TEST(FsTest, RemoveTree) {
  TempDir dir;
  const std::string root = dir.mkdir("gone");
  std::filesystem::create_directories(root + "/a/b");
  write_file(root + "/a/b/f", "x");
  ASSERT_EQ(::symlink("/", (root + "/escape").c_str()), 0);
  ASSERT_TRUE(remove_tree(root).ok());
  EXPECT_FALSE(std::filesystem::exists(root));
  EXPECT_TRUE(std::filesystem::exists("/etc")) << "symlinks are not followed";
  EXPECT_TRUE(remove_tree(root).ok());
}

}  // namespace
}  // namespace ctrd::os::fs
