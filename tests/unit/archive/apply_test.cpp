#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>

#include "archive/archive.h"
#include "archive_test_util.h"

namespace ctrd::archive {
namespace {

using testing::Snapshot;
using testing::StringReader;
using testing::TarBuilder;
using testing::TempDir;
using Meta = TarBuilder::Meta;

errdefs::StatusOr<ApplyResult> apply_tar(const std::string& tar, const std::string& root,
                                         ApplyOptions options = {}, size_t chunk = size_t{1} << 30) {
  StringReader reader(tar, chunk);
  return apply(reader, root, options);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct stat lstat_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string xattr_of(const std::string& path, const char* name) {
  char value[256];
  const ssize_t n = ::lgetxattr(path.c_str(), name, value, sizeof(value));
  return n < 0 ? std::string("<none>") : std::string(value, static_cast<size_t>(n));
}

class ApplyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(tmp_.path().empty()); }
  std::string root() const { return tmp_.path(); }
  std::string at(std::string_view rel) const { return tmp_.sub(rel); }
  TempDir tmp_;
};

TEST_F(ApplyTest, CreatesEveryKindWithItsMetadata) {
  const std::string big(3 * 1024 * 1024 + 5, 'x');
  TarBuilder tar;
  tar.dir("etc/", Meta{.mode = 0750, .uid = 10, .gid = 20, .mtime = 1600000000})
      .file("etc/passwd", "root:x:0:0\n", Meta{.mode = 0640, .uid = 1, .gid = 2, .mtime = 1500000000})
      .file("./usr/bin/su", "suid", Meta{.mode = 04755, .uid = 0, .gid = 0})
      .file("big", big)
      .symlink("etc/link", "../usr/bin/su", Meta{.mode = 0777, .uid = 5, .gid = 6, .mtime = 1400000000})
      .hardlink("etc/passwd-", "etc/passwd", Meta{.mode = 0640, .uid = 1, .gid = 2, .mtime = 1500000000})
      .node("dev/null", AE_IFCHR, 1, 3, Meta{.mode = 0666})
      .node("dev/loop", AE_IFBLK, 7, 0, Meta{.mode = 0660})
      .node("run/fifo", AE_IFIFO, 0, 0, Meta{.mode = 0600})
      .file("x/attr", "a",
            Meta{.xattrs = {
                     {"user.test", "value"},
                     {"security.capability",
                      std::string(
                          "\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                          20)}}});
  auto result = apply_tar(tar.take(), root(), {}, 1000);
  ASSERT_TRUE(result.ok()) << result.status().to_string();

  struct stat st = lstat_of(at("etc"));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_uid, 10u);
  EXPECT_EQ(st.st_gid, 20u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);  // set after its children were written

  st = lstat_of(at("etc/passwd"));
  EXPECT_EQ(read_file(at("etc/passwd")), "root:x:0:0\n");
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1u);
  EXPECT_EQ(st.st_gid, 2u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(lstat_of(at("etc/passwd-")).st_ino, st.st_ino);

  st = lstat_of(at("usr/bin/su"));
  EXPECT_EQ(st.st_mode & 07777, 04755u);                  // setuid survives the chown
  EXPECT_EQ(lstat_of(at("usr")).st_mode & 07777, 0755u);  // missing parents are 0755

  EXPECT_EQ(read_file(at("big")), big);

  st = lstat_of(at("etc/link"));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_uid, 5u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1400000000);
  char target[64] = {};
  ASSERT_GT(::readlink(at("etc/link").c_str(), target, sizeof(target)), 0);
  EXPECT_STREQ(target, "../usr/bin/su");

  st = lstat_of(at("dev/null"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  st = lstat_of(at("dev/loop"));
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(7, 0));
  EXPECT_TRUE(S_ISFIFO(lstat_of(at("run/fifo")).st_mode));

  EXPECT_EQ(xattr_of(at("x/attr"), "user.test"), "value");
  EXPECT_EQ(xattr_of(at("x/attr"), "security.capability").size(), 20u);
}

TEST_F(ApplyTest, DigestAndSizeCoverTheWholeBlob) {
  TarBuilder tar;
  tar.file("a", "hello");
  // Bytes after the end-of-archive marker are part of the blob too.
  const std::string blob = tar.take() + std::string(4096, '\0') + "trailing";
  auto result = apply_tar(blob, root(), {}, 333);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result->digest, testing::sha256_hex(blob));
  EXPECT_EQ(result->size, static_cast<int64_t>(blob.size()));
}

TEST_F(ApplyTest, EmptyBlobIsAnEmptyLayer) {
  auto result = apply_tar("", root());
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result->size, 0);
  EXPECT_EQ(result->digest, testing::sha256_hex(""));
}

TEST_F(ApplyTest, BrokenTarIsDataLoss) {
  auto garbage = apply_tar(std::string(1024, 'z'), root());
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().code(), errdefs::Code::kDataLoss) << garbage.status().to_string();

  TarBuilder tar;
  tar.file("a", std::string(100000, 'q'));
  const std::string whole = tar.take();
  auto truncated = apply_tar(whole.substr(0, 30000), root());
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), errdefs::Code::kDataLoss) << truncated.status().to_string();
}

