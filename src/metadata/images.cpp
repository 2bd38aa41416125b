#include "metadata/images.h"

#include "filters/filters.h"
#include "metadata/labels.h"
#include "metadata/namespaced_table.h"
#include "metadata/storage.h"

namespace ctrd::metadata {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

using errdefs::quoted;

Status image_not_found(std::string_view name) {
  return errdefs::NotFound("image " + quoted(name) + ": not found");
}

// Rows keyed by image name; a name too long for the key names no image.
StatusOr<NamespacedTable<ImageRecord>> image_rows(const Storage& storage, std::string_view ns) {
  return NamespacedTable<ImageRecord>::open(
      storage, storage.tables().images, ns,
      {.describe = [](std::string_view name) { return "image " + quoted(name); },
       .may_exist =
           [](std::string_view name) { return !name.empty() && name.size() <= keys::kMaxImageNameLength; }});
}

Status validate_target(const Descriptor& target) {
  // Only what is stored is checked, as containerd does.
  if (Status s = content::validate_digest(target.digest); !s.ok()) {
    return errdefs::InvalidArgument("Target.Digest " + quoted(target.digest) + " invalid: " + s.message());
  }
  if (target.size <= 0) return errdefs::InvalidArgument("Target.Size must be greater than zero");
  if (target.media_type.empty()) return errdefs::InvalidArgument("Target.MediaType must be set");
  return Status::Ok();
}

Status validate_image(const Image& image) {
  if (image.name.empty()) return errdefs::InvalidArgument("image name must not be empty");
  // The name is part of the row's key.
  if (image.name.size() > keys::kMaxImageNameLength) {
    return errdefs::InvalidArgument("image name " + quoted(image.name) + " greater than maximum length (" +
                                    std::to_string(keys::kMaxImageNameLength) + " bytes)");
  }
  CTRD_RETURN_IF_ERROR(validate_labels(image.labels, "image.Labels"));
  return validate_target(image.target);
}

ImageRecord to_record(const Image& image) {
  ImageRecord record{
      image.target.media_type, image.target.digest, image.target.size, image.target.annotations,
      image.created_at,        image.updated_at,    image.labels};
  // Empty values mean "unset", as containerd's bucket writer treats them.
  drop_empty_labels(&record.labels);
  drop_empty_labels(&record.annotations);
  return record;
}

Image from_record(std::string_view name, ImageRecord record) {
  return {
      std::string(name),
      std::move(record.labels),
      {std::move(record.media_type), std::move(record.digest), record.size, std::move(record.annotations)},
      record.created_at,
      record.updated_at};
}

filters::Adaptor adapt(const Image& image) {
  return [&image](const std::vector<std::string>& path) -> std::optional<std::string> {
    if (path.empty()) return std::nullopt;
    auto non_empty = [](const std::string& v) { return v.empty() ? std::nullopt : std::optional(v); };
    if (path[0] == "name") return non_empty(image.name);
    if (path[0] == "target" && path.size() >= 2) {
      if (path[1] == "digest") return non_empty(image.target.digest);
      if (path[1] == "mediatype") return non_empty(image.target.media_type);
      return std::nullopt;
    }
    if (path[0] == "labels") return label_field(path, image.labels);
    if (path[0] == "annotations") return label_field(path, image.target.annotations);
    return std::nullopt;
  };
}

// Applies containerd's field mask for image updates onto `stored`.
Status apply_fieldpaths(const Image& image, const std::vector<std::string>& fieldpaths, Image* stored) {
  if (fieldpaths.empty()) {
    Image replaced = image;
    replaced.created_at = stored->created_at;
    *stored = std::move(replaced);
    return Status::Ok();
  }
  for (const auto& path : fieldpaths) {
    if (apply_label_path(path, image.labels, &stored->labels)) continue;
    if (path.starts_with("annotations.")) {
      std::string key = path.substr(std::string_view("annotations.").size());
      auto it = image.target.annotations.find(key);
      stored->target.annotations[key] = it == image.target.annotations.end() ? std::string() : it->second;
    } else if (path == "target") {
      // Replaced as a unit: digest, size and media type only make sense together.
      stored->target = image.target;
    } else if (path == "annotations") {
      stored->target.annotations = image.target.annotations;
    } else {
      return errdefs::InvalidArgument("cannot update " + quoted(path) + " field on image " +
                                      quoted(image.name));
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Image> Images::get(std::string_view name) {
  CTRD_ASSIGN_OR_RETURN(auto rows, image_rows(*storage_, ns_));
  CTRD_ASSIGN_OR_RETURN(ImageRecord record, rows.get(name, [&] { return image_not_found(name); }));
  return from_record(name, std::move(record));
}

StatusOr<std::vector<Image>> Images::list(const std::vector<std::string>& filter_texts) {
  CTRD_ASSIGN_OR_RETURN(auto rows, image_rows(*storage_, ns_));
  return rows.list(filter_texts, from_record, adapt);
}

StatusOr<Image> Images::create(const Image& image) {
  CTRD_ASSIGN_OR_RETURN(auto rows, image_rows(*storage_, ns_));
  CTRD_RETURN_IF_ERROR(validate_image(image));
  Image created = image;
  created.created_at = content::Clock::now();
  created.updated_at = created.created_at;
  ImageRecord record = to_record(created);
  CTRD_RETURN_IF_ERROR(rows.create(image.name, record, [&] {
    return errdefs::AlreadyExists("image " + quoted(image.name) + ": already exists");
  }));
  return from_record(image.name, std::move(record));
}

StatusOr<Image> Images::update(const Image& image, const std::vector<std::string>& fieldpaths) {
  CTRD_ASSIGN_OR_RETURN(auto rows, image_rows(*storage_, ns_));
  if (image.name.empty()) return errdefs::InvalidArgument("image name is required for update");
  auto modify = [&](ImageRecord* record) -> Status {
    Image updated = from_record(image.name, std::move(*record));
    CTRD_RETURN_IF_ERROR(apply_fieldpaths(image, fieldpaths, &updated));
    CTRD_RETURN_IF_ERROR(validate_image(updated));
    updated.updated_at = content::Clock::now();
    *record = to_record(updated);
    return Status::Ok();
  };
  CTRD_ASSIGN_OR_RETURN(ImageRecord record, rows.update(image.name, modify, [&](const lmdb::Txn&) {
    return image_not_found(image.name);
  }));
  return from_record(image.name, std::move(record));
}

Status Images::remove(std::string_view name) {
  CTRD_ASSIGN_OR_RETURN(auto rows, image_rows(*storage_, ns_));
  return rows.remove(name, [&](const lmdb::Txn&) { return image_not_found(name); });
}

}  // namespace ctrd::metadata
