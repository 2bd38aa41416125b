#include "metadata/snapshotter.h"

#include <mutex>
#include <shared_mutex>

#include "filters/filters.h"
#include "log/log.h"
#include "metadata/labels.h"
#include "metadata/leases.h"
#include "metadata/namespaced_table.h"
#include "metadata/storage.h"

namespace ctrd::metadata {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

using errdefs::quoted;

Status snapshot_not_found(std::string_view key) {
  return errdefs::NotFound("snapshot " + std::string(key) + " does not exist: not found");
}

// Keys are parts of row keys: non-empty, NUL-free and short enough.
Status validate_key(std::string_view key, std::string_view what) {
  if (key.empty()) return errdefs::InvalidArgument("snapshot " + std::string(what) + " must not be empty");
  if (key.size() > keys::kMaxSnapshotKeyLength) {
    return errdefs::InvalidArgument("snapshot " + std::string(what) + " " + quoted(key) +
                                    " greater than maximum length (" +
                                    std::to_string(keys::kMaxSnapshotKeyLength) + " bytes)");
  }
  if (key.find(keys::kSeparator) != std::string_view::npos) {
    return errdefs::InvalidArgument("snapshot " + std::string(what) + " " + quoted(key) +
                                    " must not contain NUL");
  }
  return Status::Ok();
}

using SnapshotRows = NamespacedTable<SnapshotRecord>;

// The namespace's snapshots in snapshotter `snapshotter`, keyed by snapshot
// key; a key that cannot be valid names no snapshot.
StatusOr<SnapshotRows> snapshot_rows(const Storage& storage, std::string_view ns,
                                     std::string_view snapshotter) {
  return SnapshotRows::open(
      storage, storage.tables().snapshots, ns, snapshotter,
      {.describe = [](std::string_view key) { return "snapshot " + quoted(key); },
       .may_exist = [](std::string_view key) { return validate_key(key, "key").ok(); }});
}

// The backend's view of a snapshot with the namespace's names, times and
// labels laid over it (the namespace's labels win).
snapshots::Info overlay(snapshots::Info backend, std::string_view key, const SnapshotRecord& record) {
  backend.name = key;
  backend.parent = record.parent;
  backend.created_at = record.created_at;
  backend.updated_at = record.updated_at;
  for (const auto& [k, v] : record.labels) backend.labels[k] = v;
  return backend;
}

}  // namespace

snapshots::Labels inherited_labels(const snapshots::Labels& labels) {
  snapshots::Labels out;
  for (const auto& [k, v] : labels) {
    if (k == kLabelSnapshotRef || k.starts_with(kInheritedLabelsPrefix)) out[k] = v;
  }
  return out;
}

StatusOr<std::string> NamespacedSnapshotter::resolve(std::string_view key) const {
  CTRD_ASSIGN_OR_RETURN(auto rows, snapshot_rows(*storage_, ns_, name_));
  CTRD_ASSIGN_OR_RETURN(SnapshotRecord record, rows.get(key, [&] { return snapshot_not_found(key); }));
  return std::move(record.backend_key);
}

StatusOr<snapshots::Info> NamespacedSnapshotter::stat(std::string_view key) {
  CTRD_ASSIGN_OR_RETURN(auto rows, snapshot_rows(*storage_, ns_, name_));
  CTRD_ASSIGN_OR_RETURN(SnapshotRecord record, rows.get(key, [&] { return snapshot_not_found(key); }));
  CTRD_ASSIGN_OR_RETURN(snapshots::Info info, backend_.snapshotter->stat(record.backend_key));
  return overlay(std::move(info), key, record);
}

