#include "metadata/leases.h"

#include "filters/filters.h"
#include "metadata/labels.h"
#include "metadata/namespaced_table.h"
#include "metadata/storage.h"

namespace ctrd::metadata {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

using errdefs::quoted;

Status lease_not_found(std::string_view id) {
  return errdefs::NotFound("lease " + quoted(id) + ": not found");
}

// Rows keyed by lease id; ids are checked by validate_lease_id before any look-up.
StatusOr<NamespacedTable<LeaseRecord>> lease_rows(const Storage& storage, std::string_view ns) {
  return NamespacedTable<LeaseRecord>::open(
      storage, storage.tables().leases, ns,
      // Named by their row key ("<ns>/<id>" in the message), as they always have been.
      {.describe = [ns = std::string(ns)](std::string_view id) { return keys::join(ns, id); }});
}

// NotFound unless lease `id` exists, as `txn` sees it.
Status require_lease(const NamespacedTable<LeaseRecord>& rows, const lmdb::Txn& txn, std::string_view id) {
  CTRD_ASSIGN_OR_RETURN(bool exists, rows.contains(txn, id));
  return exists ? Status::Ok() : lease_not_found(id);
}

Status validate_lease_id(std::string_view id) {
  if (id.empty()) return errdefs::InvalidArgument("lease id must be provided");
  if (id.size() > keys::kMaxLeaseIdLength) {
    return errdefs::InvalidArgument("lease id " + quoted(id) + " greater than maximum length (" +
                                    std::to_string(keys::kMaxLeaseIdLength) + " bytes)");
  }
  if (id.find(keys::kSeparator) != std::string_view::npos) {
    return errdefs::InvalidArgument("lease id " + quoted(id) + " must not contain NUL");
  }
  return Status::Ok();
}

// Checks a resource and returns it as stored: content ids are digests, types
// containerd knows, ids that fit the key.
Status validate_resource(const LeaseResource& r) {
  std::string_view type = r.type;
  if (type == resource_type::kContent) {
    if (Status s = content::validate_digest(r.id); !s.ok()) {
      return errdefs::InvalidArgument("invalid content resource id " + r.id + ": " + s.message());
    }
  } else if (type == resource_type::kIngests) {
    // Any ref.
  } else if (type.starts_with(resource_type::kSnapshotsPrefix) || type == "snapshots") {
    std::string_view snapshotter = type.substr(std::min(type.size(), resource_type::kSnapshotsPrefix.size()));
    if (type == "snapshots" || snapshotter.empty() || snapshotter.find('/') != std::string_view::npos) {
      return errdefs::InvalidArgument("invalid snapshot resource type " + r.type);
    }
  } else if (type.starts_with("content/") || type.starts_with("ingests/")) {
    return errdefs::InvalidArgument("invalid resource type " + r.type);
  } else {
    return errdefs::NotImplemented("resource type " + r.type + " not supported yet");
  }
  if (type.size() > keys::kMaxResourceTypeLength || type.find(keys::kSeparator) != std::string_view::npos) {
    return errdefs::InvalidArgument("invalid resource type " + quoted(r.type) + ": too long or contains NUL");
  }
  if (r.id.empty()) return errdefs::InvalidArgument("resource id must not be empty");
  if (r.id.size() > keys::kMaxRefLength) {
    return errdefs::InvalidArgument("resource id " + quoted(r.id) + " greater than maximum length (" +
                                    std::to_string(keys::kMaxRefLength) + " bytes)");
  }
  return Status::Ok();
}

filters::Adaptor adapt(const Lease& lease) {
  return [&lease](const std::vector<std::string>& path) -> std::optional<std::string> {
    if (path.empty()) return std::nullopt;
    if (path[0] == "id") return lease.id.empty() ? std::nullopt : std::optional(lease.id);
    if (path[0] == "labels") return label_field(path, lease.labels);
    return std::nullopt;
  };
}

}  // namespace

