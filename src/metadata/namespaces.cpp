#include "metadata/namespaces.h"

#include <set>

#include "identifiers/identifiers.h"
#include "log/log.h"
#include "metadata/labels.h"
#include "metadata/storage.h"

namespace ctrd::metadata {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

constexpr std::string_view kLabelsField = "namespace.Labels";

using errdefs::quoted;

Status not_found(std::string_view name) {
  return errdefs::NotFound("namespace " + quoted(name) + ": not found");
}

}  // namespace

Status Namespaces::create(std::string_view name, const Labels& labels) {
  CTRD_RETURN_IF_ERROR(identifiers::validate(name));
  CTRD_RETURN_IF_ERROR(validate_labels(labels, kLabelsField));
  NamespaceRecord record{labels};
  drop_empty_labels(&record.labels);
  return storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(bool created, txn.put_new(storage_->tables().namespaces, name, encode(record)));
    if (!created) return errdefs::AlreadyExists("namespace " + quoted(name) + ": already exists");
    return Status::Ok();
  });
}

StatusOr<Labels> Namespaces::get(std::string_view name) {
  NamespaceRecord record;
  CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(storage_->tables().namespaces, name));
    if (!stored) return not_found(name);
    return decode(*stored, "namespace " + quoted(name), &record);
  }));
  return std::move(record.labels);
}

StatusOr<std::vector<Namespace>> Namespaces::list() {
  std::vector<Namespace> out;
  CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) -> Status {
    return txn.scan_prefix(storage_->tables().namespaces, "",
                           [&](std::string_view name, std::string_view value) {
                             NamespaceRecord record;
                             CTRD_RETURN_IF_ERROR(decode(value, "namespace " + quoted(name), &record));
                             out.push_back({std::string(name), std::move(record.labels)});
                             return Status::Ok();
                           });
  }));
  return out;
}

StatusOr<Labels> Namespaces::update(std::string_view name, const Labels& labels,
                                    const std::vector<std::string>& fieldpaths) {
  CTRD_RETURN_IF_ERROR(identifiers::validate(name));
  for (const auto& path : fieldpaths) {
    if (path != "labels" && !path.starts_with("labels.")) {
      return errdefs::InvalidArgument("cannot update " + quoted(path) + " field on namespace " +
                                      quoted(name));
    }
  }
  NamespaceRecord record;
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    MDB_dbi table = storage_->tables().namespaces;
    CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(table, name));
    if (stored) CTRD_RETURN_IF_ERROR(decode(*stored, "namespace " + quoted(name), &record));

    bool replace_all = fieldpaths.empty();
    for (const auto& path : fieldpaths) {
      if (path == "labels") {
        replace_all = true;
        continue;
      }
      std::string key = path.substr(std::string_view("labels.").size());
      auto it = labels.find(key);
      if (it == labels.end() || it->second.empty()) {
        record.labels.erase(key);
      } else {
        record.labels[key] = it->second;
      }
    }
    if (replace_all) record.labels = labels;
    drop_empty_labels(&record.labels);
    CTRD_RETURN_IF_ERROR(validate_labels(record.labels, kLabelsField));
    return txn.put(table, name, encode(record));
  }));
  return std::move(record.labels);
}

Status Namespaces::set_labels(std::string_view name, const Labels& labels) {
  return update(name, labels, {}).status();
}

Status Namespaces::set_label(std::string_view name, std::string_view key, std::string_view value) {
  std::string k(key);
  return update(name, {{k, std::string(value)}}, {"labels." + k}).status();
}

Status Namespaces::remove(std::string_view name) {
  // No write path accepts an invalid name, so such a namespace cannot exist.
  if (!identifiers::validate(name).ok()) return not_found(name);
  std::vector<std::string> backend_refs;
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    const Tables& tables = storage_->tables();
    std::string prefix = keys::namespace_prefix(name);
    // Only what containerd counts keeps a namespace alive, named in its order.
    std::vector<std::string> still_has;
    for (auto [table, kind] : {std::pair{tables.images, "images"}, std::pair{tables.blobs, "blobs"},
                               std::pair{tables.containers, "containers"}}) {
      CTRD_ASSIGN_OR_RETURN(bool has_rows, txn.has_prefix(table, prefix));
      if (has_rows) still_has.emplace_back(kind);
    }
    // Every snapshotter with rows, configured or not any more.
    std::set<std::string, std::less<>> snapshotters;
    CTRD_RETURN_IF_ERROR(
        txn.scan_prefix(tables.snapshots, prefix, [&](std::string_view key, std::string_view) {
          std::string_view rest = key.substr(prefix.size());
          snapshotters.emplace(rest.substr(0, rest.find(keys::kSeparator)));
          return Status::Ok();
        }));
    for (const auto& snapshotter : snapshotters) {
      still_has.push_back("snapshots on " + quoted(snapshotter) + " snapshotter");
    }
    if (!still_has.empty()) {
      std::string kinds;
      for (const auto& kind : still_has) kinds += (kinds.empty() ? "" : ", ") + kind;
      return errdefs::FailedPrecondition("namespace " + quoted(name) + " must be empty, but it still has " +
                                         kinds);
    }

    CTRD_ASSIGN_OR_RETURN(bool existed, txn.erase(tables.namespaces, name));
    if (!existed) return not_found(name);

    CTRD_RETURN_IF_ERROR(
        txn.scan_prefix(tables.ingests, prefix, [&](std::string_view key, std::string_view value) {
          IngestRecord ingest;
          CTRD_RETURN_IF_ERROR(decode(value, key, &ingest));
          backend_refs.push_back(std::move(ingest.backend_ref));
          return Status::Ok();
        }));
    for (MDB_dbi table : {tables.ingests, tables.leases, tables.lease_resources}) {
      CTRD_RETURN_IF_ERROR(txn.erase_prefix(table, prefix).status());
    }
    return Status::Ok();
  }));

  // The namespace is gone whatever the blob store says; its leftovers are
  // only disk space, so failures here are not the caller's.
  for (const auto& ref : backend_refs) {
    if (Status s = storage_->blobs().abort(ref); !s.ok() && !errdefs::IsNotFound(s)) {
      log::warn("abort ingest of removed namespace",
                {{"namespace", std::string(name)}, {"error", s.to_string()}});
    }
  }
  // Blobs its shared ingests kept alive are the collector's to judge.
  if (!backend_refs.empty()) storage_->notify_mutation(true);
  return Status::Ok();
}

}  // namespace ctrd::metadata