StatusOr<snapshots::Info> NamespacedSnapshotter::update(const snapshots::Info& info,
                                                        const std::vector<std::string>& fieldpaths) {
  CTRD_ASSIGN_OR_RETURN(auto rows, snapshot_rows(*storage_, ns_, name_));
  if (info.name.empty()) return errdefs::InvalidArgument("snapshot name must not be empty");
  if (!rows.may_exist(info.name)) return snapshot_not_found(info.name);
  std::shared_lock hold(backend_.lock);
  SnapshotRecord record;
  snapshots::Info backend_info;
  bool backend_updated = false;
  // Not rows.update(): the backend is updated after the row is written, in the
  // same transaction.
  Status s = storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(auto stored, rows.find(txn, info.name));
    if (!stored) return snapshot_not_found(info.name);
    record = std::move(*stored);
    if (fieldpaths.empty()) record.labels = info.labels;
    for (const auto& path : fieldpaths) {
      if (!apply_label_path(path, info.labels, &record.labels)) {
        return errdefs::InvalidArgument("cannot update " + quoted(path) + " field on snapshot " +
                                        quoted(info.name));
      }
    }
    drop_empty_labels(&record.labels);
    CTRD_RETURN_IF_ERROR(validate_labels(record.labels, "info.Labels"));
    record.updated_at = Clock::now();
    CTRD_RETURN_IF_ERROR(rows.put(txn, info.name, record));
    // Inside the transaction, as containerd does, so the two stores rarely
    // disagree: a failing backend leaves the row unchanged.
    snapshots::Info inner;
    inner.name = record.backend_key;
    inner.labels = inherited_labels(record.labels);
    CTRD_ASSIGN_OR_RETURN(backend_info, backend_.snapshotter->update(inner, fieldpaths));
    backend_updated = true;
    return Status::Ok();
  });
  if (!s.ok()) {
    if (backend_updated) {
      log::error("transaction failed after updating snapshot backend",
                 {{"snapshotter", name_}, {"key", info.name}, {"error", s.to_string()}});
    }
    return s;
  }
  storage_->notify_mutation(false);
  return overlay(std::move(backend_info), info.name, record);
}

StatusOr<snapshots::Usage> NamespacedSnapshotter::usage(std::string_view key) {
  CTRD_ASSIGN_OR_RETURN(std::string backend_key, resolve(key));
  return backend_.snapshotter->usage(backend_key);
}

StatusOr<std::vector<mount::Mount>> NamespacedSnapshotter::mounts(std::string_view key) {
  CTRD_ASSIGN_OR_RETURN(std::string backend_key, resolve(key));
  return backend_.snapshotter->mounts(backend_key);
}

StatusOr<std::vector<mount::Mount>> NamespacedSnapshotter::prepare(std::string_view key,
                                                                   std::string_view parent,
                                                                   const snapshots::Labels& labels) {
  return create(key, parent, labels, false);
}

StatusOr<std::vector<mount::Mount>> NamespacedSnapshotter::view(std::string_view key, std::string_view parent,
                                                                const snapshots::Labels& labels) {
  return create(key, parent, labels, true);
}

