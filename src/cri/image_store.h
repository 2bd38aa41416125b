// cri/image_store: images as the CRI sees them, over containerd's image
// records in the k8s.io namespace. An image is known by its id (the digest of
// its config) and carries every record that names it: a tag
// ("docker.io/library/busybox:1.36"), a repo digest ("…/busybox@sha256:…") and
// the id itself, as containerd's CRI stores them. What the records point to
// is read through the content store (images::resolve) and cached by target
// digest: content never changes under a digest.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "errdefs/errdefs.h"
#include "images/images.h"
#include "images/platform.h"

namespace ctrd::metadata {
class DB;
}
namespace ctrd::services::images {
class ImagesService;
}

namespace ctrd::cri {

struct CriImage {
  std::string id;  // the config digest
  std::vector<std::string> repo_tags;
  std::vector<std::string> repo_digests;
  std::vector<std::string> record_names;  // every image record of it, the id's included
  uint64_t size = 0;
  ctrd::images::ImageConfig config;
  bool pinned = false;
};

// The image's user as the CRI reports it: a numeric uid, else a name. The
// group after a ':' is not part of it; an empty user is neither.
struct ImageUser {
  std::optional<int64_t> uid;
  std::string username;
};
ImageUser image_user(const std::string& user);

// Docker's normalized form of an image reference: "busybox" →
// "docker.io/library/busybox:latest"; an id ("sha256:<hex>") as it is.
// InvalidArgument for what is not a reference.
errdefs::StatusOr<std::string> normalize_reference(const std::string& ref);

class ImageStore {
 public:
  ImageStore(std::shared_ptr<metadata::DB> db, std::shared_ptr<services::images::ImagesService> images,
             ctrd::images::Platform platform);

  errdefs::StatusOr<std::vector<CriImage>> list();
  // By id, by any record's name, or by a reference that normalizes to one.
  // NotFound when nothing matches.
  errdefs::StatusOr<CriImage> get(const std::string& ref);
  // Removes every record of the image `ref` names; Ok when there is none.
  errdefs::Status remove(const std::string& ref);

 private:
  errdefs::StatusOr<std::map<std::string, CriImage>> group_by_id();
  errdefs::StatusOr<ctrd::images::ResolvedImage> resolve(const content::Descriptor& target);

  std::shared_ptr<metadata::DB> db_;
  std::shared_ptr<services::images::ImagesService> images_;
  const ctrd::images::Platform platform_;
  std::mutex mu_;
  std::map<std::string, ctrd::images::ResolvedImage> resolved_;  // by target digest
};

}  // namespace ctrd::cri
