// One behavioural suite, run against every snapshotter.
#include <gtest/gtest.h>
#include <unistd.h>
#include <chrono>
#include <fstream>
#include <thread>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mount/mount.h"
#include "scratch.h"
#include "snapshots/native/native.h"
#include "snapshots/overlay/overlay.h"
#include "support/temp_dir.h"

namespace ctrd::snapshots {
namespace {

using ctrd::testing::TempDir;
using errdefs::Code;
using testing::read_file;
using testing::write_file;
namespace stdfs = std::filesystem;

struct Native {
  static errdefs::StatusOr<std::shared_ptr<DirSnapshotter>> open(const std::string& root) {
    CTRD_ASSIGN_OR_RETURN(auto s, native::NativeSnapshotter::open(root));
    return std::shared_ptr<DirSnapshotter>(std::move(s));
  }
};

struct Overlay {
  static errdefs::StatusOr<std::shared_ptr<DirSnapshotter>> open(const std::string& root) {
    CTRD_RETURN_IF_ERROR(overlay::check_supported(root));
    CTRD_ASSIGN_OR_RETURN(auto s, overlay::OverlaySnapshotter::open(root));
    return std::shared_ptr<DirSnapshotter>(std::move(s));
  }
};

// Mounts a snapshot for the duration of a scope.
class Mounted {
 public:
  Mounted(const std::vector<mount::Mount>& mounts, std::string target) : target_(std::move(target)) {
    stdfs::create_directories(target_);
    status_ = mount::mount_all(mounts, target_);
  }
  ~Mounted() {
    if (status_.ok()) {
      EXPECT_TRUE(mount::unmount_all(target_).ok());
    }
  }
  Mounted(const Mounted&) = delete;
  Mounted& operator=(const Mounted&) = delete;
  const errdefs::Status& status() const { return status_; }
  std::string path(const std::string& rel) const { return target_ + "/" + rel; }

 private:
  std::string target_;
  errdefs::Status status_;
};

bool writable(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  std::fclose(f);
  return true;
}

template <typename T>
class SnapshotterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "snapshotters mount: needs root";
    // A tmpfs of our own: overlayfs needs an upper-dir capable filesystem,
    // and it keeps the tests independent of what /tmp is.
    backing_ = dir_.mkdir("backing");
    ASSERT_TRUE(
        mount::mount_all({{.type = "tmpfs", .source = "tmpfs", .target = "", .options = {}}}, backing_).ok());
    root_ = backing_ + "/root";
    reopen();
  }
  void TearDown() override {
    snapshotter_.reset();
    if (!backing_.empty()) {
      EXPECT_TRUE(mount::unmount_all(backing_).ok());
    }
  }

  void reopen() {
    snapshotter_.reset();
    auto s = T::open(root_);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    snapshotter_ = std::move(*s);
  }

  std::string mount_point(const std::string& name) { return dir_.str() + "/mnt/" + name; }

  // Prepares `key` on `parent`, writes `files` into it and commits it as `name`.
  void make_layer(const std::string& name, const std::string& key, const std::string& parent,
                  const std::vector<std::pair<std::string, std::string>>& files) {
    auto mounts = snapshotter_->prepare(key, parent, {});
    ASSERT_TRUE(mounts.ok()) << mounts.status().to_string();
    {
      Mounted m(*mounts, mount_point(key));
      ASSERT_TRUE(m.status().ok()) << m.status().to_string();
      for (const auto& [file, content] : files) write_file(m.path(file), content);
    }
    ASSERT_TRUE(snapshotter_->commit(name, key, {}).ok());
  }

  size_t entries_in_snapshots_dir() {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : stdfs::directory_iterator(root_ + "/snapshots")) ++n;
    return n;
  }

  TempDir dir_;
  std::string backing_;
  std::string root_;
  std::shared_ptr<DirSnapshotter> snapshotter_;
};

using Implementations = ::testing::Types<Native, Overlay>;
class Names {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, Native> ? "native" : "overlayfs";
  }
};
TYPED_TEST_SUITE(SnapshotterTest, Implementations, Names);

