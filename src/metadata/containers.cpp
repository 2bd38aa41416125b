#include "metadata/containers.h"

#include "filters/filters.h"
#include "identifiers/identifiers.h"
#include "metadata/labels.h"
#include "metadata/namespaced_table.h"
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

// Rows keyed by container id; an id that is not a valid identifier names no container.
StatusOr<NamespacedTable<ContainerRecord>> container_rows(const Storage& storage, std::string_view ns) {
  return NamespacedTable<ContainerRecord>::open(
      storage, storage.tables().containers, ns,
      {.describe = [](std::string_view id) { return "container " + quoted(id); },
       .may_exist = [](std::string_view id) { return identifiers::validate(id).ok(); }});
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
  CTRD_ASSIGN_OR_RETURN(auto rows, container_rows(*storage_, ns_));
  CTRD_ASSIGN_OR_RETURN(ContainerRecord record, rows.get(id, [&] {
    return errdefs::NotFound("container " + quoted(id) + " in namespace " + quoted(ns_) + ": not found");
  }));
  return from_record(id, std::move(record));
}

StatusOr<std::vector<Container>> Containers::list(const std::vector<std::string>& filter_texts) {
  CTRD_ASSIGN_OR_RETURN(auto rows, container_rows(*storage_, ns_));
  return rows.list(filter_texts, from_record, adapt);
}

StatusOr<Container> Containers::create(const Container& container) {
  CTRD_ASSIGN_OR_RETURN(auto rows, container_rows(*storage_, ns_));
  CTRD_RETURN_IF_ERROR(validate_container(container).with_context("create container failed validation"));
  Container created = container;
  created.created_at = content::Clock::now();
  created.updated_at = created.created_at;
  ContainerRecord record = to_record(created);
  CTRD_RETURN_IF_ERROR(rows.create(container.id, record, [&] {
    return errdefs::AlreadyExists("container " + quoted(container.id) + ": already exists");
  }));
  return from_record(container.id, std::move(record));
}

StatusOr<Container> Containers::update(const Container& container,
                                       const std::vector<std::string>& fieldpaths) {
  CTRD_ASSIGN_OR_RETURN(auto rows, container_rows(*storage_, ns_));
  if (container.id.empty()) return errdefs::InvalidArgument("must specify a container id");
  auto modify = [&](ContainerRecord* record) -> Status {
    Container updated = from_record(container.id, std::move(*record));
    CTRD_RETURN_IF_ERROR(apply_fieldpaths(container, fieldpaths, &updated));
    CTRD_RETURN_IF_ERROR(validate_container(updated).with_context("update failed validation"));
    updated.updated_at = content::Clock::now();
    *record = to_record(updated);
    return Status::Ok();
  };
  // containerd words it differently when the namespace has no container at all.
  auto not_found = [&](const lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(bool any, rows.has_rows(txn));
    if (!any) {
      return errdefs::NotFound("cannot update container " + quoted(container.id) + " in namespace " +
                               quoted(ns_) + ": not found");
    }
    return errdefs::NotFound("container " + quoted(container.id) + ": not found");
  };
  CTRD_ASSIGN_OR_RETURN(ContainerRecord record, rows.update(container.id, modify, not_found));
  return from_record(container.id, std::move(record));
}

Status Containers::remove(std::string_view id) {
  CTRD_ASSIGN_OR_RETURN(auto rows, container_rows(*storage_, ns_));
  return rows.remove(id, [&](const lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(bool any, rows.has_rows(txn));
    if (!any) {
      return errdefs::NotFound("cannot delete container " + quoted(id) + " in namespace " + quoted(ns_) +
                               ": not found");
    }
    return errdefs::NotFound("container " + std::string(id) + ": not found");
  });
}

}  // namespace ctrd::metadata
