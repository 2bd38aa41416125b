// images: per-namespace image records (containerd's images.Store): a name, a
// target descriptor and labels. Obtained from DB::images(namespace); a cheap
// handle, safe to copy and to use from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "content/content.h"
#include "errdefs/errdefs.h"

namespace ctrd::metadata {

class Storage;
using Labels = content::Labels;

using Descriptor = content::Descriptor;

struct Image {
  std::string name;
  Labels labels;
  Descriptor target;
  content::Clock::time_point created_at;
  content::Clock::time_point updated_at;
};

class Images {
 public:
  Images(std::shared_ptr<Storage> storage, std::string ns)
      : storage_(std::move(storage)), ns_(std::move(ns)) {}

  // NotFound naming the image when absent.
  errdefs::StatusOr<Image> get(std::string_view name);
  // Images matching any of `filters` (fields: name, target.digest,
  // target.mediatype, labels.<key>), by name.
  errdefs::StatusOr<std::vector<Image>> list(const std::vector<std::string>& filters = {});
  // Validates as containerd does (name set, target digest valid, media type
  // set, labels); AlreadyExists for a duplicate name. Sets both times.
  // Creates the namespace when it does not exist.
  errdefs::StatusOr<Image> create(const Image& image);
  // Field paths: "labels", "labels.<key>", "target", "annotations"... as
  // containerd's; empty means every field. NotFound when absent.
  errdefs::StatusOr<Image> update(const Image& image, const std::vector<std::string>& fieldpaths);
  // NotFound when absent. What the image referenced is left to the collector.
  errdefs::Status remove(std::string_view name);

 private:
  std::shared_ptr<Storage> storage_;
  std::string ns_;
};

}  // namespace ctrd::metadata
