#include "metadata/containers.h"

#include "filters/filters.h"
#include "identifiers/identifiers.h"
#include "metadata/labels.h"
#include "metadata/storage.h"

namespace ctrd::metadata {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

using errdefs::quoted;

AnyRecord to_any_record(const AnyValue& any) { return {any.type_url, any.value}; }
AnyValue from_any_record(AnyRecord any) { return {std::move(any.type_url), std::move(any.value)}; }
bool is_set(const AnyValue& any) { return !any.type_url.empty() || !any.value.empty(); }

Status validate_container(const Container& container) {
  CTRD_RETURN_IF_ERROR(identifiers::validate(container.id).with_context("container.ID"));
  for (const auto& [name, extension] : container.extensions) {
    (void)extension;
    if (name.empty()) return errdefs::InvalidArgument("container.Extension keys must not be zero-length");
  }
  // The image is not checked, as in containerd.
  CTRD_RETURN_IF_ERROR(validate_labels(container.labels, "containers.Labels"));
  if (container.runtime.name.empty()) return errdefs::InvalidArgument("container.Runtime.Name must be set");
  if (!is_set(container.spec)) return errdefs::InvalidArgument("container.Spec must be set");
  if (!container.snapshot_key.empty() && container.snapshotter.empty()) {
    return errdefs::InvalidArgument("container.Snapshotter must be set if container.SnapshotKey is set");
  }
  return Status::Ok();
}

ContainerRecord to_record(const Container& c) {
  ContainerRecord record{c.labels,
                         c.image,
                         c.runtime.name,
                         to_any_record(c.runtime.options),
                         to_any_record(c.spec),
                         c.snapshotter,
                         c.snapshot_key,
                         c.created_at,
                         c.updated_at,
                         {}};
  for (const auto& [name, any] : c.extensions) record.extensions[name] = to_any_record(any);
  drop_empty_labels(&record.labels);
  return record;
}

Container from_record(std::string_view id, ContainerRecord record) {
  Container c;
  c.id = id;
  c.labels = std::move(record.labels);
  c.image = std::move(record.image);
  c.runtime = {std::move(record.runtime_name), from_any_record(std::move(record.runtime_options))};
  c.spec = from_any_record(std::move(record.spec));
  c.snapshotter = std::move(record.snapshotter);
  c.snapshot_key = std::move(record.snapshot_key);
  c.created_at = record.created_at;
  c.updated_at = record.updated_at;
  for (auto& [name, any] : record.extensions) c.extensions[name] = from_any_record(std::move(any));
  return c;
}

filters::Adaptor adapt(const Container& c) {
  return [&c](const std::vector<std::string>& path) -> std::optional<std::string> {
    if (path.empty()) return std::nullopt;
    auto non_empty = [](const std::string& v) { return v.empty() ? std::nullopt : std::optional(v); };
    if (path[0] == "id") return non_empty(c.id);
    if (path[0] == "runtime") {
      if (path.size() >= 2 && path[1] == "name") return non_empty(c.runtime.name);
      return std::nullopt;
    }
    if (path[0] == "image") return non_empty(c.image);
    if (path[0] == "snapshotter") return non_empty(c.snapshotter);
    if (path[0] == "snapshotkey") return non_empty(c.snapshot_key);
    if (path[0] == "labels") return label_field(path, c.labels);
    return std::nullopt;
  };
}

// Applies containerd's field mask for container updates onto `stored`.
Status apply_fieldpaths(const Container& c, std::vector<std::string> fieldpaths, Container* stored) {
  if (fieldpaths.empty()) {
    // A full replace covers only the mutable fields; the immutable ones must
    // match so that they may become mutable later without changing meaning.
    fieldpaths = {"labels", "spec", "extensions", "image", "snapshotkey"};
    if (stored->snapshotter != c.snapshotter) {
      return errdefs::InvalidArgument("container.Snapshotter field is immutable");
    }
    if (stored->runtime.name != c.runtime.name) {
      return errdefs::InvalidArgument("container.Runtime.Name field is immutable");
    }
  }
  for (const auto& path : fieldpaths) {
    if (apply_label_path(path, c.labels, &stored->labels)) continue;
    if (path.starts_with("extensions.")) {
      std::string key = path.substr(std::string_view("extensions.").size());
      auto it = c.extensions.find(key);
      if (it == c.extensions.end()) {
        stored->extensions.erase(key);
      } else {
        stored->extensions[key] = it->second;
      }
    } else if (path == "spec") {
      stored->spec = c.spec;
    } else if (path == "extensions") {
      stored->extensions = c.extensions;
    } else if (path == "image") {
      stored->image = c.image;
    } else if (path == "snapshotkey") {
      stored->snapshot_key = c.snapshot_key;
    } else {
      return errdefs::InvalidArgument("cannot update " + quoted(path) + " field on " + quoted(c.id));
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Container> Containers::get(std::string_view id) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  Status not_found =
      errdefs::NotFound("container " + quoted(id) + " in namespace " + quoted(ns_) + ": not found");
  if (!identifiers::validate(id).ok()) return not_found;
  ContainerRecord record;
  CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(storage_->tables().containers, keys::join(ns_, id)));
    if (!stored) return not_found;
    return decode(*stored, "container " + quoted(id), &record);
  }));
  return from_record(id, std::move(record));
}

