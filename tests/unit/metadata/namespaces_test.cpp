#include <gtest/gtest.h>

#include "metadata/db.h"
#include "test_support.h"

namespace ctrd::metadata {
namespace {

using errdefs::Code;
using errdefs::Status;
using test_support::MetadataTest;
using test_support::write_blob;

using NamespacesTest = MetadataTest;

std::vector<std::string> names(const std::vector<Namespace>& namespaces) {
  std::vector<std::string> out;
  for (const auto& ns : namespaces) out.push_back(ns.name);
  return out;
}

TEST_F(NamespacesTest, CreateGetList) {
  Namespaces namespaces = db_->namespaces();
  ASSERT_TRUE(namespaces.create("zeta", {}).ok());
  ASSERT_TRUE(namespaces.create("alpha", {{"a", "1"}, {"b", "2"}}).ok());

  auto labels = namespaces.get("alpha");
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(*labels, (Labels{{"a", "1"}, {"b", "2"}}));

  auto list = namespaces.list();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(names(*list), (std::vector<std::string>{"alpha", "zeta"}));
  EXPECT_EQ((*list)[0].labels.size(), 2u);
  EXPECT_TRUE((*list)[1].labels.empty());
}

TEST_F(NamespacesTest, CreateTwiceIsAlreadyExists) {
  ASSERT_TRUE(db_->namespaces().create("dup", {}).ok());
  Status s = db_->namespaces().create("dup", {{"x", "y"}});
  EXPECT_EQ(s.code(), Code::kAlreadyExists);
  EXPECT_EQ(s.message(), "namespace \"dup\": already exists");
  EXPECT_TRUE(db_->namespaces().get("dup")->empty());
}

TEST_F(NamespacesTest, GetUnknownIsNotFound) {
  auto labels = db_->namespaces().get("nope");
  EXPECT_EQ(labels.status().code(), Code::kNotFound);
  EXPECT_EQ(labels.status().message(), "namespace \"nope\": not found");
}

TEST_F(NamespacesTest, NamesAreIdentifiers) {
  for (const std::string& good :
       std::vector<std::string>{"a", "default", "k8s.io", "moby", "a-b_c.d", std::string(76, 'x')}) {
    EXPECT_TRUE(db_->namespaces().create(good, {}).ok()) << good;
  }
  for (const std::string& bad :
       std::vector<std::string>{"", "-a", "a-", "a..b", "a b", "a/b", "ns\xc3\xa9", std::string(77, 'x')}) {
    Status s = db_->namespaces().create(bad, {});
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    if (!bad.empty()) {
      EXPECT_NE(s.message().find(bad), std::string::npos) << s.message();
    }
  }
  EXPECT_EQ(db_->namespaces().create("a..b", {}).message(),
            "identifier \"a..b\" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$");
}

TEST_F(NamespacesTest, LabelSizeIsLimited) {
  std::string key = "key-that-is-long";
  Status s = db_->namespaces().create("big", {{key, std::string(4096 - key.size() + 1, 'v')}});
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "namespace.Labels: label key and value greater than maximum size (4096 bytes), key: key-that-i");
  EXPECT_TRUE(db_->namespaces().create("big", {{key, std::string(4096 - key.size(), 'v')}}).ok());
  EXPECT_EQ(db_->namespaces().set_label("big", key, std::string(5000, 'v')).code(), Code::kInvalidArgument);
}

TEST_F(NamespacesTest, UpdateWithFieldMasks) {
  Namespaces namespaces = db_->namespaces();
  ASSERT_TRUE(namespaces.create("ns", {{"keep", "1"}, {"change", "old"}, {"drop", "x"}}).ok());

  auto labels = namespaces.update("ns", {{"change", "new"}, {"ignored", "not in mask"}},
                                  {"labels.change", "labels.drop", "labels.add"});
  ASSERT_TRUE(labels.ok()) << labels.status().to_string();
  EXPECT_EQ(*labels, (Labels{{"keep", "1"}, {"change", "new"}}));
  EXPECT_EQ(*namespaces.get("ns"), *labels);

  // No mask, or "labels": replace all.
  ASSERT_TRUE(namespaces.update("ns", {{"only", "this"}}, {}).ok());
  EXPECT_EQ(*namespaces.get("ns"), (Labels{{"only", "this"}}));
  ASSERT_TRUE(namespaces.update("ns", {{"other", "that"}, {"empty", ""}}, {"labels"}).ok());
  EXPECT_EQ(*namespaces.get("ns"), (Labels{{"other", "that"}}));

  Status bad = namespaces.update("ns", {}, {"name"}).status();
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  EXPECT_NE(bad.message().find("\"name\""), std::string::npos) << bad.message();
  EXPECT_EQ(*namespaces.get("ns"), (Labels{{"other", "that"}}));
}

TEST_F(NamespacesTest, SetLabelAndDeleteWithEmptyValue) {
  Namespaces namespaces = db_->namespaces();
  ASSERT_TRUE(namespaces.create("ns", {}).ok());
  ASSERT_TRUE(namespaces.set_label("ns", "a.b/c", "1").ok());
  ASSERT_TRUE(namespaces.set_label("ns", "z", "2").ok());
  EXPECT_EQ(*namespaces.get("ns"), (Labels{{"a.b/c", "1"}, {"z", "2"}}));
  ASSERT_TRUE(namespaces.set_label("ns", "a.b/c", "").ok());
  EXPECT_EQ(*namespaces.get("ns"), (Labels{{"z", "2"}}));
  ASSERT_TRUE(namespaces.set_labels("ns", {}).ok());
  EXPECT_TRUE(namespaces.get("ns")->empty());
}

TEST_F(NamespacesTest, LabellingAnUnknownNamespaceCreatesItLikeContainerd) {
  ASSERT_TRUE(db_->namespaces().set_label("fresh", "k", "v").ok());
  EXPECT_EQ(*db_->namespaces().get("fresh"), (Labels{{"k", "v"}}));
  EXPECT_EQ(db_->namespaces().set_label("bad name", "k", "v").code(), Code::kInvalidArgument);
}

TEST_F(NamespacesTest, RemoveUnknownIsNotFound) {
  Status s = db_->namespaces().remove("ghost");
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "namespace \"ghost\": not found");
}

