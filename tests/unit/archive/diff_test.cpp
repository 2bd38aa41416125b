#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "archive_test_util.h"

namespace ctrd::archive {
namespace {

using testing::Snapshot;
using testing::StringReader;
using testing::StringWriter;
using testing::TarBuilder;
using testing::TempDir;
using Meta = TarBuilder::Meta;

void apply_ok(const std::string& tar, const std::string& root, ApplyOptions options = {}) {
  StringReader reader(tar);
  auto result = apply(reader, root, options);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
}

void write(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

// Names in a tar, in order, as libarchive reads them.
std::vector<std::string> names_in(const std::string& tar) {
  std::vector<std::string> out;
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_open_memory(a, tar.data(), tar.size());
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(e);
    if (archive_entry_hardlink(e) != nullptr) name += " => " + std::string(archive_entry_hardlink(e));
    out.push_back(name);
  }
  archive_read_free(a);
  return out;
}

std::string base_layer() {
  TarBuilder tar;
  tar.dir("etc/", Meta{.mode = 0755})
      .file("etc/hosts", "127.0.0.1 localhost\n")
      .file("etc/motd", "hello\n", Meta{.mode = 0600, .uid = 1000})
      .dir("var/lib/", Meta{.mode = 0700})
      .file("var/lib/db", "db")
      .dir("var/cache/")
      .file("var/cache/a", "a")
      .file("var/cache/b", "b")
      .symlink("lnk", "etc/hosts")
      .file("same", "unchanged");
  return tar.take();
}

TEST(WriteDiff, RemoveModeDiffReproducesTheUpperTree) {
  TempDir lower;
  TempDir upper;
  TempDir target;
  apply_ok(base_layer(), lower.path());
  apply_ok(base_layer(), upper.path());
  apply_ok(base_layer(), target.path());
  ASSERT_EQ(testing::snapshot(lower.path()), testing::snapshot(upper.path()));

  // Changes: content, metadata, removals (file and whole dir), additions,
  // a symlink retargeted, a type change, hard links, xattrs, a device.
  write(upper.sub("etc/hosts"), "10.0.0.1 changed\n");
  ASSERT_EQ(::chmod(upper.sub("etc/motd").c_str(), 0644), 0);
  ASSERT_EQ(::unlink(upper.sub("var/lib/db").c_str()), 0);
  std::filesystem::remove_all(upper.sub("var/cache"));
  ASSERT_EQ(::mkdir(upper.sub("new").c_str(), 0750), 0);
  write(upper.sub("new/file"), std::string(2 * 1024 * 1024 + 3, 'z'));
  ASSERT_EQ(::link(upper.sub("new/file").c_str(), upper.sub("new/file2").c_str()), 0);
  ASSERT_EQ(::unlink(upper.sub("lnk").c_str()), 0);
  ASSERT_EQ(::symlink("etc/motd", upper.sub("lnk").c_str()), 0);
  ASSERT_EQ(::setxattr(upper.sub("etc/motd").c_str(), "user.note", "v", 1, 0), 0);
  ASSERT_EQ(::mknod(upper.sub("etc/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::mkfifo(upper.sub("etc/fifo").c_str(), 0600), 0);

  StringWriter out;
  const errdefs::Status status = write_diff(lower.path(), upper.path(), {}, out);
  ASSERT_TRUE(status.ok()) << status.to_string();

  const std::vector<std::string> names = names_in(out.out);
  const auto has = [&](const std::string& n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  EXPECT_TRUE(has("var/.wh.cache"));     // one whiteout for a removed dir...
  EXPECT_FALSE(has("var/cache/.wh.a"));  // ...not one per child
  EXPECT_TRUE(has("var/lib/.wh.db"));
  EXPECT_TRUE(has("new/file2 => new/file"));
  EXPECT_FALSE(has("same"));  // unchanged entries are left out
  // Parents come before their children.
  const auto index = [&](const std::string& n) {
    return std::find(names.begin(), names.end(), n) - names.begin();
  };
  EXPECT_LT(index("var/"), index("var/lib/.wh.db"));
  EXPECT_LT(index("new/"), index("new/file"));

  apply_ok(out.out, target.path());
  EXPECT_EQ(testing::snapshot(target.path()), testing::snapshot(upper.path()));
  struct stat a {};
  struct stat b {};
  ASSERT_EQ(::lstat(target.sub("new/file").c_str(), &a), 0);
  ASSERT_EQ(::lstat(target.sub("new/file2").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
}

TEST(WriteDiff, WithoutLowerEverythingIsAdded) {
  TempDir upper;
  TempDir target;
  apply_ok(base_layer(), upper.path());
  StringWriter out;
  ASSERT_TRUE(write_diff("", upper.path(), {}, out).ok());
  apply_ok(out.out, target.path());
  EXPECT_EQ(testing::snapshot(target.path()), testing::snapshot(upper.path()));
}

TEST(WriteDiff, OverlayUpperDirRoundTrips) {
  // An overlay upper dir as the kernel leaves it: whiteout devices, opaque dirs.
  TempDir upper;
  ASSERT_EQ(::mkdir(upper.sub("etc").c_str(), 0755), 0);
  write(upper.sub("etc/hosts"), "changed");
  ASSERT_EQ(::mknod(upper.sub("etc/motd").c_str(), S_IFCHR, makedev(0, 0)), 0);
  ASSERT_EQ(::mkdir(upper.sub("var").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(upper.sub("var/cache").c_str(), 0700), 0);
  ASSERT_EQ(::setxattr(upper.sub("var/cache").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  write(upper.sub("var/cache/fresh"), "fresh");

  StringWriter out;
  const errdefs::Status status =
      write_diff("", upper.path(), DiffOptions{.upper_kind = ApplyOptions::Whiteouts::kOverlay}, out);
  ASSERT_TRUE(status.ok()) << status.to_string();
  const std::vector<std::string> names = names_in(out.out);
  EXPECT_EQ(names, (std::vector<std::string>{"etc/", "etc/hosts", "etc/.wh.motd", "var/", "var/cache/",
                                             "var/cache/.wh..wh..opq", "var/cache/fresh"}));

  // Applied as an overlay upper dir, it is the same upper dir again.
  TempDir again;
  apply_ok(out.out, again.path(), ApplyOptions{.whiteouts = ApplyOptions::Whiteouts::kOverlay});
  EXPECT_EQ(testing::snapshot(again.path(), false), testing::snapshot(upper.path(), false));

  // Applied over a whole lower tree, it gives the merged view.
  TempDir merged;
  apply_ok(base_layer(), merged.path());
  apply_ok(out.out, merged.path());
  struct stat st {};
  EXPECT_NE(::lstat(merged.sub("etc/motd").c_str(), &st), 0);
  EXPECT_NE(::lstat(merged.sub("var/cache/a").c_str(), &st), 0);
  EXPECT_EQ(::lstat(merged.sub("var/cache/fresh").c_str(), &st), 0);
  EXPECT_EQ(::lstat(merged.sub("var/lib/db").c_str(), &st), 0);
}

}  // namespace
}  // namespace ctrd::archive
