// unpack end to end on real parts: an LMDB metadata store over a local
// content store, the native and overlay snapshotters, the walking differ. The
// image is tools/mkimage.py's busybox plus one layer of our own, imported
// into the content store blob by blob as `ctr images import` would.
#include "unpack/unpack.h"
#include "support/digest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "content/local/store.h"
#include "diff/walking.h"
#include "images/images.h"
#include "metadata/db.h"
#include "metadata/snapshotter.h"
#include "mount/mount.h"
#include "snapshots/native/native.h"
#include "snapshots/overlay/overlay.h"
#include "support/temp_dir.h"

namespace ctrd::unpack {
namespace {

namespace stdfs = std::filesystem;
using ctrd::testing::TempDir;
using errdefs::Status;
using errdefs::StatusOr;
using nlohmann::json;

constexpr std::string_view kNs = "k8s.io";
constexpr std::string_view kHello = "hello from the top layer\n";

using ctrd::testing::sha256_digest;

std::string read_file(const stdfs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const stdfs::path& path, std::string_view data) {
  stdfs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

// The OCI layout mkimage.py writes for busybox plus a layer holding
// /etc/hello, unpacked once for all tests (making it runs Python and gzip).
class ImageLayout {
 public:
  static const ImageLayout& get() {
    static ImageLayout layout;
    return layout;
  }
  std::string error;  // why the layout could not be made
  stdfs::path blobs;  // blobs/sha256
  content::Descriptor manifest;

 private:
  ImageLayout() {
    const stdfs::path layer = dir_.path() / "top";
    write_file(layer / "etc" / "hello", kHello);
    const std::string tarball = dir_.sub("image.tar");
    const stdfs::path layout = dir_.mkdir("layout");
    const std::string command = std::string("python3 ") + CTRD_MKIMAGE_PATH + " --busybox " + tarball +
                                " docker.io/library/unpack-test:1 " + layer.string() +
                                " >/dev/null && tar -xf " + tarball + " -C " + layout.string();
    if (std::system(command.c_str()) != 0) {
      error = "failed: " + command;
      return;
    }
    blobs = layout / "blobs" / "sha256";
    const json index = json::parse(read_file(layout / "index.json"));
    const json& entry = index.at("manifests").at(0);
    manifest = {entry.at("mediaType"), entry.at("digest"), entry.at("size"), {}};
  }
  TempDir dir_;
};

Status put_blob(content::Store& store, std::string_view data) {
  const std::string digest = sha256_digest(data);
  const auto size = static_cast<int64_t>(data.size());
  auto writer = store.writer({.ref = "put-" + digest, .total = size, .expected = digest});
  if (errdefs::IsAlreadyExists(writer.status())) return Status::Ok();
  CTRD_RETURN_IF_ERROR(writer.status());
  if (auto status = (*writer)->status(); status.ok() && status->offset == size) {
    // The blob store already has it; commit records it in the namespace.
  } else {
    CTRD_RETURN_IF_ERROR((*writer)->write(data));
  }
  Status committed = (*writer)->commit(size, digest, {});
  return errdefs::IsAlreadyExists(committed) ? Status::Ok() : committed;
}

// One snapshotter per test run: "native", or "overlayfs" on a tmpfs (overlay
// cannot sit on the overlay /tmp of a container) when the kernel allows it.
class UnpackTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const ImageLayout& layout = ImageLayout::get();
    ASSERT_TRUE(layout.error.empty()) << layout.error;

    std::shared_ptr<snapshots::Snapshotter> backend;
    if (GetParam() == "native") {
      auto native = snapshots::native::NativeSnapshotter::open(dir_.sub("native"));
      ASSERT_TRUE(native.ok()) << native.status().to_string();
      backend = *native;
    } else {
      if (::geteuid() != 0) GTEST_SKIP() << "overlay needs root";
      const std::string root = dir_.mkdir("overlay");
      ASSERT_TRUE(
          mount::mount_all({{.type = "tmpfs", .source = "tmpfs", .target = "", .options = {}}}, root).ok());
      if (Status supported = snapshots::overlay::check_supported(root); !supported.ok()) {
        GTEST_SKIP() << "overlay unsupported here: " << supported.to_string();
      }
      auto overlay = snapshots::overlay::OverlaySnapshotter::open(root);
      ASSERT_TRUE(overlay.ok()) << overlay.status().to_string();
      backend = *overlay;
    }
    auto blobs = content::local::open_store(dir_.sub("content"));
    ASSERT_TRUE(blobs.ok()) << blobs.status().to_string();
    auto db = metadata::DB::open(dir_.sub("meta"), *blobs, {{GetParam(), backend}});
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    db_ = *db;
    differ_ = std::make_shared<diff::WalkingDiffer>(db_, dir_.mkdir("scratch"));
    store_ = db_->content_store(std::string(kNs));
    for (const auto& blob : stdfs::directory_iterator(layout.blobs)) {
      Status put = put_blob(*store_, read_file(blob.path()));
      ASSERT_TRUE(put.ok()) << put.to_string();
    }
    auto sn = db_->snapshotter(std::string(kNs), GetParam());
    ASSERT_TRUE(sn.ok()) << sn.status().to_string();
    sn_ = *sn;
  }

