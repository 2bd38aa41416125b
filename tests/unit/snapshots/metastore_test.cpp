#include "snapshots/metastore.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace ctrd::snapshots {
namespace {

using ctrd::testing::TempDir;
using errdefs::Code;

class MetastoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ms = Metastore::open(dir_.sub("db"));
    ASSERT_TRUE(ms.ok()) << ms.status().to_string();
    ms_ = std::move(*ms);
  }

  std::vector<std::string> walk_names(const std::vector<std::string>& filters) {
    std::vector<std::string> names;
    errdefs::Status s = ms_->walk(
        [&](const Info& info) {
          names.push_back(info.name);
          return errdefs::Status::Ok();
        },
        filters);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return names;
  }

  TempDir dir_;
  std::unique_ptr<Metastore> ms_;
};

TEST_F(MetastoreTest, CreateGetAndStat) {
  auto a = ms_->create(Kind::kActive, "a", "", {{"k", "v"}});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_GT(a->id, 0u);
  EXPECT_TRUE(a->parent_ids.empty());

  auto info = ms_->stat("a");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->name, "a");
  EXPECT_EQ(info->kind, Kind::kActive);
  EXPECT_EQ(info->labels, (Labels{{"k", "v"}}));
  EXPECT_EQ(info->created_at, info->updated_at);

  auto again = ms_->create(Kind::kActive, "a", "", {});
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(ms_->stat("missing").status().code(), Code::kNotFound);
  EXPECT_EQ(ms_->get("missing").status().code(), Code::kNotFound);
  EXPECT_EQ(ms_->create(Kind::kCommitted, "c", "", {}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ms_->create(Kind::kActive, "", "", {}).status().code(), Code::kInvalidArgument);
}

TEST_F(MetastoreTest, ParentMustExistAndBeCommitted) {
  EXPECT_EQ(ms_->create(Kind::kActive, "b", "nope", {}).status().code(), Code::kNotFound);
  ASSERT_TRUE(ms_->create(Kind::kActive, "a", "", {}).ok());
  EXPECT_EQ(ms_->create(Kind::kActive, "b", "a", {}).status().code(), Code::kInvalidArgument);
  ASSERT_TRUE(ms_->create(Kind::kView, "v", "", {}).ok());
  EXPECT_EQ(ms_->create(Kind::kView, "w", "v", {}).status().code(), Code::kInvalidArgument);
}

TEST_F(MetastoreTest, CommitRenamesKeepingIdAndChains) {
  auto a = ms_->create(Kind::kActive, "a", "", {{"old", "x"}});
  ASSERT_TRUE(a.ok());
  auto committed = ms_->commit("a", "A", {{"new", "y"}});
  ASSERT_TRUE(committed.ok()) << committed.status().to_string();
  EXPECT_EQ(committed->id, a->id);
  EXPECT_EQ(ms_->stat("a").status().code(), Code::kNotFound);
  auto info = ms_->stat("A");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->kind, Kind::kCommitted);
  EXPECT_EQ(info->labels, (Labels{{"new", "y"}})) << "labels are replaced, not inherited";

  auto b = ms_->create(Kind::kActive, "b", "A", {});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->parent_ids, (std::vector<uint64_t>{a->id}));
  ASSERT_TRUE(ms_->commit("b", "B", {}).ok());
  auto c = ms_->create(Kind::kView, "c", "B", {});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->parent_ids, (std::vector<uint64_t>{b->id, a->id})) << "nearest parent first";
  auto got = ms_->get("c");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->parent_ids, c->parent_ids);
  EXPECT_EQ(got->kind, Kind::kView);
  EXPECT_EQ(ms_->stat("c")->parent, "B");

  EXPECT_EQ(ms_->commit("c", "C", {}).status().code(), Code::kFailedPrecondition)
      << "a view cannot be committed";
  EXPECT_EQ(ms_->commit("missing", "M", {}).status().code(), Code::kNotFound);
  ASSERT_TRUE(ms_->create(Kind::kActive, "d", "", {}).ok());
  EXPECT_EQ(ms_->commit("d", "A", {}).status().code(), Code::kAlreadyExists);
  EXPECT_TRUE(ms_->stat("d").ok()) << "a failed commit changes nothing";
}

TEST_F(MetastoreTest, RemoveRefusesParentsWithChildren) {
  auto a = ms_->create(Kind::kActive, "a", "", {});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(ms_->commit("a", "A", {}).ok());
  auto b = ms_->create(Kind::kActive, "b", "A", {});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(ms_->remove("A").status().code(), Code::kFailedPrecondition);

  auto removed = ms_->remove("b");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->id, b->id);
  EXPECT_EQ(removed->kind, Kind::kActive);
  removed = ms_->remove("A");
  ASSERT_TRUE(removed.ok()) << removed.status().to_string();
  EXPECT_EQ(removed->kind, Kind::kCommitted);
  EXPECT_EQ(ms_->remove("A").status().code(), Code::kNotFound);
  EXPECT_TRUE(walk_names({}).empty());
}