TEST_F(NamespacesTest, RemoveEmptyNamespace) {
  ASSERT_TRUE(db_->namespaces().create("gone", {{"a", "b"}}).ok());
  ASSERT_TRUE(db_->namespaces().remove("gone").ok());
  EXPECT_EQ(db_->namespaces().get("gone").status().code(), Code::kNotFound);
  EXPECT_TRUE(db_->namespaces().list()->empty());
  // The name can be used again, from scratch.
  ASSERT_TRUE(db_->namespaces().create("gone", {}).ok());
  EXPECT_TRUE(db_->namespaces().get("gone")->empty());
}

TEST_F(NamespacesTest, RemoveRefusedWhileItHoldsBlobs) {
  auto store = db_->content_store("busy");
  ASSERT_TRUE(write_blob(*store, "r", "data").ok());
  Status s = db_->namespaces().remove("busy");
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_EQ(s.message(), "namespace \"busy\" must be empty, but it still has blobs");
  EXPECT_TRUE(db_->namespaces().get("busy").ok());

  ASSERT_TRUE(store->remove(test_support::sha256("data")).ok());
  EXPECT_TRUE(db_->namespaces().remove("busy").ok());
}

TEST_F(NamespacesTest, LeasesAndIngestsDoNotBlockRemovalAndGoWithIt) {
  ASSERT_TRUE(db_->leases("tmp").create("l1", {}).ok());
  ASSERT_TRUE(db_->leases("tmp").add_resource("l1", {"snap", "snapshots/native"}).ok());
  auto store = db_->content_store("tmp");
  {
    auto writer = store->writer({"ingest-1", 0, ""});
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->write("half").ok());
  }
  ASSERT_EQ(blobs_->ingest_refs().size(), 1u);

  ASSERT_TRUE(db_->namespaces().remove("tmp").ok());
  EXPECT_TRUE(blobs_->ingest_refs().empty());

  // Recreated, the namespace starts empty.
  ASSERT_TRUE(db_->namespaces().create("tmp", {}).ok());
  EXPECT_TRUE(db_->leases("tmp").list()->empty());
  EXPECT_EQ(store->status("ingest-1").status().code(), Code::kNotFound);
  EXPECT_TRUE(store->list_statuses({})->empty());
}

TEST_F(NamespacesTest, WritesCreateTheNamespaceImplicitly) {
  ASSERT_TRUE(db_->leases("by-lease").create("l", {}).ok());
  auto writer = db_->content_store("by-ingest")->writer({"ref", 0, ""});
  ASSERT_TRUE(writer.ok());
  auto list = db_->namespaces().list();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(names(*list), (std::vector<std::string>{"by-ingest", "by-lease"}));
  EXPECT_EQ(db_->namespaces().create("by-lease", {}).code(), Code::kAlreadyExists);
}

}  // namespace
}  // namespace ctrd::metadata