  UnpackContext context(std::string lease = "") const {
    return {db_, std::string(kNs), GetParam(), differ_, std::move(lease)};
  }

  images::ResolvedImage resolved(const content::Descriptor& target) const {
    images::StoreProvider provider(*store_);
    auto image = images::resolve(provider, target, images::host_platform());
    EXPECT_TRUE(image.ok()) << image.status().to_string();
    return image.ok() ? *image : images::ResolvedImage{};
  }

  std::vector<snapshots::Info> all_snapshots() const {
    std::vector<snapshots::Info> out;
    Status walked = sn_->walk(
        [&](const snapshots::Info& info) {
          out.push_back(info);
          return Status::Ok();
        },
        {});
    EXPECT_TRUE(walked.ok()) << walked.to_string();
    return out;
  }

  // The contents of `path` in a read-only view of committed snapshot `name`,
  // or nullopt when the file is absent.
  std::optional<std::string> file_in_view(const std::string& name, const std::string& path) {
    const std::string key = "check-view-" + std::to_string(views_++);
    auto mounts = sn_->view(key, name, {});
    EXPECT_TRUE(mounts.ok()) << mounts.status().to_string();
    if (!mounts.ok()) return std::nullopt;
    std::optional<std::string> contents;
    {
      auto mounted = mount::TempMount::create(dir_.mkdir("mnt"), *mounts);
      EXPECT_TRUE(mounted.ok()) << mounted.status().to_string();
      if (mounted.ok() && stdfs::exists(stdfs::path(mounted->path()) / path.substr(1))) {
        contents = read_file(stdfs::path(mounted->path()) / path.substr(1));
      }
    }
    EXPECT_TRUE(sn_->remove(key).ok());
    return contents;
  }

  // The image with its top diff id replaced: a config and manifest of its own.
  content::Descriptor image_with_wrong_top_diff_id(const std::string& wrong) {
    const ImageLayout& layout = ImageLayout::get();
    json manifest = json::parse(read_file(layout.blobs / layout.manifest.digest.substr(7)));
    json config = json::parse(
        read_file(layout.blobs / manifest.at("config").at("digest").get<std::string>().substr(7)));
    config["rootfs"]["diff_ids"].back() = wrong;
    const std::string config_bytes = config.dump();
    manifest["config"]["digest"] = sha256_digest(config_bytes);
    manifest["config"]["size"] = config_bytes.size();
    const std::string manifest_bytes = manifest.dump();
    EXPECT_TRUE(put_blob(*store_, config_bytes).ok());
    EXPECT_TRUE(put_blob(*store_, manifest_bytes).ok());
    return {layout.manifest.media_type,
            sha256_digest(manifest_bytes),
            static_cast<int64_t>(manifest_bytes.size()),
            {}};
  }

