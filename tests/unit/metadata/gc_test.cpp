#include <gtest/gtest.h>

#include <set>

#include "metadata/db.h"
#include "test_support.h"

namespace ctrd::metadata {
namespace {

using errdefs::Code;
using errdefs::Status;
using test_support::MetadataTest;
using test_support::sha256;
using test_support::write_blob;

class GcTest : public MetadataTest {
 protected:
  GcStats collect() {
    auto stats = db_->garbage_collect();
    EXPECT_TRUE(stats.ok()) << stats.status().to_string();
    return stats.ok() ? *stats : GcStats{};
  }
  std::string blob(const std::string& ns, const std::string& data, const Labels& labels = {},
                   const std::string& lease = "") {
    Status s = write_blob(*db_->content_store(ns, lease), "ref-" + data, data, labels);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return sha256(data);
  }
  bool held(const std::string& ns, const std::string& digest) {
    return db_->content_store(ns)->info(digest).ok();
  }
  void image(const std::string& ns, const std::string& name, const std::string& digest,
             const Labels& labels = {}) {
    Image img;
    img.name = name;
    img.labels = labels;
    img.target = {"application/vnd.oci.image.index.v1+json", digest, 10, {}};
    ASSERT_TRUE(db_->images(ns).create(img).ok());
  }
  bool has_snapshot(const std::string& ns, const std::string& key) { return snapshots(ns)->stat(key).ok(); }
};

TEST_F(GcTest, ImageKeepsItsContentTreeAndTheRestGoes) {
  std::string layer = blob("ns", "layer");
  std::string config = blob("ns", "config");
  std::string manifest =
      blob("ns", "manifest",
           {{"containerd.io/gc.ref.content.config", config}, {"containerd.io/gc.ref.content.l.0", layer}});
  std::string index = blob("ns", "index", {{"containerd.io/gc.ref.content.m.0", manifest}});
  std::string stray = blob("ns", "stray");
  image("ns", "img", index);

  GcStats stats = collect();
  for (const auto& d : {layer, config, manifest, index}) {
    EXPECT_TRUE(held("ns", d)) << d;
    EXPECT_TRUE(blobs_->has_blob(d)) << d;
  }
  EXPECT_FALSE(held("ns", stray)) << "unreferenced row swept";
  EXPECT_FALSE(blobs_->has_blob(stray)) << "and its bytes removed";
  EXPECT_EQ(stats.blobs_removed, 1u);

  ASSERT_TRUE(db_->images("ns").remove("img").ok());
  stats = collect();
  EXPECT_EQ(stats.blobs_removed, 4u);
  EXPECT_FALSE(blobs_->has_blob(layer));
}

TEST_F(GcTest, BlobHeldByAnotherNamespaceKeepsItsBytes) {
  std::string d = blob("a", "shared");
  blob("b", "shared");
  image("b", "img", d);
  collect();
  EXPECT_FALSE(held("a", d)) << "a's unreferenced row goes";
  EXPECT_TRUE(held("b", d));
  EXPECT_TRUE(blobs_->has_blob(d)) << "b still holds the bytes";
}

TEST_F(GcTest, RootLabelKeepsABlob) {
  std::string root = blob("ns", "root", {{"containerd.io/gc.root", "x"}});
  std::string child = blob("ns", "child");
  ASSERT_TRUE(
      db_->content_store("ns")
          ->update(
              {root, 0, {}, {}, {{"containerd.io/gc.root", "x"}, {"containerd.io/gc.ref.content", child}}},
              {"labels"})
          .ok());
  collect();
  EXPECT_TRUE(held("ns", root));
  EXPECT_TRUE(held("ns", child)) << "referenced by the root's gc.ref.content label";
}

TEST_F(GcTest, LeaseKeepsWhatItHoldsUntilItExpiresOrGoes) {
  ASSERT_TRUE(db_->leases("ns").create("live", {}).ok());
  ASSERT_TRUE(
      db_->leases("ns").create("expired", {{"containerd.io/gc.expire", "2001-01-01T00:00:00Z"}}).ok());
  ASSERT_TRUE(
      db_->leases("ns").create("future", {{"containerd.io/gc.expire", "2999-01-01T00:00:00+01:00"}}).ok());
  std::string live = blob("ns", "live", {}, "live");
  std::string expired = blob("ns", "expired", {}, "expired");
  std::string future = blob("ns", "future", {}, "future");
  ASSERT_TRUE(snapshots("ns", "live")->prepare("leased-snap", "", {}).ok());

  collect();
  EXPECT_TRUE(held("ns", live));
  EXPECT_TRUE(held("ns", future));
  EXPECT_TRUE(has_snapshot("ns", "leased-snap"));
  EXPECT_FALSE(held("ns", expired));
  EXPECT_FALSE(blobs_->has_blob(expired));
  auto leases = db_->leases("ns").list();
  ASSERT_TRUE(leases.ok());
  std::set<std::string> ids;
  for (const auto& l : *leases) ids.insert(l.id);
  EXPECT_EQ(ids, (std::set<std::string>{"future", "live"})) << "the expired lease is collected too";

  ASSERT_TRUE(db_->leases("ns").remove("live").ok());
  GcStats stats = collect();
  EXPECT_FALSE(held("ns", live));
  EXPECT_FALSE(has_snapshot("ns", "leased-snap"));
  EXPECT_EQ(stats.snapshots_removed, 1u);
  EXPECT_TRUE(snapshotter_->keys().empty());
}

TEST_F(GcTest, ContainerKeepsItsSnapshotAndItsParents) {
  auto sn = snapshots("ns");
  ASSERT_TRUE(sn->prepare("x1", "", {}).ok());
  ASSERT_TRUE(sn->commit("layer1", "x1", {}).ok());
  ASSERT_TRUE(sn->prepare("x2", "layer1", {}).ok());
  ASSERT_TRUE(sn->commit("layer2", "x2", {}).ok());
  ASSERT_TRUE(sn->prepare("rootfs", "layer2", {}).ok());
  ASSERT_TRUE(sn->prepare("stray", "layer1", {}).ok());
  Container c;
  c.id = "c";
  c.runtime.name = "io.containerd.runc.v2";
  c.spec = {"spec", "{}"};
  c.snapshotter = "fake";
  c.snapshot_key = "rootfs";
  ASSERT_TRUE(db_->containers("ns").create(c).ok());

  GcStats stats = collect();
  EXPECT_TRUE(has_snapshot("ns", "rootfs"));
  EXPECT_TRUE(has_snapshot("ns", "layer2"));
  EXPECT_TRUE(has_snapshot("ns", "layer1"));
  EXPECT_FALSE(has_snapshot("ns", "stray"));
  EXPECT_EQ(stats.snapshots_removed, 1u);
  EXPECT_EQ(snapshotter_->keys().size(), 3u);
  EXPECT_GE(snapshotter_->cleanups(), 1) << "the backend cleans up after a collection";

  // Without the container everything goes, children before parents.
  ASSERT_TRUE(db_->containers("ns").remove("c").ok());
  stats = collect();
  EXPECT_EQ(stats.snapshots_removed, 3u);
  EXPECT_TRUE(snapshotter_->keys().empty());
  auto removed = snapshotter_->removed();
  ASSERT_EQ(removed.size(), 4u);
  EXPECT_TRUE(removed[1].ends_with("/rootfs"));
  EXPECT_TRUE(removed[2].ends_with("/layer2"));
  EXPECT_TRUE(removed[3].ends_with("/layer1"));
}

TEST_F(GcTest, LabelReferencesBetweenImagesSnapshotsAndContent) {
  auto sn = snapshots("ns");
  std::string config = blob("ns", "config");
  ASSERT_TRUE(sn->prepare("x", "", {}).ok());
  ASSERT_TRUE(sn->commit("chain", "x", {{"containerd.io/gc.ref.content.config", config}}).ok());
  std::string manifest = blob("ns", "manifest");
  image("ns", "img", manifest, {{"containerd.io/gc.ref.snapshot.fake/0", "chain"}});
  collect();
  EXPECT_TRUE(has_snapshot("ns", "chain")) << "image label gc.ref.snapshot.fake";
  EXPECT_TRUE(held("ns", config)) << "snapshot label gc.ref.content";
}

TEST_F(GcTest, BackendSnapshotsNoNamespaceRefersToAreRemoved) {
  auto a = snapshots("a");
  auto b = snapshots("b");
  ASSERT_TRUE(a->prepare("k", "", {{"containerd.io/gc.root", "1"}}).ok());
  ASSERT_TRUE(b->prepare("k", "", {}).ok());
  // A leftover only the backend knows.
  ASSERT_TRUE(snapshotter_->prepare("orphan", "", {}).ok());
  GcStats stats = collect();
  EXPECT_EQ(stats.snapshots_removed, 2u);
  auto keys = snapshotter_->keys();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_TRUE(keys.begin()->starts_with("a/"));
  EXPECT_TRUE(has_snapshot("a", "k"));
  EXPECT_FALSE(has_snapshot("b", "k"));
}

TEST_F(GcTest, IngestsLiveWhileUnexpiredOrLeased) {
  // Unleased: kept until it expires (a day).
  auto unleased = db_->content_store("ns")->writer({"open", 0, ""});
  ASSERT_TRUE(unleased.ok());
  ASSERT_TRUE((*unleased)->write("partial").ok());
  // Leased: kept while the lease lives.
  ASSERT_TRUE(db_->leases("ns").create("pull", {}).ok());
  auto leased = db_->content_store("ns", "pull")->writer({"leased", 0, ""});
  ASSERT_TRUE(leased.ok());
  ASSERT_TRUE((*leased)->write("partial").ok());
  unleased->reset();
  leased->reset();

  GcStats stats = collect();
  EXPECT_EQ(stats.ingests_removed, 0u);
  EXPECT_TRUE(db_->content_store("ns")->status("open").ok());
  EXPECT_TRUE(db_->content_store("ns")->status("leased").ok());

  ASSERT_TRUE(db_->leases("ns").remove("pull").ok());
  stats = collect();
  EXPECT_EQ(stats.ingests_removed, 1u);
  EXPECT_EQ(db_->content_store("ns")->status("leased").status().code(), Code::kNotFound);
  EXPECT_TRUE(db_->content_store("ns")->status("open").ok());
  EXPECT_EQ(blobs_->ingest_refs().size(), 1u) << "the backend ingest was aborted";
}

TEST_F(GcTest, BlobStoreIngestWithoutARowIsAborted) {
  auto orphan = blobs_->writer({"ns/999/left-behind", 0, ""});
  ASSERT_TRUE(orphan.ok());
  orphan->reset();
  GcStats stats = collect();
  EXPECT_EQ(stats.ingests_removed, 1u);
  EXPECT_TRUE(blobs_->ingest_refs().empty());
}

TEST_F(GcTest, RemovedNamespaceContentIsCollected) {
  std::string d = blob("gone", "bytes");
  ASSERT_TRUE(db_->content_store("gone")->remove(d).ok());
  ASSERT_TRUE(db_->namespaces().remove("gone").ok());
  EXPECT_TRUE(blobs_->has_blob(d));
  collect();
  EXPECT_FALSE(blobs_->has_blob(d));
}

}  // namespace
}  // namespace ctrd::metadata