TEST_F(MetastoreTest, FailingHookAbortsTheTransaction) {
  auto fail = [](const Snapshot&, Labels&) { return errdefs::Internal("hook failed"); };
  EXPECT_EQ(ms_->create(Kind::kActive, "a", "", {}, fail).status().code(), Code::kInternal);
  EXPECT_EQ(ms_->stat("a").status().code(), Code::kNotFound);

  ASSERT_TRUE(ms_->create(Kind::kActive, "a", "", {}).ok());
  auto fail_remove = [](const Snapshot&) { return errdefs::Internal("hook failed"); };
  EXPECT_EQ(ms_->remove("a", fail_remove).status().code(), Code::kInternal);
  EXPECT_TRUE(ms_->stat("a").ok());

  auto add_label = [](const Snapshot& s, Labels& labels) {
    labels["id"] = std::to_string(s.id);
    return errdefs::Status::Ok();
  };
  auto b = ms_->create(Kind::kActive, "b", "", {}, add_label);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(ms_->stat("b")->labels.at("id"), std::to_string(b->id));
}

TEST_F(MetastoreTest, UpdateLabels) {
  ASSERT_TRUE(ms_->create(Kind::kActive, "a", "", {{"x", "1"}, {"y", "2"}}).ok());
  Info info{.name = "a", .parent = "", .kind = Kind::kUnknown, .labels = {{"x", "10"}, {"z", "3"}}};

  auto updated = ms_->update(info, {"labels.x"});
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->labels, (Labels{{"x", "10"}, {"y", "2"}}));
  EXPECT_EQ(updated->kind, Kind::kActive);
  EXPECT_GE(updated->updated_at, updated->created_at);

  updated = ms_->update(info, {"labels.y"});
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->labels, (Labels{{"x", "10"}})) << "a label absent from info is removed";

  updated = ms_->update(info, {"labels"});
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->labels, info.labels);

  info.labels = {{"only", "this"}};
  updated = ms_->update(info, {});
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(ms_->stat("a")->labels, (Labels{{"only", "this"}}));

  EXPECT_EQ(ms_->update(info, {"parent"}).status().code(), Code::kInvalidArgument);
  info.name = "missing";
  EXPECT_EQ(ms_->update(info, {}).status().code(), Code::kNotFound);
}

TEST_F(MetastoreTest, WalkFilters) {
  ASSERT_TRUE(ms_->create(Kind::kActive, "base", "", {{"layer", "0"}}).ok());
  ASSERT_TRUE(ms_->commit("base", "BASE", {{"layer", "0"}, {"a.b", "dotted"}}).ok());
  ASSERT_TRUE(ms_->create(Kind::kActive, "work", "BASE", {{"layer", "1"}}).ok());
  ASSERT_TRUE(ms_->create(Kind::kView, "look", "BASE", {}).ok());

  EXPECT_EQ(walk_names({}), (std::vector<std::string>{"BASE", "look", "work"}));
  EXPECT_EQ(walk_names({"kind==committed"}), (std::vector<std::string>{"BASE"}));
  EXPECT_EQ(walk_names({"kind==view"}), (std::vector<std::string>{"look"}));
  EXPECT_EQ(walk_names({"parent==BASE"}), (std::vector<std::string>{"look", "work"}));
  EXPECT_EQ(walk_names({"labels.layer==1"}), (std::vector<std::string>{"work"}));
  EXPECT_EQ(walk_names({"labels.layer"}), (std::vector<std::string>{"BASE", "work"}));
  EXPECT_EQ(walk_names({"labels.\"a.b\"==dotted"}), (std::vector<std::string>{"BASE"}));
  EXPECT_EQ(walk_names({"name==work", "name==look"}), (std::vector<std::string>{"look", "work"}));
  EXPECT_EQ(walk_names({"name~=^w,kind==active"}), (std::vector<std::string>{"work"}));

  errdefs::Status bad = ms_->walk([](const Info&) { return errdefs::Status::Ok(); }, {"name=="});
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  errdefs::Status stop = ms_->walk([](const Info&) { return errdefs::Canceled("stop"); }, {});
  EXPECT_EQ(stop.code(), Code::kCanceled);
}

TEST_F(MetastoreTest, IdsAndPersistence) {
  auto a = ms_->create(Kind::kActive, "a", "", {});
  auto b = ms_->create(Kind::kActive, "b", "", {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->id, b->id);
  ASSERT_TRUE(ms_->remove("a").ok());
  auto ids = ms_->ids();
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::set<uint64_t>{b->id}));

  EXPECT_EQ(Metastore::open(dir_.sub("db")).status().code(), Code::kFailedPrecondition)
      << "one open store per directory per process";
  ms_.reset();
  auto reopened = Metastore::open(dir_.sub("db"));
  ASSERT_TRUE(reopened.ok()) << reopened.status().to_string();
  EXPECT_TRUE((*reopened)->stat("b").ok());
  auto c = (*reopened)->create(Kind::kActive, "c", "", {});
  ASSERT_TRUE(c.ok());
  EXPECT_GT(c->id, b->id) << "ids are never reused";
}

}  // namespace
}  // namespace ctrd::snapshots