TYPED_TEST(SnapshotterTest, PrepareCommitViewChain) {
  auto& sn = this->snapshotter_;
  auto mounts = sn->prepare("a", "", {{"l", "1"}});
  ASSERT_TRUE(mounts.ok()) << mounts.status().to_string();
  {
    Mounted m(*mounts, this->mount_point("a"));
    ASSERT_TRUE(m.status().ok()) << m.status().to_string();
    write_file(m.path("a.txt"), "from a");
    write_file(m.path("big"), std::string(256 * 1024, 'z'));
  }
  auto usage = sn->usage("a");
  ASSERT_TRUE(usage.ok()) << usage.status().to_string();
  EXPECT_GE(usage->size, 256 * 1024);
  EXPECT_GE(usage->inodes, 3);

  auto again = sn->mounts("a");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *mounts) << "mounts() describes what prepare() returned";

  ASSERT_TRUE(sn->commit("A", "a", {{"c", "1"}}).ok());
  auto info = sn->stat("A");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->kind, Kind::kCommitted);
  EXPECT_EQ(info->labels, (Labels{{"c", "1"}}));
  EXPECT_EQ(sn->stat("a").status().code(), Code::kNotFound);
  EXPECT_EQ(sn->mounts("A").status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(sn->usage("A").ok());

  mounts = sn->prepare("b", "A", {});
  ASSERT_TRUE(mounts.ok()) << mounts.status().to_string();
  {
    Mounted m(*mounts, this->mount_point("b"));
    ASSERT_TRUE(m.status().ok()) << m.status().to_string();
    EXPECT_EQ(read_file(m.path("a.txt")), "from a") << "the parent's content is visible in the child";
    write_file(m.path("b.txt"), "from b");
    write_file(m.path("a.txt"), "changed in b");
  }
  ASSERT_TRUE(sn->commit("B", "b", {}).ok());
  EXPECT_EQ(sn->stat("B")->parent, "A");

  auto view = sn->view("v", "B", {});
  ASSERT_TRUE(view.ok()) << view.status().to_string();
  {
    Mounted m(*view, this->mount_point("v"));
    ASSERT_TRUE(m.status().ok()) << m.status().to_string();
    EXPECT_EQ(read_file(m.path("a.txt")), "changed in b");
    EXPECT_EQ(read_file(m.path("b.txt")), "from b");
    EXPECT_FALSE(writable(m.path("new")));
    EXPECT_EQ(errno, EROFS);
  }
  EXPECT_EQ(sn->stat("v")->kind, Kind::kView);

  auto view_a = sn->view("va", "A", {});
  ASSERT_TRUE(view_a.ok());
  {
    Mounted m(*view_a, this->mount_point("va"));
    ASSERT_TRUE(m.status().ok()) << m.status().to_string();
    EXPECT_EQ(read_file(m.path("a.txt")), "from a") << "a committed layer never changes";
    EXPECT_FALSE(stdfs::exists(m.path("b.txt")));
    EXPECT_FALSE(writable(m.path("new")));
  }

  auto top = sn->prepare("c", "B", {});
  ASSERT_TRUE(top.ok());
  Mounted m(*top, this->mount_point("c"));
  ASSERT_TRUE(m.status().ok()) << m.status().to_string();
  EXPECT_EQ(read_file(m.path("b.txt")), "from b");
  EXPECT_EQ(read_file(m.path("big")), std::string(256 * 1024, 'z'));
  EXPECT_TRUE(writable(m.path("c.txt")));
}

