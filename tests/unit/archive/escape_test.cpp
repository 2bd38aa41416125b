// Every way a layer could reach outside its root: each case applies to
// <tmp>/root and asserts that <tmp>/outside (and <tmp> itself) is unchanged.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "archive/archive.h"
#include "archive_test_util.h"

namespace ctrd::archive {
namespace {

using testing::Snapshot;
using testing::StringReader;
using testing::TarBuilder;
using testing::TempDir;

class EscapeTest : public ::testing::TestWithParam<ApplyOptions::Whiteouts> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    root_ = tmp_.sub("root");
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(tmp_.sub("outside").c_str(), 0755), 0);
    std::ofstream(tmp_.sub("outside/sentinel")) << "do not touch";
    ASSERT_EQ(::symlink("sentinel", tmp_.sub("outside/link").c_str()), 0);
    before_ = testing::snapshot(tmp_.str() + "/outside");
    ASSERT_EQ(before_.size(), 2u);
  }

  void TearDown() override {
    EXPECT_EQ(testing::snapshot(tmp_.str() + "/outside"), before_) << "something outside the root changed";
    // Nothing new next to the root either.
    Snapshot top;
    for (const auto& [path, desc] : testing::snapshot(tmp_.path(), false))
      if (!path.starts_with("/root/") && !path.starts_with("/outside/")) top[path] = desc;
    EXPECT_EQ(top.size(), 2u) << "entries appeared beside the root";
    struct stat st {};
    EXPECT_NE(::lstat("/sentinel-escape", &st), 0);
    EXPECT_NE(::lstat("/tmp/sentinel-escape", &st), 0);
  }

  errdefs::StatusOr<ApplyResult> apply_tar(const std::string& tar) {
    StringReader reader(tar);
    ApplyOptions options{.whiteouts = GetParam()};
    return apply(reader, root_, options);
  }

  std::string root_;
  TempDir tmp_;
  Snapshot before_;
};

TEST_P(EscapeTest, DotDotNamesStayInside) {
  TarBuilder tar;
  tar.file("../outside/sentinel", "overwritten?")
      .file("../../../../sentinel-escape", "x")
      .file("a/../../outside/new", "x")
      .dir("../outside/")
      .symlink("../outside/link", "/etc/passwd");
  auto result = apply_tar(tar.take());
  // Clamped into the root (as containerd does), or refused: either way inside.
  if (result.ok()) {
    std::ifstream in(root_ + "/outside/sentinel");
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(data, "overwritten?");
  } else {
    EXPECT_EQ(result.status().code(), errdefs::Code::kInvalidArgument);
  }
}

TEST_P(EscapeTest, AbsoluteNamesAreRelativeToRoot) {
  TarBuilder tar;
  tar.file("/tmp/sentinel-escape", "x").file("/sentinel-escape", "x");
  auto result = apply_tar(tar.take());
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  struct stat st {};
  EXPECT_EQ(::lstat((root_ + "/tmp/sentinel-escape").c_str(), &st), 0);
  EXPECT_EQ(::lstat((root_ + "/sentinel-escape").c_str(), &st), 0);
}

TEST_P(EscapeTest, SymlinkToSlashThenAFileThroughIt) {
  const std::string outside = tmp_.str() + "/outside";
  TarBuilder tar;
  tar.symlink("up", "../..")
      .symlink("abs", outside)
      .symlink("slash", "/")
      .file("up/outside/sentinel", "x")
      .file("slash" + outside + "/new2", "x")
      .file("abs/sentinel", "x")
      .file("abs/new", "x")
      .dir("abs/newdir/");
  auto result = apply_tar(tar.take());
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  // Everything landed inside: "abs" and "slash/..." resolve to <root><outside>.
  std::ifstream in(root_ + outside + "/sentinel");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(data, "x");
  struct stat st {};
  EXPECT_EQ(::lstat((root_ + outside + "/new2").c_str(), &st), 0);
  EXPECT_EQ(::lstat((root_ + "/outside/sentinel").c_str(), &st), 0);
}

TEST_P(EscapeTest, SymlinkPlacedByAnEarlierLayer) {
  const std::string outside = tmp_.str() + "/outside";
  ASSERT_TRUE(apply_tar(TarBuilder().symlink("etc", outside).symlink("rel", "../outside").take()).ok());
  TarBuilder second;
  second.file("etc/sentinel", "x")
      .file("rel/sentinel", "x")
      .symlink("etc/link", "/x")
      .hardlink("etc/h", "rel/sentinel");
  auto result = apply_tar(second.take());
  ASSERT_TRUE(result.ok()) << result.status().to_string();
}

TEST_P(EscapeTest, HardLinksToOutsidePaths) {
  const std::string outside = tmp_.str() + "/outside";
  for (const std::string& target : {std::string("../outside/sentinel"), outside + "/sentinel",
                                    std::string("/proc/self/root") + outside + "/sentinel"}) {
    auto result = apply_tar(TarBuilder().hardlink("h", target).take());
    EXPECT_FALSE(result.ok()) << target;  // clamped inside, where there is no such file
  }
  // Through a symlink to the outside dir, placed in the same layer.
  auto through = apply_tar(TarBuilder()
                               .symlink("o", outside)
                               .symlink("p", "../outside")
                               .hardlink("h1", "o/sentinel")
                               .hardlink("h2", "p/sentinel")
                               .take());
  EXPECT_FALSE(through.ok());
  // A hard link to a symlink links the symlink, never its target.
  auto to_link = apply_tar(TarBuilder().symlink("s", outside + "/sentinel").hardlink("h3", "s").take());
  ASSERT_TRUE(to_link.ok()) << to_link.status().to_string();
  struct stat st {};
  ASSERT_EQ(::lstat((root_ + "/h3").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

TEST_P(EscapeTest, WhiteoutsThatPointOutside) {
  const std::string outside = tmp_.str() + "/outside";
  // The links' targets exist inside the root, so the whiteouts have somewhere to go.
  ASSERT_TRUE(apply_tar(TarBuilder()
                            .dir(outside.substr(1) + "/")
                            .dir("outside/")
                            .symlink("o", outside)
                            .symlink("p", "../outside")
                            .take())
                  .ok());
  TarBuilder tar;
  tar.whiteout("../outside/.wh.sentinel")
      .whiteout("o/.wh.sentinel")
      .whiteout("p/.wh.sentinel")
      .whiteout("p/.wh..wh..opq")
      .whiteout("o/.wh..wh..opq")
      .whiteout("../.wh.outside");
  auto result = apply_tar(tar.take());
  EXPECT_TRUE(result.ok()) << result.status().to_string();
  auto dots = apply_tar(TarBuilder().whiteout(".wh..").take());
  EXPECT_FALSE(dots.ok());
}

INSTANTIATE_TEST_SUITE_P(Modes, EscapeTest,
                         ::testing::Values(ApplyOptions::Whiteouts::kRemove,
                                           ApplyOptions::Whiteouts::kOverlay));

}  // namespace
}  // namespace ctrd::archive