TEST_F(ApplyTest, NamesAreNormalised) {
  TarBuilder tar;
  tar.file("./a//b", "1").file("/abs/file", "2").dir("./").file("c/./d/../e", "3").dir("x//y/");
  auto result = apply_tar(tar.take(), root());
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(read_file(at("a/b")), "1");
  EXPECT_EQ(read_file(at("abs/file")), "2");
  EXPECT_EQ(read_file(at("c/e")), "3");
  EXPECT_FALSE(exists(at("c/d")));
  EXPECT_TRUE(std::filesystem::is_directory(at("x/y")));
}

TEST_F(ApplyTest, ReplacesAsTarDoes) {
  TarBuilder first;
  first.dir("d/").file("d/keep", "k").dir("gone/").file("gone/x", "x").file("f", "old").symlink("s", "f");
  ASSERT_TRUE(apply_tar(first.take(), root()).ok());

  TarBuilder second;
  second
      .dir("d/", Meta{.mode = 0700})  // a dir over a dir merges, taking the new metadata
      .file("d/new", "n")
      .file("gone", "now a file")  // a file over a dir replaces the tree
      .file("f", "new")
      .file("s", "not a link any more")  // a file over a symlink replaces the link, not its target
      .dir("f2/")
      .symlink("f2", "d");  // a symlink over a dir
  auto result = apply_tar(second.take(), root());
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(read_file(at("d/keep")), "k");
  EXPECT_EQ(read_file(at("d/new")), "n");
  EXPECT_EQ(lstat_of(at("d")).st_mode & 07777, 0700u);
  EXPECT_EQ(read_file(at("gone")), "now a file");
  EXPECT_EQ(read_file(at("f")), "new");
  EXPECT_TRUE(S_ISREG(lstat_of(at("s")).st_mode));
  EXPECT_EQ(read_file(at("f")), "new");
  EXPECT_TRUE(S_ISLNK(lstat_of(at("f2")).st_mode));
}

TEST_F(ApplyTest, WhiteoutsRemoveInRemoveMode) {
  TarBuilder lower;
  lower.file("a/file", "1").file("a/other", "2").dir("tree/").file("tree/deep/x", "x").file("keep", "k");
  lower.dir("opq/").file("opq/old", "o").dir("opq/sub/").file("opq/sub/old", "o");
  ASSERT_TRUE(apply_tar(lower.take(), root()).ok());

  TarBuilder layer;
  layer.whiteout("a/.wh.file")
      .whiteout(".wh.tree")
      .whiteout(".wh.missing")  // nothing to remove is fine
      .dir("opq/")
      .file("opq/new", "n")
      .dir("opq/sub/")
      .whiteout("opq/.wh..wh..opq");  // after the entries it must keep
  auto result = apply_tar(layer.take(), root());
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_FALSE(exists(at("a/file")));
  EXPECT_TRUE(exists(at("a/other")));
  EXPECT_FALSE(exists(at("tree")));
  EXPECT_TRUE(exists(at("keep")));
  EXPECT_FALSE(exists(at("opq/old")));
  EXPECT_EQ(read_file(at("opq/new")), "n");
  EXPECT_TRUE(exists(at("opq/sub")));
  EXPECT_FALSE(exists(at("opq/sub/old")));  // the layer wrote the dir, not its old content
  EXPECT_FALSE(exists(at("opq/.wh..wh..opq")));
  EXPECT_FALSE(exists(at("a/.wh.file")));
}

