#include <gtest/gtest.h>

#include "metadata/db.h"
#include "test_support.h"

namespace ctrd::metadata {
namespace {

using errdefs::Code;
using errdefs::Status;
using test_support::MetadataTest;
using test_support::sha256;

using LeasesTest = MetadataTest;

std::vector<std::string> ids(const std::vector<Lease>& leases) {
  std::vector<std::string> out;
  for (const auto& l : leases) out.push_back(l.id);
  return out;
}

TEST_F(LeasesTest, CreateListRemove) {
  Leases leases = db_->leases("ns");
  auto before = content::Clock::now();
  auto created =
      leases.create("b-lease", {{"containerd.io/gc.expire", "2030-01-02T03:04:05Z"}, {"empty", ""}});
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  EXPECT_EQ(created->id, "b-lease");
  EXPECT_GE(created->created_at, before);
  EXPECT_EQ(created->labels, (Labels{{"containerd.io/gc.expire", "2030-01-02T03:04:05Z"}}));
  ASSERT_TRUE(leases.create("a-lease", {}).ok());

  auto list = leases.list();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(ids(*list), (std::vector<std::string>{"a-lease", "b-lease"}));
  EXPECT_EQ((*list)[1].created_at, created->created_at);
  EXPECT_EQ((*list)[1].labels, created->labels);

  Status dup = leases.create("a-lease", {}).status();
  EXPECT_EQ(dup.code(), Code::kAlreadyExists);
  EXPECT_EQ(dup.message(), "lease \"a-lease\": already exists");

  ASSERT_TRUE(leases.remove("a-lease").ok());
  EXPECT_EQ(ids(*leases.list()), (std::vector<std::string>{"b-lease"}));
  Status gone = leases.remove("a-lease");
  EXPECT_EQ(gone.code(), Code::kNotFound);
  EXPECT_EQ(gone.message(), "lease \"a-lease\": not found");
}

TEST_F(LeasesTest, LeasesArePerNamespace) {
  ASSERT_TRUE(db_->leases("ns1").create("same", {{"ns", "1"}}).ok());
  ASSERT_TRUE(db_->leases("ns2").create("same", {{"ns", "2"}}).ok());
  EXPECT_EQ(db_->leases("ns1").list()->at(0).labels.at("ns"), "1");
  ASSERT_TRUE(db_->leases("ns1").remove("same").ok());
  EXPECT_TRUE(db_->leases("ns1").list()->empty());
  EXPECT_EQ(db_->leases("ns2").list()->size(), 1u);
  EXPECT_EQ(db_->leases("ns3").remove("same").code(), Code::kNotFound);
}

TEST_F(LeasesTest, IdsAreFreeFormButBounded) {
  Leases leases = db_->leases("ns");
  // containerd's WithRandomID produces ids like these, which identifier rules reject.
  for (const std::string& id : std::vector<std::string>{"123456789-ab_-", "9-_-_-", "lease/with:odd chars"}) {
    EXPECT_TRUE(leases.create(id, {}).ok()) << id;
  }
  Status empty = leases.create("", {}).status();
  EXPECT_EQ(empty.code(), Code::kInvalidArgument);
  EXPECT_EQ(empty.message(), "lease id must be provided");
  EXPECT_EQ(leases.create(std::string(129, 'x'), {}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(leases.create(std::string("nul\0inside", 10), {}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(leases.create("big-label", {{"k", std::string(4096, 'v')}}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(db_->leases("").create("x", {}).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(db_->leases("no/slash").create("x", {}).status().code(), Code::kInvalidArgument);
}

TEST_F(LeasesTest, ListFilters) {
  Leases leases = db_->leases("ns");
  ASSERT_TRUE(leases.create("pull-1", {{"kind", "pull"}}).ok());
  ASSERT_TRUE(leases.create("pull-2", {{"kind", "pull"}, {"a.b", "c"}}).ok());
  ASSERT_TRUE(leases.create("build", {{"kind", "build"}}).ok());
  ASSERT_TRUE(leases.create("bare", {}).ok());

  EXPECT_EQ(ids(*leases.list({"id==build"})), (std::vector<std::string>{"build"}));
  EXPECT_EQ(ids(*leases.list({"labels.kind==pull"})), (std::vector<std::string>{"pull-1", "pull-2"}));
  EXPECT_EQ(ids(*leases.list({"labels.\"a.b\"==c"})), (std::vector<std::string>{"pull-2"}));
  EXPECT_EQ(ids(*leases.list({"labels.kind"})), (std::vector<std::string>{"build", "pull-1", "pull-2"}));
  EXPECT_EQ(ids(*leases.list({"id==bare", "labels.kind==build"})),
            (std::vector<std::string>{"bare", "build"}));
  EXPECT_EQ(ids(*leases.list({"id~=^pull-,labels.a.b==c"})), (std::vector<std::string>{"pull-2"}));
  EXPECT_EQ(leases.list({"id=="}).status().code(), Code::kInvalidArgument);
}

TEST_F(LeasesTest, Resources) {
  Leases leases = db_->leases("ns");
  ASSERT_TRUE(leases.create("l", {}).ok());
  std::string d = sha256("x");
  ASSERT_TRUE(leases.add_resource("l", {"key-2", "snapshots/overlayfs"}).ok());
  ASSERT_TRUE(leases.add_resource("l", {"key-1", "snapshots/overlayfs"}).ok());
  ASSERT_TRUE(leases.add_resource("l", {"key-1", "snapshots/native"}).ok());
  ASSERT_TRUE(leases.add_resource("l", {"ingest-ref", "ingests"}).ok());
  ASSERT_TRUE(leases.add_resource("l", {d, "content"}).ok());
  ASSERT_TRUE(leases.add_resource("l", {d, "content"}).ok()) << "adding twice is fine";

  auto list = leases.list_resources("l");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, (std::vector<LeaseResource>{{d, "content"},
                                               {"ingest-ref", "ingests"},
                                               {"key-1", "snapshots/native"},
                                               {"key-1", "snapshots/overlayfs"},
                                               {"key-2", "snapshots/overlayfs"}}));

  ASSERT_TRUE(leases.delete_resource("l", {"key-1", "snapshots/overlayfs"}).ok());
  ASSERT_TRUE(leases.delete_resource("l", {"not-there", "ingests"}).ok());
  EXPECT_EQ(leases.list_resources("l")->size(), 4u);

  // Resources go with their lease.
  ASSERT_TRUE(leases.remove("l").ok());
  ASSERT_TRUE(leases.create("l", {}).ok());
  EXPECT_TRUE(leases.list_resources("l")->empty());
}

TEST_F(LeasesTest, ResourceValidationMatchesContainerd) {
  Leases leases = db_->leases("ns");
  ASSERT_TRUE(leases.create("l", {}).ok());
  struct Case {
    LeaseResource resource;
    Code code;
  };
  for (const auto& [resource, code] : std::vector<Case>{
           {{"not-a-digest", "content"}, Code::kInvalidArgument},
           {{"x", "content/extra"}, Code::kInvalidArgument},
           {{"x", "ingests/extra"}, Code::kInvalidArgument},
           {{"x", "snapshots"}, Code::kInvalidArgument},
           {{"x", "snapshots/"}, Code::kInvalidArgument},
           {{"x", "snapshots/a/b"}, Code::kInvalidArgument},
           {{"", "ingests"}, Code::kInvalidArgument},
           {{std::string(241, 'k'), "snapshots/native"}, Code::kInvalidArgument},
           {{"x", "images"}, Code::kNotImplemented},
           {{"x", ""}, Code::kNotImplemented},
       }) {
    EXPECT_EQ(leases.add_resource("l", resource).code(), code) << resource.type << " " << resource.id;
    EXPECT_EQ(leases.delete_resource("l", resource).code(), code) << resource.type << " " << resource.id;
  }
  Status s = leases.add_resource("l", {"x", "images"});
  EXPECT_EQ(s.message(), "resource type images not supported yet");
  EXPECT_TRUE(leases.list_resources("l")->empty());
}

TEST_F(LeasesTest, UnknownLeaseIsNotFound) {
  Leases leases = db_->leases("ns");
  EXPECT_EQ(leases.add_resource("ghost", {"x", "ingests"}).code(), Code::kNotFound);
  EXPECT_EQ(leases.add_resource("ghost", {"x", "bogus"}).code(), Code::kNotFound) << "lease checked first";
  EXPECT_EQ(leases.delete_resource("ghost", {"x", "ingests"}).code(), Code::kNotFound);
  auto list = leases.list_resources("ghost");
  EXPECT_EQ(list.status().code(), Code::kNotFound);
  EXPECT_EQ(list.status().message(), "lease \"ghost\": not found");
}

}  // namespace
}  // namespace ctrd::metadata