TYPED_TEST(SnapshotterTest, ErrorsNameTheProblem) {
  auto& sn = this->snapshotter_;
  ASSERT_TRUE(sn->prepare("a", "", {}).ok());
  EXPECT_EQ(sn->prepare("a", "", {}).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(sn->prepare("x", "missing", {}).status().code(), Code::kNotFound);
  EXPECT_EQ(sn->prepare("x", "a", {}).status().code(), Code::kInvalidArgument) << "parent not committed";
  EXPECT_EQ(sn->view("x", "a", {}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(sn->stat("x").status().code(), Code::kNotFound) << "failed calls leave no record";
  ASSERT_TRUE(sn->view("v", "", {}).ok());
  EXPECT_EQ(sn->commit("V", "v", {}).code(), Code::kFailedPrecondition) << "a view cannot be committed";
  ASSERT_TRUE(sn->commit("A", "a", {}).ok());
  ASSERT_TRUE(sn->prepare("b", "A", {}).ok());
  EXPECT_EQ(sn->commit("A", "b", {}).code(), Code::kAlreadyExists);
  EXPECT_EQ(sn->remove("A").code(), Code::kFailedPrecondition) << "A has a child";
  EXPECT_EQ(sn->remove("missing").code(), Code::kNotFound);
  EXPECT_EQ(sn->usage("missing").status().code(), Code::kNotFound);
  EXPECT_EQ(sn->mounts("missing").status().code(), Code::kNotFound);
  // Only the successful snapshots have directories: A, b, v.
  EXPECT_EQ(this->entries_in_snapshots_dir(), 3u);
}

TYPED_TEST(SnapshotterTest, RemoveDeletesDirectories) {
  auto& sn = this->snapshotter_;
  ASSERT_NO_FATAL_FAILURE(this->make_layer("A", "a", "", {{"f", "1"}}));
  ASSERT_NO_FATAL_FAILURE(this->make_layer("B", "b", "A", {{"g", "2"}}));
  ASSERT_TRUE(sn->view("v", "B", {}).ok());
  EXPECT_EQ(this->entries_in_snapshots_dir(), 3u);

  ASSERT_TRUE(sn->remove("v").ok());
  ASSERT_TRUE(sn->remove("B").ok());
  ASSERT_TRUE(sn->remove("A").ok());
  EXPECT_EQ(this->entries_in_snapshots_dir(), 0u);
  std::vector<std::string> left;
  ASSERT_TRUE(sn->walk(
                    [&](const Info& i) {
                      left.push_back(i.name);
                      return errdefs::Status::Ok();
                    },
                    {})
                  .ok());
  EXPECT_TRUE(left.empty());
}

TYPED_TEST(SnapshotterTest, CleanupRemovesStrayDirectories) {
  auto& sn = this->snapshotter_;
  ASSERT_NO_FATAL_FAILURE(this->make_layer("A", "a", "", {{"kept", "yes"}}));
  const std::string snaps = this->root_ + "/snapshots";
  for (const char* stray : {"/new-abc123", "/rm-7", "/999", "/0"}) {
    stdfs::create_directories(snaps + stray + "/inner");
    write_file(snaps + stray + "/inner/file", "junk");
  }
  EXPECT_EQ(this->entries_in_snapshots_dir(), 5u);
  ASSERT_TRUE(sn->cleanup().ok());
  EXPECT_EQ(this->entries_in_snapshots_dir(), 1u);

  auto view = sn->view("v", "A", {});
  ASSERT_TRUE(view.ok());
  Mounted m(*view, this->mount_point("v"));
  ASSERT_TRUE(m.status().ok()) << m.status().to_string();
  EXPECT_EQ(read_file(m.path("kept")), "yes");
}

TYPED_TEST(SnapshotterTest, SurvivesReopen) {
  ASSERT_NO_FATAL_FAILURE(this->make_layer("A", "a", "", {{"f", "persisted"}}));
  ASSERT_TRUE(this->snapshotter_->prepare("b", "A", {{"k", "v"}}).ok());
  ASSERT_NO_FATAL_FAILURE(this->reopen());
  auto& sn = this->snapshotter_;
  auto info = sn->stat("b");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->parent, "A");
  EXPECT_EQ(info->labels, (Labels{{"k", "v"}}));
  auto mounts = sn->mounts("b");
  ASSERT_TRUE(mounts.ok());
  Mounted m(*mounts, this->mount_point("b"));
  ASSERT_TRUE(m.status().ok()) << m.status().to_string();
  EXPECT_EQ(read_file(m.path("f")), "persisted");
}

TYPED_TEST(SnapshotterTest, UpdateAndWalk) {
  auto& sn = this->snapshotter_;
  ASSERT_NO_FATAL_FAILURE(this->make_layer("A", "a", "", {}));
  ASSERT_TRUE(sn->prepare("b", "A", {{"role", "work"}}).ok());
  ASSERT_TRUE(sn->view("v", "A", {}).ok());

  auto updated = sn->update(Info{.name = "v", .labels = {{"role", "look"}}}, {"labels.role"});
  ASSERT_TRUE(updated.ok()) << updated.status().to_string();
  EXPECT_EQ(updated->labels.at("role"), "look");

  std::vector<std::string> names;
  auto collect = [&](const Info& i) {
    names.push_back(i.name);
    return errdefs::Status::Ok();
  };
  ASSERT_TRUE(sn->walk(collect, {"parent==A,labels.role==look"}).ok());
  EXPECT_EQ(names, (std::vector<std::string>{"v"}));
  names.clear();
  ASSERT_TRUE(sn->walk(collect, {"kind==committed", "kind==active"}).ok());
  EXPECT_EQ(names, (std::vector<std::string>{"A", "b"}));
}

TEST(OverlaySnapshotter, MountShapes) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir dir;
  std::string backing = dir.mkdir("backing");
  ASSERT_TRUE(
      mount::mount_all({{.type = "tmpfs", .source = "tmpfs", .target = "", .options = {}}}, backing).ok());
  struct Unmount {
    std::string path;
    ~Unmount() { (void)mount::unmount_all(path); }
  } unmount{backing};
  {
    auto opened = overlay::OverlaySnapshotter::open(backing + "/root", {.upperdir_label = true});
    ASSERT_TRUE(opened.ok());
    auto& sn = *opened;
    auto a = sn->prepare("a", "", {});
    ASSERT_TRUE(a.ok());
    ASSERT_EQ(a->size(), 1u);
    EXPECT_EQ((*a)[0].type, "bind");
    EXPECT_EQ((*a)[0].options, (std::vector<std::string>{"rbind", "rw"}));
    auto label = sn->stat("a")->labels.at(std::string(overlay::kUpperdirLabel));
    EXPECT_EQ(label, (*a)[0].source);
    ASSERT_TRUE(sn->commit("A", "a", {}).ok());
    ASSERT_TRUE(sn->prepare("b", "A", {}).ok());
    ASSERT_TRUE(sn->commit("B", "b", {}).ok());

    auto view1 = sn->view("v1", "A", {});
    ASSERT_TRUE(view1.ok());
    EXPECT_EQ((*view1)[0].type, "bind") << "one lower dir: overlayfs cannot mount it alone";
    EXPECT_EQ((*view1)[0].source, label);
    EXPECT_EQ((*view1)[0].options, (std::vector<std::string>{"rbind", "ro"}));

    auto view2 = sn->view("v2", "B", {});
    ASSERT_TRUE(view2.ok());
    EXPECT_EQ((*view2)[0].type, "overlay");
    EXPECT_EQ(mount::option_value((*view2)[0], "upperdir"), "");
    auto lowers = mount::overlay_lowerdirs((*view2)[0]);
    ASSERT_EQ(lowers.size(), 2u);
    EXPECT_EQ(lowers[1], label) << "top-most first";

    auto c = sn->prepare("c", "B", {});
    ASSERT_TRUE(c.ok());
    EXPECT_EQ((*c)[0].type, "overlay");
    EXPECT_EQ(mount::option_value((*c)[0], "upperdir"),
              sn->stat("c")->labels.at(std::string(overlay::kUpperdirLabel)));
    EXPECT_NE(mount::option_value((*c)[0], "workdir"), "");
    EXPECT_EQ(mount::overlay_lowerdirs((*c)[0]), lowers);
  }
}

TEST(OverlaySnapshotter, CheckSupportedSucceedsOnTmpfsAndCleansUp) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir dir;
  std::string backing = dir.mkdir("backing");
  ASSERT_TRUE(
      mount::mount_all({{.type = "tmpfs", .source = "tmpfs", .target = "", .options = {}}}, backing).ok());
  errdefs::Status s = overlay::check_supported(backing);
  EXPECT_TRUE(s.ok()) << s.to_string();
  std::ifstream mounts("/proc/self/mounts");
  for (std::string line; std::getline(mounts, line);) {
    EXPECT_EQ(line.find(backing + "/"), std::string::npos) << "the probe mounts nothing: " << line;
  }
  // The probe's directories go in the background; bounded wait for them.
  auto only_marker = [&] {
    for (const auto& e : stdfs::directory_iterator(backing)) {
      if (e.path().filename() != "overlay-supported") return false;
    }
    return true;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!only_marker() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_TRUE(only_marker()) << "the probe removes its directories";
  EXPECT_TRUE(stdfs::exists(backing + "/overlay-supported"));
  // Known to work on this kernel and filesystem: the next start does not probe.
  EXPECT_TRUE(overlay::check_supported(backing).ok());
  EXPECT_TRUE(only_marker());
  EXPECT_TRUE(mount::unmount_all(backing).ok());
}

}  // namespace
}  // namespace ctrd::snapshots