StatusOr<std::vector<Container>> Containers::list(const std::vector<std::string>& filter_texts) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  auto filter = filters::parse_all(filter_texts);
  if (!filter.ok()) return errdefs::InvalidArgument(filter.status().message());
  std::vector<Container> out;
  CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) -> Status {
    std::string prefix = keys::namespace_prefix(ns_);
    return txn.scan_prefix(storage_->tables().containers, prefix,
                           [&](std::string_view key, std::string_view value) {
                             std::string_view id = key.substr(prefix.size());
                             ContainerRecord record;
                             // The error's wording is built only when there is an error.
                             if (Status s = decode(value, "", &record); !s.ok()) {
                               return errdefs::DataLoss("container " + quoted(id) + ": " + s.message());
                             }
                             Container c = from_record(id, std::move(record));
                             if (filter->empty() || filter->match(adapt(c))) out.push_back(std::move(c));
                             return Status::Ok();
                           });
  }));
  return out;
}

StatusOr<Container> Containers::create(const Container& container) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  CTRD_RETURN_IF_ERROR(validate_container(container).with_context("create container failed validation"));
  Container created = container;
  created.created_at = content::Clock::now();
  created.updated_at = created.created_at;
  ContainerRecord record = to_record(created);
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_RETURN_IF_ERROR(storage_->ensure_namespace(txn, ns_));
    CTRD_ASSIGN_OR_RETURN(bool added, txn.put_new(storage_->tables().containers,
                                                  keys::join(ns_, container.id), encode(record)));
    if (!added) return errdefs::AlreadyExists("container " + quoted(container.id) + ": already exists");
    return Status::Ok();
  }));
  storage_->notify_mutation(false);
  return from_record(container.id, std::move(record));
}

StatusOr<Container> Containers::update(const Container& container,
                                       const std::vector<std::string>& fieldpaths) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  if (container.id.empty()) return errdefs::InvalidArgument("must specify a container id");
  ContainerRecord record;
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    const Tables& tables = storage_->tables();
    std::string key = keys::join(ns_, container.id);
    std::optional<std::string_view> stored;
    if (identifiers::validate(container.id).ok()) {
      CTRD_ASSIGN_OR_RETURN(stored, txn.get(tables.containers, key));
    }
    if (!stored) {
      CTRD_ASSIGN_OR_RETURN(bool any, txn.has_prefix(tables.containers, keys::namespace_prefix(ns_)));
      if (!any) {
        return errdefs::NotFound("cannot update container " + quoted(container.id) + " in namespace " +
                                 quoted(ns_) + ": not found");
      }
      return errdefs::NotFound("container " + quoted(container.id) + ": not found");
    }
    CTRD_RETURN_IF_ERROR(decode(*stored, "container " + quoted(container.id), &record));
    Container updated = from_record(container.id, std::move(record));
    CTRD_RETURN_IF_ERROR(apply_fieldpaths(container, fieldpaths, &updated));
    CTRD_RETURN_IF_ERROR(validate_container(updated).with_context("update failed validation"));
    updated.updated_at = content::Clock::now();
    record = to_record(updated);
    return txn.put(tables.containers, key, encode(record));
  }));
  storage_->notify_mutation(false);
  return from_record(container.id, std::move(record));
}

Status Containers::remove(std::string_view id) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    const Tables& tables = storage_->tables();
    bool existed = false;
    if (identifiers::validate(id).ok()) {
      CTRD_ASSIGN_OR_RETURN(existed, txn.erase(tables.containers, keys::join(ns_, id)));
    }
    if (existed) return Status::Ok();
    CTRD_ASSIGN_OR_RETURN(bool any, txn.has_prefix(tables.containers, keys::namespace_prefix(ns_)));
    if (!any) {
      return errdefs::NotFound("cannot delete container " + quoted(id) + " in namespace " + quoted(ns_) +
                               ": not found");
    }
    return errdefs::NotFound("container " + std::string(id) + ": not found");
  }));
  storage_->notify_mutation(true);
  return Status::Ok();
}

}  // namespace ctrd::metadata
