#include "metadata/leases.h"

#include "filters/filters.h"
#include "metadata/labels.h"
#include "metadata/storage.h"

namespace ctrd::metadata {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

using errdefs::quoted;

Status lease_not_found(std::string_view id) {
  return errdefs::NotFound("lease " + quoted(id) + ": not found");
}

// NotFound unless lease `id` exists in namespace `ns`, as `txn` sees it.
Status require_lease(const Storage& storage, const lmdb::Txn& txn, std::string_view ns, std::string_view id) {
  CTRD_ASSIGN_OR_RETURN(auto lease, txn.get(storage.tables().leases, keys::join(ns, id)));
  return lease ? Status::Ok() : lease_not_found(id);
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
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  CTRD_RETURN_IF_ERROR(validate_lease_id(id));
  CTRD_RETURN_IF_ERROR(validate_labels(labels, "lease.Labels"));
  LeaseRecord record{content::Clock::now(), labels};
  drop_empty_labels(&record.labels);
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_RETURN_IF_ERROR(storage_->ensure_namespace(txn, ns_));
    CTRD_ASSIGN_OR_RETURN(bool created,
                          txn.put_new(storage_->tables().leases, keys::join(ns_, id), encode(record)));
    if (!created) return errdefs::AlreadyExists("lease " + quoted(id) + ": already exists");
    return Status::Ok();
  }));
  storage_->notify_mutation(false);
  return Lease{std::string(id), record.created_at, std::move(record.labels)};
}

Status Leases::remove(std::string_view id) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  CTRD_RETURN_IF_ERROR(validate_lease_id(id));
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(bool existed, txn.erase(storage_->tables().leases, keys::join(ns_, id)));
    if (!existed) return lease_not_found(id);
    CTRD_RETURN_IF_ERROR(
        txn.erase_prefix(storage_->tables().lease_resources, keys::join(ns_, id, "")).status());
    return Status::Ok();
  }));
  storage_->notify_mutation(true);
  return Status::Ok();
}

StatusOr<std::vector<Lease>> Leases::list(const std::vector<std::string>& filter_texts) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  auto filter = filters::parse_all(filter_texts);
  if (!filter.ok()) return errdefs::InvalidArgument(filter.status().message());
  std::vector<Lease> out;
  CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) -> Status {
    std::string prefix = keys::namespace_prefix(ns_);
    return txn.scan_prefix(
        storage_->tables().leases, prefix, [&](std::string_view key, std::string_view value) {
          LeaseRecord record;
          CTRD_RETURN_IF_ERROR(decode(value, key, &record));
          Lease lease{std::string(key.substr(prefix.size())), record.created_at, std::move(record.labels)};
          if (filter->match(adapt(lease))) out.push_back(std::move(lease));
          return Status::Ok();
        });
  }));
  return out;
}

Status Leases::add_resource(std::string_view lease_id, const LeaseResource& resource) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  CTRD_RETURN_IF_ERROR(validate_lease_id(lease_id));
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_RETURN_IF_ERROR(require_lease(*storage_, txn, ns_, lease_id));
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
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  CTRD_RETURN_IF_ERROR(validate_lease_id(lease_id));
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_RETURN_IF_ERROR(require_lease(*storage_, txn, ns_, lease_id));
    CTRD_RETURN_IF_ERROR(validate_resource(resource));
    CTRD_RETURN_IF_ERROR(txn.remove(storage_->tables().lease_resources,
                                    keys::join(ns_, lease_id, resource.type, resource.id)));
    return Status::Ok();
  }));
  storage_->notify_mutation(true);
  return Status::Ok();
}

StatusOr<std::vector<LeaseResource>> Leases::list_resources(std::string_view lease_id) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  CTRD_RETURN_IF_ERROR(validate_lease_id(lease_id));
  std::vector<LeaseResource> out;
  CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) -> Status {
    CTRD_RETURN_IF_ERROR(require_lease(*storage_, txn, ns_, lease_id));
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
