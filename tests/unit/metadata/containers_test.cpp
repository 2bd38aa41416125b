#include <gtest/gtest.h>

#include "metadata/db.h"
#include "test_support.h"

namespace ctrd::metadata {
namespace {

using errdefs::Code;
using test_support::MetadataTest;

class ContainersTest : public MetadataTest {
 protected:
  static Container container(const std::string& id) {
    Container c;
    c.id = id;
    c.image = "docker.io/library/busybox:latest";
    c.runtime = {"io.containerd.runc.v2", {"type/options", "opts"}};
    c.spec = {"types.containerd.io/opencontainers/runtime-spec/1/Spec", "{\"ociVersion\":\"1.0.2\"}"};
    c.snapshotter = "overlayfs";
    c.snapshot_key = id;
    c.labels = {{"a", "1"}};
    c.extensions = {{"ext", {"type/ext", "bytes"}}};
    return c;
  }
  std::vector<std::string> ids(const std::vector<std::string>& filters = {}) {
    auto list = db_->containers("ns").list(filters);
    EXPECT_TRUE(list.ok()) << list.status().to_string();
    std::vector<std::string> out;
    if (list.ok()) {
      for (const auto& c : *list) out.push_back(c.id);
    }
    return out;
  }
};

void expect_same(const Container& a, const Container& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.image, b.image);
  EXPECT_EQ(a.runtime, b.runtime);
  EXPECT_EQ(a.spec, b.spec);
  EXPECT_EQ(a.snapshotter, b.snapshotter);
  EXPECT_EQ(a.snapshot_key, b.snapshot_key);
  EXPECT_EQ(a.extensions, b.extensions);
}

TEST_F(ContainersTest, CreateGetListRemove) {
  Container c = container("web");
  auto created = db_->containers("ns").create(c);
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  expect_same(*created, c);
  EXPECT_NE(created->created_at, content::Clock::time_point());

  reopen();
  auto got = db_->containers("ns").get("web");
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  expect_same(*got, c);
  EXPECT_EQ(got->created_at, created->created_at);

  auto dup = db_->containers("ns").create(c);
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(dup.status().message(), "container \"web\": already exists");
  EXPECT_EQ(db_->containers("other").get("web").status().message(),
            "container \"web\" in namespace \"other\": not found");

  ASSERT_TRUE(db_->containers("ns").remove("web").ok());
  EXPECT_EQ(db_->containers("ns").get("web").status().code(), Code::kNotFound);
  auto again = db_->containers("ns").remove("web");
  EXPECT_EQ(again.code(), Code::kNotFound);
  EXPECT_EQ(again.message(), "cannot delete container \"web\" in namespace \"ns\": not found");
}

TEST_F(ContainersTest, ValidationAsContainerd) {
  auto containers = db_->containers("ns");
  Container c = container("bad id!");
  auto bad_id = containers.create(c);
  EXPECT_EQ(bad_id.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(bad_id.status().message().starts_with("create container failed validation: container.ID: "))
      << bad_id.status().message();
  c = container("x");
  c.runtime.name = "";
  EXPECT_EQ(containers.create(c).status().message(),
            "create container failed validation: container.Runtime.Name must be set");
  c = container("x");
  c.spec = {};
  EXPECT_EQ(containers.create(c).status().message(),
            "create container failed validation: container.Spec must be set");
  c = container("x");
  c.snapshotter = "";
  EXPECT_EQ(containers.create(c).status().message(),
            "create container failed validation: container.Snapshotter must be set if container.SnapshotKey "
            "is set");
  c = container("x");
  c.extensions[""] = {"t", "v"};
  EXPECT_EQ(containers.create(c).status().message(),
            "create container failed validation: container.Extension keys must not be zero-length");
  EXPECT_TRUE(ids().empty());
}

TEST_F(ContainersTest, ListFilters) {
  auto containers = db_->containers("ns");
  Container a = container("a");
  a.labels = {{"role", "db"}};
  Container b = container("b");
  b.image = "docker.io/library/nginx:latest";
  b.runtime.name = "io.containerd.runc.v1";
  ASSERT_TRUE(containers.create(a).ok());
  ASSERT_TRUE(containers.create(b).ok());
  EXPECT_EQ(ids(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ids({"id==a"}), (std::vector<std::string>{"a"}));
  EXPECT_EQ(ids({"labels.role==db"}), (std::vector<std::string>{"a"}));
  EXPECT_EQ(ids({"image~=nginx"}), (std::vector<std::string>{"b"}));
  EXPECT_EQ(ids({"runtime.name==io.containerd.runc.v1"}), (std::vector<std::string>{"b"}));
  EXPECT_EQ(ids({"snapshotkey==b"}), (std::vector<std::string>{"b"}));
  EXPECT_EQ(containers.list({"id=="}).status().code(), Code::kInvalidArgument);
}

TEST_F(ContainersTest, UpdateFieldPaths) {
  auto containers = db_->containers("ns");
  Container c = container("c");
  auto created = containers.create(c);
  ASSERT_TRUE(created.ok());

  Container change = c;
  change.labels = {{"b", "2"}};
  change.image = "other";
  change.extensions = {{"ext2", {"t2", "v2"}}};
  auto labelled = containers.update(change, {"labels.b", "labels.a", "extensions.ext2"});
  ASSERT_TRUE(labelled.ok()) << labelled.status().to_string();
  EXPECT_EQ(labelled->labels, (Labels{{"b", "2"}}));
  EXPECT_EQ(labelled->image, c.image);
  EXPECT_EQ(labelled->extensions.size(), 2u);
  EXPECT_EQ(labelled->created_at, created->created_at);

  auto imaged = containers.update(change, {"image", "snapshotkey"});
  ASSERT_TRUE(imaged.ok());
  EXPECT_EQ(imaged->image, "other");

  // A full replace with an immutable field changed is refused.
  Container moved = c;
  moved.snapshotter = "native";
  EXPECT_EQ(containers.update(moved, {}).status().message(), "container.Snapshotter field is immutable");
  moved = c;
  moved.runtime.name = "other";
  EXPECT_EQ(containers.update(moved, {}).status().message(), "container.Runtime.Name field is immutable");
  EXPECT_EQ(containers.update(c, {"runtime"}).status().message(), "cannot update \"runtime\" field on \"c\"");

  auto replaced = containers.update(c, {});
  ASSERT_TRUE(replaced.ok());
  expect_same(*replaced, c);

  Container no_spec = c;
  no_spec.spec = {};
  auto invalid = containers.update(no_spec, {"spec"});
  EXPECT_EQ(invalid.status().message(), "update failed validation: container.Spec must be set");
  expect_same(*containers.get("c"), c);

  EXPECT_EQ(containers.update(container("missing"), {}).status().message(),
            "container \"missing\": not found");
  EXPECT_EQ(db_->containers("empty").update(container("x"), {}).status().message(),
            "cannot update container \"x\" in namespace \"empty\": not found");
  Container no_id = c;
  no_id.id = "";
  EXPECT_EQ(containers.update(no_id, {}).status().message(), "must specify a container id");
}

TEST_F(ContainersTest, NamespaceRemoveRefusedWhileContainersExist) {
  ASSERT_TRUE(db_->containers("busy").create(container("c")).ok());
  auto s = db_->namespaces().remove("busy");
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_EQ(s.message(), "namespace \"busy\" must be empty, but it still has containers");
}

}  // namespace
}  // namespace ctrd::metadata