TEST_F(ApplyTest, WhiteoutsBecomeOverlayMarkersInOverlayMode) {
  TempDir lower;
  ASSERT_TRUE(
      apply_tar(TarBuilder().dir("d/", Meta{.mode = 0711, .uid = 7, .gid = 8}).file("d/x", "x").take(),
                lower.path())
          .ok());
  ASSERT_TRUE(::mkdir(at("opq").c_str(), 0755) == 0);
  ASSERT_TRUE(::mkdir(at("replaced").c_str(), 0755) == 0);

  TarBuilder layer;
  layer.whiteout("d/.wh.x").whiteout(".wh.replaced").whiteout("opq/.wh..wh..opq").file("opq/y", "y");
  ApplyOptions options{.whiteouts = ApplyOptions::Whiteouts::kOverlay, .lowers = {lower.path()}};
  auto result = apply_tar(layer.take(), root(), options);
  ASSERT_TRUE(result.ok()) << result.status().to_string();

  struct stat st = lstat_of(at("d/x"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  st = lstat_of(at("replaced"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(xattr_of(at("opq"), "trusted.overlay.opaque"), "y");
  EXPECT_EQ(read_file(at("opq/y")), "y");
  EXPECT_FALSE(exists(at("opq/.wh..wh..opq")));
  // "d" was created only as a parent: it takes the lower dir's owner and mode.
  st = lstat_of(at("d"));
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  EXPECT_EQ(st.st_uid, 7u);
  EXPECT_EQ(st.st_gid, 8u);
}

TEST_F(ApplyTest, HardLinkToALowerLayerIsCopiedUp) {
  TempDir top;
  TempDir bottom;
  ASSERT_TRUE(apply_tar(TarBuilder().file("bin/tool", "from bottom", Meta{.mode = 0755, .uid = 3}).take(),
                        bottom.path())
                  .ok());
  ASSERT_TRUE(
      apply_tar(TarBuilder().file("bin/tool", "from top", Meta{.mode = 0700, .uid = 4}).take(), top.path())
          .ok());

  TarBuilder layer;
  layer.hardlink("bin/alias", "bin/tool", Meta{.mode = 0700, .uid = 4});
  ApplyOptions options{.whiteouts = ApplyOptions::Whiteouts::kOverlay, .lowers = {top.path(), bottom.path()}};
  auto result = apply_tar(layer.take(), root(), options);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(read_file(at("bin/tool")), "from top");  // top-most lower wins
  EXPECT_EQ(lstat_of(at("bin/alias")).st_ino, lstat_of(at("bin/tool")).st_ino);
  EXPECT_EQ(lstat_of(at("bin/tool")).st_uid, 4u);
  EXPECT_EQ(read_file(top.sub("bin/tool")), "from top");  // the lower is left alone
  EXPECT_EQ(lstat_of(top.sub("bin/tool")).st_nlink, 1u);

  // Without lowers a dangling hard link is an error naming the target.
  TempDir other;
  auto missing = apply_tar(TarBuilder().hardlink("a", "nowhere").take(), other.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), errdefs::Code::kNotFound);
  EXPECT_NE(missing.status().message().find("nowhere"), std::string::npos) << missing.status().message();
}

TEST_F(ApplyTest, ApplyingTheSameLayerTwiceGivesTheSameTree) {
  auto make = [] {
    TarBuilder tar;
    tar.dir("d/").file("d/f", "content").symlink("d/l", "f").hardlink("d/h", "d/f").node("p", AE_IFIFO, 0, 0);
    return tar.take();
  };
  ASSERT_TRUE(apply_tar(make(), root()).ok());
  const Snapshot once = testing::snapshot(root());
  auto again = apply_tar(make(), root());
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(testing::snapshot(root()), once);
}

}  // namespace
}  // namespace ctrd::archive
