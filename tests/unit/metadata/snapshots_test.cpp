#include <gtest/gtest.h>

#include "metadata/db.h"
#include "test_support.h"

namespace ctrd::metadata {
namespace {

using errdefs::Code;
using errdefs::Status;
using snapshots::Kind;
using test_support::MetadataTest;

class SnapshotsTest : public MetadataTest {
 protected:
  std::vector<snapshots::Info> walk(snapshots::Snapshotter& sn,
                                    const std::vector<std::string>& filters = {}) {
    std::vector<snapshots::Info> out;
    Status s = sn.walk(
        [&](const snapshots::Info& info) {
          out.push_back(info);
          return Status::Ok();
        },
        filters);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return out;
  }
  std::vector<std::string> names(snapshots::Snapshotter& sn, const std::vector<std::string>& filters = {}) {
    std::vector<std::string> out;
    for (const auto& info : walk(sn, filters)) out.push_back(info.name);
    return out;
  }
  // Prepares `key` on `parent` in `ns` and commits it as `name`.
  void layer(const std::string& ns, const std::string& name, const std::string& parent) {
    auto sn = snapshots(ns);
    ASSERT_TRUE(sn->prepare("extract " + name, parent, {}).ok());
    ASSERT_TRUE(sn->commit(name, "extract " + name, {}).ok());
  }
};

TEST_F(SnapshotsTest, UnknownSnapshotterIsNotFound) {
  auto sn = db_->snapshotter("ns", "zfs");
  EXPECT_EQ(sn.status().code(), Code::kNotFound);
  EXPECT_NE(sn.status().message().find("zfs"), std::string::npos);
  EXPECT_EQ(db_->snapshotter_names(), (std::vector<std::string>{"fake"}));
}

TEST_F(SnapshotsTest, SameKeyInTwoNamespacesIsTwoSnapshots) {
  auto a = snapshots("a");
  auto b = snapshots("b");
  auto ma = a->prepare("key", "", {});
  ASSERT_TRUE(ma.ok()) << ma.status().to_string();
  auto mb = b->prepare("key", "", {});
  ASSERT_TRUE(mb.ok()) << mb.status().to_string();
  EXPECT_NE(*ma, *mb) << "distinct backend snapshots";
  EXPECT_EQ(snapshotter_->keys().size(), 2u);
  for (const auto& key : snapshotter_->keys()) {
    EXPECT_TRUE(key.starts_with("a/") || key.starts_with("b/")) << key;
    EXPECT_TRUE(key.ends_with("/key")) << key;
  }
  EXPECT_EQ(a->prepare("key", "", {}).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(a->prepare("key", "", {}).status().message(), "snapshot \"key\": already exists");

  ASSERT_TRUE(a->remove("key").ok());
  EXPECT_EQ(a->stat("key").status().code(), Code::kNotFound);
  EXPECT_EQ(a->stat("key").status().message(), "snapshot key does not exist: not found");
  EXPECT_TRUE(b->stat("key").ok()) << "the other namespace keeps its own";
  EXPECT_EQ(snapshotter_->keys().size(), 2u) << "the backend snapshot waits for the collector";
}

TEST_F(SnapshotsTest, CommitMapsNamesAndParents) {
  auto sn = snapshots("ns");
  ASSERT_TRUE(
      sn->prepare("active", "", {{"containerd.io/snapshot/x", "inherited"}, {"mine", "only here"}}).ok());
  auto active = sn->stat("active");
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(active->kind, Kind::kActive);
  EXPECT_EQ(active->labels.at("mine"), "only here");
  // Only inherited labels reach the backend.
  for (const auto& key : snapshotter_->keys()) {
    auto backend = snapshotter_->stat(key);
    EXPECT_EQ(backend->labels.count("mine"), 0u);
    EXPECT_EQ(backend->labels.count("containerd.io/snapshot/x"), 1u);
  }

  ASSERT_TRUE(sn->commit("layer1", "active", {{"l", "1"}}).ok());
  EXPECT_EQ(sn->stat("active").status().code(), Code::kNotFound) << "the active key is gone";
  auto committed = sn->stat("layer1");
  ASSERT_TRUE(committed.ok());
  EXPECT_EQ(committed->name, "layer1");
  EXPECT_EQ(committed->kind, Kind::kCommitted);
  EXPECT_EQ(committed->labels, (snapshots::Labels{{"l", "1"}}));

  auto child = sn->prepare("child", "layer1", {});
  ASSERT_TRUE(child.ok()) << child.status().to_string();
  auto info = sn->stat("child");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->parent, "layer1") << "the namespace's name, not the backend key";
  ASSERT_TRUE(sn->commit("layer2", "child", {}).ok());
  EXPECT_EQ(sn->stat("layer2")->parent, "layer1");

  EXPECT_EQ(sn->commit("layer2", "layer1", {}).code(), Code::kAlreadyExists);
  EXPECT_EQ(sn->commit("x", "missing", {}).code(), Code::kNotFound);
  EXPECT_EQ(sn->prepare("k", "missing", {}).status().message(),
            "parent snapshot missing does not exist: not found");
  EXPECT_EQ(sn->prepare("", "", {}).status().code(), Code::kInvalidArgument);

  // Views and mounts resolve to the backend.
  auto view = sn->view("view", "layer2", {});
  ASSERT_TRUE(view.ok());
  auto mounts = sn->mounts("view");
  ASSERT_TRUE(mounts.ok());
  EXPECT_EQ(*mounts, *view);
  EXPECT_EQ(sn->stat("view")->kind, Kind::kView);
  EXPECT_TRUE(sn->usage("view").ok());
  EXPECT_EQ(sn->mounts("nope").status().code(), Code::kNotFound);
}

TEST_F(SnapshotsTest, RemoveWithChildRefused) {
  layer("ns", "base", "");
  auto sn = snapshots("ns");
  ASSERT_TRUE(sn->prepare("top", "base", {}).ok());
  Status refused = sn->remove("base");
  EXPECT_EQ(refused.code(), Code::kFailedPrecondition);
  EXPECT_EQ(refused.message(), "cannot remove snapshot with child");
  ASSERT_TRUE(sn->remove("top").ok());
  EXPECT_TRUE(sn->remove("base").ok()) << "the child link went with the child";
  EXPECT_EQ(sn->remove("base").code(), Code::kNotFound);
}

TEST_F(SnapshotsTest, WalkSeesOnlyTheNamespaceAndFilters) {
  layer("ns", "base", "");
  auto sn = snapshots("ns");
  ASSERT_TRUE(sn->prepare("work", "base", {{"role", "rw"}}).ok());
  ASSERT_TRUE(snapshots("other")->prepare("theirs", "", {}).ok());
  EXPECT_EQ(names(*sn), (std::vector<std::string>{"base", "work"}));
  EXPECT_EQ(names(*sn, {"kind==active"}), (std::vector<std::string>{"work"}));
  EXPECT_EQ(names(*sn, {"kind==committed"}), (std::vector<std::string>{"base"}));
  EXPECT_EQ(names(*sn, {"parent==base"}), (std::vector<std::string>{"work"}));
  EXPECT_EQ(names(*sn, {"labels.role==rw"}), (std::vector<std::string>{"work"}));
  EXPECT_EQ(names(*sn, {"name==theirs"}), (std::vector<std::string>{}));
}

TEST_F(SnapshotsTest, UpdateLabels) {
  auto sn = snapshots("ns");
  ASSERT_TRUE(sn->prepare("k", "", {{"a", "1"}, {"containerd.io/snapshot/b", "2"}}).ok());
  snapshots::Info change;
  change.name = "k";
  change.labels = {{"c", "3"}};
  auto updated = sn->update(change, {"labels.c", "labels.a"});
  ASSERT_TRUE(updated.ok()) << updated.status().to_string();
  EXPECT_EQ(updated->labels, (snapshots::Labels{{"c", "3"}, {"containerd.io/snapshot/b", "2"}}));
  EXPECT_EQ(sn->stat("k")->labels, updated->labels);
  EXPECT_GE(updated->updated_at, updated->created_at);
  auto bad = sn->update(change, {"parent"});
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "cannot update \"parent\" field on snapshot \"k\"");
  change.name = "missing";
  EXPECT_EQ(sn->update(change, {}).status().code(), Code::kNotFound);
}

TEST_F(SnapshotsTest, LeaseHoldsPreparedAndCommittedSnapshots) {
  ASSERT_TRUE(db_->leases("ns").create("pull", {}).ok());
  auto leased = snapshots("ns", "pull");
  ASSERT_TRUE(leased->prepare("extract", "", {}).ok());
  auto resources = db_->leases("ns").list_resources("pull");
  ASSERT_TRUE(resources.ok());
  EXPECT_EQ(*resources, (std::vector<LeaseResource>{{"extract", "snapshots/fake"}}));
  ASSERT_TRUE(leased->commit("layer", "extract", {}).ok());
  EXPECT_EQ(*db_->leases("ns").list_resources("pull"),
            (std::vector<LeaseResource>{{"layer", "snapshots/fake"}}));

  auto missing = snapshots("ns", "nope")->prepare("x", "", {});
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(snapshots("ns")->stat("x").status().code(), Code::kNotFound) << "nothing recorded";
  EXPECT_TRUE(snapshotter_->keys().size() == 1u) << "the backend snapshot was undone";
}

TEST_F(SnapshotsTest, NamespaceRemoveNamesTheSnapshotter) {
  ASSERT_TRUE(snapshots("busy")->prepare("k", "", {}).ok());
  Status s = db_->namespaces().remove("busy");
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "namespace \"busy\" must be empty, but it still has snapshots on \"fake\" snapshotter");
}

TEST_F(SnapshotsTest, MutationCallbackSeesChangesAndRemovals) {
  std::vector<bool> seen;
  db_->set_mutation_callback([&](bool deletion) { seen.push_back(deletion); });
  auto sn = snapshots("ns");
  ASSERT_TRUE(sn->prepare("k", "", {}).ok());
  ASSERT_TRUE(sn->remove("k").ok());
  Image img;
  img.name = "i";
  img.target = {"m", test_support::sha256("x"), 1, {}};
  ASSERT_TRUE(db_->images("ns").create(img).ok());
  ASSERT_TRUE(db_->images("ns").remove("i").ok());
  EXPECT_EQ(seen, (std::vector<bool>{false, true, false, true}));
  db_->set_mutation_callback({});
  ASSERT_TRUE(sn->prepare("k2", "", {}).ok());
  EXPECT_EQ(seen.size(), 4u) << "unregistered";
}

}  // namespace
}  // namespace ctrd::metadata