StatusOr<Lease> Leases::create(std::string_view id, const Labels& labels) {
  CTRD_ASSIGN_OR_RETURN(auto rows, lease_rows(*storage_, ns_));
  CTRD_RETURN_IF_ERROR(validate_lease_id(id));
  CTRD_RETURN_IF_ERROR(validate_labels(labels, "lease.Labels"));
  LeaseRecord record{content::Clock::now(), labels};
  drop_empty_labels(&record.labels);
  CTRD_RETURN_IF_ERROR(rows.create(
      id, record, [&] { return errdefs::AlreadyExists("lease " + quoted(id) + ": already exists"); }));
  return Lease{std::string(id), record.created_at, std::move(record.labels)};
}

Status Leases::remove(std::string_view id) {
  CTRD_ASSIGN_OR_RETURN(auto rows, lease_rows(*storage_, ns_));
  CTRD_RETURN_IF_ERROR(validate_lease_id(id));
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(bool existed, rows.erase(txn, id));
    if (!existed) return lease_not_found(id);
    CTRD_RETURN_IF_ERROR(
        txn.erase_prefix(storage_->tables().lease_resources, keys::join(ns_, id, "")).status());
    return Status::Ok();
  }));
  storage_->notify_mutation(true);
  return Status::Ok();
}

StatusOr<std::vector<Lease>> Leases::list(const std::vector<std::string>& filter_texts) {
  CTRD_ASSIGN_OR_RETURN(auto rows, lease_rows(*storage_, ns_));
  auto to_lease = [](std::string_view id, LeaseRecord record) {
    return Lease{std::string(id), record.created_at, std::move(record.labels)};
  };
  return rows.list(filter_texts, to_lease, adapt);
}

Status Leases::add_resource(std::string_view lease_id, const LeaseResource& resource) {
  CTRD_ASSIGN_OR_RETURN(auto rows, lease_rows(*storage_, ns_));
  CTRD_RETURN_IF_ERROR(validate_lease_id(lease_id));
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_RETURN_IF_ERROR(require_lease(rows, txn, lease_id));
    // Checked after the lease, as containerd does: an unknown lease is NotFound
    // whatever the resource.
    CTRD_RETURN_IF_ERROR(validate_resource(resource));
    return txn.put(storage_->tables().lease_resources, keys::join(ns_, lease_id, resource.type, resource.id),
                   "");
  }));
  storage_->notify_mutation(false);
  return Status::Ok();
}

Status Leases::delete_resource(std::string_view lease_id, const LeaseResource& resource) {
  CTRD_ASSIGN_OR_RETURN(auto rows, lease_rows(*storage_, ns_));
  CTRD_RETURN_IF_ERROR(validate_lease_id(lease_id));
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_RETURN_IF_ERROR(require_lease(rows, txn, lease_id));
    CTRD_RETURN_IF_ERROR(validate_resource(resource));
    CTRD_RETURN_IF_ERROR(txn.remove(storage_->tables().lease_resources,
                                    keys::join(ns_, lease_id, resource.type, resource.id)));
    return Status::Ok();
  }));
  storage_->notify_mutation(true);
  return Status::Ok();
}

StatusOr<std::vector<LeaseResource>> Leases::list_resources(std::string_view lease_id) {
  CTRD_ASSIGN_OR_RETURN(auto rows, lease_rows(*storage_, ns_));
  CTRD_RETURN_IF_ERROR(validate_lease_id(lease_id));
  std::vector<LeaseResource> out;
  CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) -> Status {
    CTRD_RETURN_IF_ERROR(require_lease(rows, txn, lease_id));
    std::string prefix = keys::join(ns_, lease_id, "");
    return txn.scan_prefix(
        storage_->tables().lease_resources, prefix, [&](std::string_view key, std::string_view) {
          std::string_view rest = key.substr(prefix.size());
          size_t split = rest.find(keys::kSeparator);
          if (split == std::string_view::npos) {
            return errdefs::DataLoss("corrupt lease resource key in lease " + quoted(lease_id));
          }
          out.push_back({std::string(rest.substr(split + 1)), std::string(rest.substr(0, split))});
          return Status::Ok();
        });
  }));
  return out;
}

}  // namespace ctrd::metadata
