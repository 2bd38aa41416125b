#include <gtest/gtest.h>

#include "metadata/db.h"
#include "test_support.h"

namespace ctrd::metadata {
namespace {

using errdefs::Code;
using test_support::MetadataTest;
using test_support::sha256;

class ImagesTest : public MetadataTest {
 protected:
  static Image image(const std::string& name, const std::string& content = "manifest") {
    Image img;
    img.name = name;
    img.target = {"application/vnd.oci.image.manifest.v1+json", sha256(content), 42, {}};
    return img;
  }
  std::vector<std::string> names(const std::vector<std::string>& filters = {}) {
    auto list = db_->images("ns").list(filters);
    EXPECT_TRUE(list.ok()) << list.status().to_string();
    std::vector<std::string> out;
    if (list.ok()) {
      for (const auto& i : *list) out.push_back(i.name);
    }
    return out;
  }
};

TEST_F(ImagesTest, CreateGetListRemove) {
  Image img = image("docker.io/library/busybox:latest");
  img.labels = {{"a", "1"}, {"empty", ""}};
  img.target.annotations = {{"org.opencontainers.image.ref.name", "latest"}};
  auto created = db_->images("ns").create(img);
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  EXPECT_EQ(created->labels, (Labels{{"a", "1"}})) << "empty values are not stored";
  EXPECT_NE(created->created_at, content::Clock::time_point());
  EXPECT_EQ(created->created_at, created->updated_at);

  auto got = db_->images("ns").get(img.name);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(got->target, img.target);
  EXPECT_EQ(got->labels, created->labels);
  EXPECT_EQ(got->created_at, created->created_at);

  EXPECT_EQ(db_->namespaces().get("ns").status().code(), Code::kOk)
      << "creating an image creates the namespace";
  EXPECT_EQ(db_->images("other").get(img.name).status().code(), Code::kNotFound)
      << "images are per namespace";

  auto again = db_->images("ns").create(img);
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(again.status().message(), "image \"docker.io/library/busybox:latest\": already exists");

  ASSERT_TRUE(db_->images("ns").remove(img.name).ok());
  auto gone = db_->images("ns").get(img.name);
  EXPECT_EQ(gone.status().code(), Code::kNotFound);
  EXPECT_EQ(gone.status().message(), "image \"docker.io/library/busybox:latest\": not found");
  EXPECT_EQ(db_->images("ns").remove(img.name).code(), Code::kNotFound);
}

TEST_F(ImagesTest, ValidationAsContainerd) {
  auto images = db_->images("ns");
  Image img = image("");
  EXPECT_EQ(images.create(img).status().message(), "image name must not be empty");
  img = image("x");
  img.target.digest = "nope";
  auto bad_digest = images.create(img);
  EXPECT_EQ(bad_digest.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(bad_digest.status().message().starts_with("Target.Digest \"nope\" invalid: "))
      << bad_digest.status().message();
  img = image("x");
  img.target.size = 0;
  EXPECT_EQ(images.create(img).status().message(), "Target.Size must be greater than zero");
  img = image("x");
  img.target.media_type = "";
  EXPECT_EQ(images.create(img).status().message(), "Target.MediaType must be set");
  img = image("x");
  img.labels = {{"k", std::string(5000, 'v')}};
  auto big = images.create(img);
  EXPECT_EQ(big.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(big.status().message().starts_with("image.Labels: ")) << big.status().message();
  EXPECT_EQ(db_->images("").create(image("x")).status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(names().empty()) << "nothing half-written";
}

TEST_F(ImagesTest, ListFilters) {
  auto images = db_->images("ns");
  Image a = image("a", "one");
  a.labels = {{"env", "prod"}};
  Image b = image("b", "two");
  b.target.media_type = "application/vnd.docker.distribution.manifest.v2+json";
  b.labels = {{"env", "dev"}};
  ASSERT_TRUE(images.create(a).ok());
  ASSERT_TRUE(images.create(b).ok());
  EXPECT_EQ(names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(names({"name==b"}), (std::vector<std::string>{"b"}));
  EXPECT_EQ(names({"labels.env==prod"}), (std::vector<std::string>{"a"}));
  EXPECT_EQ(names({"target.digest==" + sha256("two")}), (std::vector<std::string>{"b"}));
  EXPECT_EQ(names({"target.mediatype~=docker"}), (std::vector<std::string>{"b"}));
  EXPECT_EQ(names({"name==a", "name==b"}), (std::vector<std::string>{"a", "b"})) << "any filter matches";
  EXPECT_EQ(images.list({"name=="}).status().code(), Code::kInvalidArgument);
}

TEST_F(ImagesTest, UpdateFieldPaths) {
  auto images = db_->images("ns");
  Image img = image("img");
  img.labels = {{"keep", "1"}, {"drop", "2"}};
  img.target.annotations = {{"an", "1"}};
  auto created = images.create(img);
  ASSERT_TRUE(created.ok());

  Image change = image("img", "other");
  change.labels = {{"new", "3"}};
  change.target.annotations = {{"an2", "2"}};
  auto labelled = images.update(change, {"labels.new", "labels.drop"});
  ASSERT_TRUE(labelled.ok()) << labelled.status().to_string();
  EXPECT_EQ(labelled->labels, (Labels{{"keep", "1"}, {"new", "3"}}));
  EXPECT_EQ(labelled->target.digest, img.target.digest) << "target untouched";
  EXPECT_EQ(labelled->created_at, created->created_at);
  EXPECT_GE(labelled->updated_at, created->updated_at);

  auto annotated = images.update(change, {"annotations.an2"});
  ASSERT_TRUE(annotated.ok());
  EXPECT_EQ(annotated->target.annotations, (Labels{{"an", "1"}, {"an2", "2"}}));

  auto retargeted = images.update(change, {"target"});
  ASSERT_TRUE(retargeted.ok());
  EXPECT_EQ(retargeted->target, change.target);
  EXPECT_EQ(images.get("img")->target, change.target) << "stored";

  auto replaced = images.update(img, {});
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->labels, img.labels);
  EXPECT_EQ(replaced->target, img.target);
  EXPECT_EQ(replaced->created_at, created->created_at);

  auto bad = images.update(img, {"name"});
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "cannot update \"name\" field on image \"img\"");
  Image invalid = img;
  invalid.target.size = -1;
  EXPECT_EQ(images.update(invalid, {"target"}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(images.get("img")->target, img.target) << "a refused update changes nothing";
  EXPECT_EQ(images.update(image("missing"), {}).status().code(), Code::kNotFound);
  EXPECT_EQ(images.update(image(""), {}).status().message(), "image name is required for update");
}

TEST_F(ImagesTest, NamespaceRemoveRefusedWhileImagesExist) {
  ASSERT_TRUE(db_->images("busy").create(image("img")).ok());
  auto s = db_->namespaces().remove("busy");
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_EQ(s.message(), "namespace \"busy\" must be empty, but it still has images");
  ASSERT_TRUE(db_->images("busy").remove("img").ok());
  EXPECT_TRUE(db_->namespaces().remove("busy").ok());
}

TEST_F(ImagesTest, SurvivesReopen) {
  Image img = image("img");
  img.labels = {{"a", "b"}};
  ASSERT_TRUE(db_->images("ns").create(img).ok());
  reopen();
  auto got = db_->images("ns").get("img");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->target, img.target);
  EXPECT_EQ(got->labels, img.labels);
}

}  // namespace
}  // namespace ctrd::metadata