  TempDir dir_;  // first member: removed (mounts below it detached) after everything else
  std::shared_ptr<metadata::DB> db_;
  std::shared_ptr<diff::WalkingDiffer> differ_;
  std::shared_ptr<content::Store> store_;
  std::shared_ptr<snapshots::Snapshotter> sn_;
  int views_ = 0;
};

TEST_P(UnpackTest, LayersBecomeCommittedSnapshotsNamedByChainId) {
  const content::Descriptor& target = ImageLayout::get().manifest;
  auto top = unpack(context(), target, images::host_platform());
  ASSERT_TRUE(top.ok()) << top.status().to_string();

  const images::ResolvedImage image = resolved(target);
  ASSERT_EQ(image.diff_ids.size(), 2u) << "busybox and the /etc/hello layer";
  EXPECT_EQ(*top, chain_id(image.diff_ids));
  std::vector<std::string> chain;
  std::string parent;
  for (const std::string& diff_id : image.diff_ids) {
    chain.push_back(diff_id);
    const std::string name = chain_id(chain);
    auto info = sn_->stat(name);
    ASSERT_TRUE(info.ok()) << name << ": " << info.status().to_string();
    EXPECT_EQ(info->kind, snapshots::Kind::kCommitted);
    EXPECT_EQ(info->parent, parent);
    EXPECT_EQ(info->labels[std::string(metadata::kLabelSnapshotRef)], name);
    parent = name;
  }
  EXPECT_EQ(all_snapshots().size(), 2u) << "no extraction snapshot is left behind";

  auto busybox = file_in_view(*top, "/bin/busybox");
  ASSERT_TRUE(busybox.has_value()) << "/bin/busybox in the top snapshot";
  EXPECT_GT(busybox->size(), 100000u);
  EXPECT_EQ(file_in_view(*top, "/etc/hello"), std::string(kHello));
  EXPECT_EQ(file_in_view(chain_id({image.diff_ids[0]}), "/etc/hello"), std::nullopt)
      << "not in the bottom layer";

  // The labels that keep the snapshots while the image is kept.
  auto config = store_->info(image.config.digest);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->labels["containerd.io/gc.ref.snapshot." + GetParam()], *top);
  for (size_t i = 0; i < image.layers.size(); ++i) {
    auto layer = store_->info(image.layers[i].digest);
    ASSERT_TRUE(layer.ok());
    EXPECT_EQ(layer->labels["containerd.io/uncompressed"], image.diff_ids[i]);
  }
  auto leases = db_->leases(std::string(kNs)).list();
  ASSERT_TRUE(leases.ok());
  EXPECT_TRUE(leases->empty()) << "the temporary lease is removed";
}

TEST_P(UnpackTest, UnpackingTwiceChangesNothing) {
  const content::Descriptor& target = ImageLayout::get().manifest;
  auto first = unpack(context(), target, images::host_platform());
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  const std::vector<snapshots::Info> before = all_snapshots();

  auto second = unpack(context(), target, images::host_platform());
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_EQ(*second, *first);
  const std::vector<snapshots::Info> after = all_snapshots();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].name, before[i].name);
    EXPECT_EQ(after[i].created_at, before[i].created_at) << after[i].name << " was not made again";
  }
}

