#include "runtime/v2/bundle.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/v2/task_manager.h"

namespace ctrd::runtime::v2 {
namespace {

namespace fs = std::filesystem;

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ctrd-bundle-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string state() const { return (dir_ / "state").string(); }
  std::string root() const { return (dir_ / "root").string(); }
  fs::path dir_;
};

TEST_F(BundleTest, LaysOutTheBundleAsContainerd) {
  auto b = Bundle::create(state(), root(), "ns1", "c1", R"({"ociVersion":"1.0.2"})");
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->path(), state() + "/ns1/c1");
  EXPECT_TRUE(fs::is_directory(b->file("rootfs")));
  EXPECT_EQ(fs::read_symlink(b->file("work")), fs::path(root() + "/ns1/c1"));
  EXPECT_TRUE(fs::is_directory(root() + "/ns1/c1"));
  std::ifstream spec(b->file("config.json"));
  std::string text((std::istreambuf_iterator<char>(spec)), {});
  EXPECT_EQ(text, R"({"ociVersion":"1.0.2"})");
  struct stat st {};
  ASSERT_EQ(::stat(b->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  ASSERT_TRUE(b->remove().ok());
  EXPECT_FALSE(fs::exists(b->path()));
  EXPECT_FALSE(fs::exists(root() + "/ns1/c1"));
  // Nothing hidden is left either.
  EXPECT_TRUE(fs::is_empty(state() + "/ns1"));
  EXPECT_TRUE(fs::is_empty(root() + "/ns1"));
}

TEST_F(BundleTest, SecondBundleOfTheSameIdIsAlreadyExists) {
  ASSERT_TRUE(Bundle::create(state(), root(), "ns1", "c1", "{}").ok());
  auto again = Bundle::create(state(), root(), "ns1", "c1", "{}");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), errdefs::Code::kAlreadyExists);
}

TEST_F(BundleTest, InvalidIdIsRefusedAndLeavesNothing) {
  for (const std::string id : {"../escape", "a/b", ""}) {
    auto b = Bundle::create(state(), root(), "ns1", id, "{}");
    ASSERT_FALSE(b.ok()) << id;
    EXPECT_EQ(b.status().code(), errdefs::Code::kInvalidArgument) << id;
  }
  EXPECT_FALSE(fs::exists(state() + "/escape"));
}

TEST_F(BundleTest, RemappedRootGroupGetsIntoTheBundle) {
  auto b = Bundle::create(state(), root(), "ns1", "c2",
                          R"({"linux":{"gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}})");
  ASSERT_TRUE(b.ok()) << b.status().message();
  struct stat st {};
  ASSERT_EQ(::stat(b->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 100000u);
  EXPECT_EQ(st.st_mode & 07777, 0710u);
}

TEST_F(BundleTest, BadSpecJsonIsRefused) {
  auto b = Bundle::create(state(), root(), "ns1", "c3", "{not json");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), errdefs::Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(state() + "/ns1/c3"));
}

TEST(ShimBinaryNameTest, FollowsContainerdsRule) {
  EXPECT_EQ(shim_binary_name("io.containerd.runc.v2"), "containerd-shim-runc-v2");
  EXPECT_EQ(shim_binary_name("io.containerd.kata.v2"), "containerd-shim-kata-v2");
  EXPECT_EQ(shim_binary_name("runc"), "");
}

}  // namespace
}  // namespace ctrd::runtime::v2