StatusOr<std::vector<mount::Mount>> NamespacedSnapshotter::create(std::string_view key_in,
                                                                  std::string_view parent,
                                                                  const snapshots::Labels& labels_in,
                                                                  bool readonly) {
  CTRD_ASSIGN_OR_RETURN(auto rows, snapshot_rows(*storage_, ns_, name_));
  CTRD_RETURN_IF_ERROR(validate_key(key_in, "key"));
  if (!parent.empty()) CTRD_RETURN_IF_ERROR(validate_key(parent, "parent"));
  CTRD_RETURN_IF_ERROR(validate_labels(labels_in, "info.Labels"));
  snapshots::Labels labels = labels_in;
  drop_empty_labels(&labels);
  std::string key(key_in);
  std::string target = labels.count(std::string(kLabelSnapshotRef)) != 0
                           ? labels[std::string(kLabelSnapshotRef)]
                           : std::string();
  if (!target.empty()) CTRD_RETURN_IF_ERROR(validate_key(target, "target"));
  const Tables& tables = storage_->tables();
  snapshots::Snapshotter& backend = *backend_.snapshotter;

  // Held until the snapshot is recorded: in between, the backend has a
  // snapshot no row refers to, which the collector must not judge.
  std::shared_lock hold(backend_.lock);
  SnapshotRecord record;
  record.parent = parent;
  std::string backend_parent;
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_RETURN_IF_ERROR(storage_->ensure_namespace(txn, ns_));
    if (!target.empty()) {
      CTRD_ASSIGN_OR_RETURN(bool target_exists, rows.contains(txn, target));
      if (target_exists) {
        return errdefs::AlreadyExists("target snapshot " + quoted(target) + ": already exists");
      }
    }
    CTRD_ASSIGN_OR_RETURN(bool exists, rows.contains(txn, key));
    if (exists) return errdefs::AlreadyExists("snapshot " + quoted(key) + ": already exists");
    if (!parent.empty()) {
      CTRD_ASSIGN_OR_RETURN(auto parent_record, rows.find(txn, parent));
      if (!parent_record) {
        return errdefs::NotFound("parent snapshot " + std::string(parent) + " does not exist: not found");
      }
      backend_parent = std::move(parent_record->backend_key);
    }
    CTRD_ASSIGN_OR_RETURN(uint64_t sequence, storage_->next_snapshot_sequence(txn));
    record.backend_key = ns_ + "/" + std::to_string(sequence) + "/" + key;
    return Status::Ok();
  }));

  snapshots::Labels backend_labels = inherited_labels(labels);
  auto mounts = readonly ? backend.view(record.backend_key, backend_parent, backend_labels)
                         : backend.prepare(record.backend_key, backend_parent, backend_labels);
  std::string created;  // backend key this call created, to undo on failure
  Status result;
  if (!mounts.ok() && errdefs::IsAlreadyExists(mounts.status())) {
    // The backend found a committed snapshot matching the target ref (a
    // remote snapshotter): record that one under the target's name.
    if (target.empty()) {
      return errdefs::Unknown("unexpected error from snapshotter: " + mounts.status().message());
    }
    std::optional<snapshots::Info> found;
    CTRD_RETURN_IF_ERROR(backend.walk(
        [&](const snapshots::Info& info) {
          if (!found && info.kind == snapshots::Kind::kCommitted && info.parent == backend_parent) {
            auto it = info.labels.find(std::string(kLabelSnapshotRef));
            if (it != info.labels.end() && it->second == target) found = info;
          }
          return Status::Ok();
        },
        {}));
    if (!found) return errdefs::NotFound("target snapshot " + quoted(target) + " in backend: not found");
    key = target;
    record.backend_key = found->name;
    record.created_at = found->created_at;
    record.updated_at = found->updated_at;
    for (const auto& [k, v] : found->labels) labels.emplace(k, v);
    result =
        errdefs::AlreadyExists("target snapshot " + quoted(target) + " from snapshotter: already exists");
  } else if (!mounts.ok()) {
    return mounts.status();
  } else {
    record.created_at = record.updated_at = Clock::now();
    created = record.backend_key;
  }
  record.labels = labels;

  Status recorded = storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_RETURN_IF_ERROR(storage_->ensure_namespace(txn, ns_));
    CTRD_RETURN_IF_ERROR(
        storage_->hold_in_lease(txn, ns_, lease_, std::string(resource_type::kSnapshotsPrefix) + name_, key));
    CTRD_ASSIGN_OR_RETURN(bool added, rows.insert(txn, key, record));
    if (!added) {
      if (result.ok()) result = errdefs::AlreadyExists("snapshot " + quoted(key) + ": already exists");
      return Status::Ok();
    }
    if (!parent.empty()) {
      CTRD_ASSIGN_OR_RETURN(auto parent_record, rows.find(txn, parent));
      if (!parent_record) {
        return errdefs::NotFound("parent snapshot " + std::string(parent) + " does not exist: not found");
      }
      // A backend answering for a target may have another parent than asked.
      if (parent_record->backend_key != backend_parent) {
        return errdefs::InvalidArgument("mismatched parent " + std::string(parent) + " from target " +
                                        target);
      }
      CTRD_RETURN_IF_ERROR(txn.put(tables.snapshot_children, keys::join(ns_, name_, parent, key), ""));
    }
    return Status::Ok();
  });
  if (!recorded.ok()) result = recorded;
  if (!result.ok()) {
    if (!created.empty()) {
      if (Status s = backend.remove(created); !s.ok()) {
        log::error("failed to cleanup unreferenced snapshot",
                   {{"snapshotter", name_}, {"key", created}, {"error", s.to_string()}});
      }
    }
    return result;
  }
  storage_->notify_mutation(false);
  return mounts;
}