TEST_P(UnpackTest, WrongDiffIdIsDataLossAndLeavesNoSnapshotForIt) {
  const std::string wrong = sha256_digest("not what the layer holds");
  const content::Descriptor target = image_with_wrong_top_diff_id(wrong);
  auto top = unpack(context(), target, images::host_platform());
  ASSERT_FALSE(top.ok());
  EXPECT_EQ(top.status().code(), errdefs::Code::kDataLoss) << top.status().to_string();

  const images::ResolvedImage original = resolved(ImageLayout::get().manifest);
  ASSERT_EQ(original.diff_ids.size(), 2u);
  EXPECT_NE(top.status().message().find(wrong), std::string::npos) << top.status().to_string();
  EXPECT_NE(top.status().message().find(original.diff_ids[1]), std::string::npos)
      << "names the digest the layer applied to: " << top.status().to_string();

  const images::ResolvedImage image = resolved(target);
  EXPECT_TRUE(errdefs::IsNotFound(sn_->stat(chain_id(image.diff_ids)).status()));
  const std::vector<snapshots::Info> left = all_snapshots();
  ASSERT_EQ(left.size(), 1u) << "only the good bottom layer, no extraction snapshot";
  EXPECT_EQ(left[0].name, chain_id({image.diff_ids[0]}));
  EXPECT_EQ(left[0].kind, snapshots::Kind::kCommitted);
  auto config = store_->info(image.config.digest);
  ASSERT_TRUE(config.ok());
  EXPECT_FALSE(config->labels.contains("containerd.io/gc.ref.snapshot." + GetParam()));
}

TEST_P(UnpackTest, ImageRecordKeepsTheSnapshotsThroughGarbageCollection) {
  const content::Descriptor& target = ImageLayout::get().manifest;
  auto top = unpack(context(), target, images::host_platform());
  ASSERT_TRUE(top.ok()) << top.status().to_string();
  // The references an import or pull gives the manifest (containerd's
  // ChildGCLabels), so that the image reaches the config.
  const images::ResolvedImage image = resolved(target);
  content::Info manifest{
      .digest = target.digest, .size = 0, .created_at = {}, .updated_at = {}, .labels = {}};
  manifest.labels["containerd.io/gc.ref.content.config"] = image.config.digest;
  for (size_t i = 0; i < image.layers.size(); ++i) {
    manifest.labels["containerd.io/gc.ref.content.l." + std::to_string(i)] = image.layers[i].digest;
  }
  ASSERT_TRUE(store_->update(manifest, {"labels"}).ok());
  metadata::Images images = db_->images(std::string(kNs));
  ASSERT_TRUE(
      images.create({.name = "docker.io/library/unpack-test:1", .labels = {}, .target = target}).ok());

  ASSERT_TRUE(db_->garbage_collect().ok());
  EXPECT_TRUE(sn_->stat(*top).ok()) << "the config's gc.ref.snapshot label keeps the top snapshot";
  EXPECT_EQ(all_snapshots().size(), 2u) << "and the top keeps its parent";

  ASSERT_TRUE(images.remove("docker.io/library/unpack-test:1").ok());
  ASSERT_TRUE(db_->garbage_collect().ok());
  EXPECT_TRUE(all_snapshots().empty()) << "without the image nothing holds them";
}

TEST_P(UnpackTest, CallerLeaseHoldsTheNewSnapshots) {
  metadata::Leases leases = db_->leases(std::string(kNs));
  ASSERT_TRUE(leases.create("pull-lease", {}).ok());
  auto top = unpack(context("pull-lease"), ImageLayout::get().manifest, images::host_platform());
  ASSERT_TRUE(top.ok()) << top.status().to_string();

  auto held = leases.list_resources("pull-lease");
  ASSERT_TRUE(held.ok()) << held.status().to_string();
  EXPECT_NE(std::find(held->begin(), held->end(), metadata::LeaseResource{*top, "snapshots/" + GetParam()}),
            held->end());
  ASSERT_TRUE(db_->garbage_collect().ok());
  EXPECT_TRUE(sn_->stat(*top).ok()) << "the lease keeps it without an image record";
  auto listed = leases.list();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u) << "the caller's lease is left to the caller";
}

TEST(Unpack, RefusesAnIncompleteContext) {
  auto top = unpack({}, {}, images::host_platform());
  EXPECT_EQ(top.status().code(), errdefs::Code::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Snapshotters, UnpackTest, ::testing::Values("native", "overlayfs"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace ctrd::unpack