Status NamespacedSnapshotter::commit(std::string_view name, std::string_view key,
                                     const snapshots::Labels& labels_in) {
  CTRD_ASSIGN_OR_RETURN(auto rows, snapshot_rows(*storage_, ns_, name_));
  CTRD_RETURN_IF_ERROR(validate_key(name, "name"));
  CTRD_RETURN_IF_ERROR(validate_labels(labels_in, "info.Labels"));
  snapshots::Labels labels = labels_in;
  drop_empty_labels(&labels);
  const Tables& tables = storage_->tables();
  std::shared_lock hold(backend_.lock);
  std::string committed_backend_key;
  Status s = storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(bool exists, rows.contains(txn, name));
    if (exists) return errdefs::AlreadyExists("snapshot " + quoted(name) + ": already exists");
    std::string snapshots_type = std::string(resource_type::kSnapshotsPrefix) + name_;
    CTRD_RETURN_IF_ERROR(storage_->hold_in_lease(txn, ns_, lease_, snapshots_type, name));
    std::optional<SnapshotRecord> active;
    if (rows.may_exist(key)) {
      CTRD_ASSIGN_OR_RETURN(active, rows.find(txn, key));
    }
    if (!active) return snapshot_not_found(key);
    CTRD_ASSIGN_OR_RETURN(uint64_t sequence, storage_->next_snapshot_sequence(txn));
    auto now = Clock::now();
    SnapshotRecord committed{ns_ + "/" + std::to_string(sequence) + "/" + std::string(name), active->parent,
                             now, now, labels};
    if (!active->parent.empty()) {
      CTRD_ASSIGN_OR_RETURN(bool parent_exists, rows.contains(txn, active->parent));
      if (!parent_exists) {
        return errdefs::NotFound("parent snapshot " + active->parent + " does not exist: not found");
      }
      CTRD_RETURN_IF_ERROR(txn.remove(tables.snapshot_children, keys::join(ns_, name_, active->parent, key)));
      CTRD_RETURN_IF_ERROR(
          txn.put(tables.snapshot_children, keys::join(ns_, name_, active->parent, name), ""));
    }
    CTRD_RETURN_IF_ERROR(rows.put(txn, name, committed));
    CTRD_RETURN_IF_ERROR(rows.erase(txn, key).status());
    CTRD_RETURN_IF_ERROR(storage_->drop_from_lease(txn, ns_, lease_, snapshots_type, key));
    // Inside the transaction, as containerd does: a backend that refuses
    // leaves the active snapshot as it was.
    if (Status c = backend_.snapshotter->commit(committed.backend_key, active->backend_key,
                                                inherited_labels(labels));
        !c.ok()) {
      if (errdefs::IsNotFound(c)) {
        log::error("uncommittable snapshot: missing in backend, snapshot should be removed",
                   {{"snapshotter", name_}, {"key", std::string(key)}, {"error", c.to_string()}});
      }
      return c;
    }
    committed_backend_key = committed.backend_key;
    return Status::Ok();
  });
  if (!s.ok()) {
    if (!committed_backend_key.empty()) {
      log::error("uncommittable snapshot: transaction failed after commit, snapshot should be removed",
                 {{"snapshotter", name_}, {"key", std::string(key)}, {"bname", committed_backend_key}});
    }
    return s;
  }
  storage_->notify_mutation(false);
  return Status::Ok();
}

Status NamespacedSnapshotter::remove(std::string_view key) {
  CTRD_ASSIGN_OR_RETURN(auto rows, snapshot_rows(*storage_, ns_, name_));
  if (!rows.may_exist(key)) return snapshot_not_found(key);
  const Tables& tables = storage_->tables();
  std::shared_lock hold(backend_.lock);
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(auto record, rows.find(txn, key));
    if (!record) return snapshot_not_found(key);
    CTRD_ASSIGN_OR_RETURN(bool has_children,
                          txn.has_prefix(tables.snapshot_children, keys::join(ns_, name_, key, "")));
    if (has_children) return errdefs::FailedPrecondition("cannot remove snapshot with child");
    if (!record->parent.empty()) {
      CTRD_RETURN_IF_ERROR(txn.remove(tables.snapshot_children, keys::join(ns_, name_, record->parent, key)));
    }
    CTRD_RETURN_IF_ERROR(rows.erase(txn, key).status());
    return storage_->drop_from_lease(txn, ns_, lease_, std::string(resource_type::kSnapshotsPrefix) + name_,
                                     key);
  }));
  storage_->notify_mutation(true);
  return Status::Ok();
}

Status NamespacedSnapshotter::walk(const std::function<Status(const snapshots::Info&)>& fn,
                                   const std::vector<std::string>& filter_texts) {
  CTRD_ASSIGN_OR_RETURN(auto rows, snapshot_rows(*storage_, ns_, name_));
  auto filter = filters::parse_all(filter_texts);
  if (!filter.ok()) return errdefs::InvalidArgument(filter.status().message());
  std::vector<std::pair<std::string, SnapshotRecord>> listed;
  CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) {
    return rows.scan(txn, [&](std::string_view key, SnapshotRecord record) {
      listed.emplace_back(std::string(key), std::move(record));
      return Status::Ok();
    });
  }));
  // The backend and `fn` run outside the transaction.
  for (const auto& [key, record] : listed) {
    auto info = backend_.snapshotter->stat(record.backend_key);
    // Removed since the rows were read.
    if (!info.ok() && errdefs::IsNotFound(info.status())) continue;
    if (!info.ok()) return info.status();
    snapshots::Info merged = overlay(std::move(*info), key, record);
    if (filter->match(snapshots::filter_fields(merged))) CTRD_RETURN_IF_ERROR(fn(merged));
  }
  return Status::Ok();
}

}  // namespace ctrd::metadata
