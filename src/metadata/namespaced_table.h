// namespaced_table: the rows one namespace holds in a metadata table, read and
// written as records — what images, containers, leases and the namespaced
// snapshotter have in common: get, list with filters, create, read-modify-write
// and remove, each in one transaction, plus the per-transaction steps for
// callers that do more in the same transaction. Callers keep their own
// checks and error wording, which clients compare. Internal to src/metadata.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "errdefs/errdefs.h"
#include "filters/filters.h"
#include "lmdb/lmdb.h"
#include "metadata/records.h"
#include "metadata/storage.h"

namespace ctrd::metadata {

// How a table's rows are named in errors, and which names can have a row.
struct RowNaming {
  // What DataLoss calls row `name` when its bytes do not decode, e.g. `image "name"`.
  std::function<std::string(std::string_view name)> describe;
  // False for names no row can have (too long for a key, not an identifier):
  // they are reported missing without a look-up, which could fail on the key.
  // Unset: any name may have a row.
  std::function<bool(std::string_view name)> may_exist;
};

template <typename Record>
class NamespacedTable {
 public:
  // Rows keyed keys::join(ns, name). Fails as validate_bound_namespace when
  // `ns` cannot be used, so every operation starts with that check.
  static errdefs::StatusOr<NamespacedTable> open(const Storage& storage, MDB_dbi table, std::string_view ns,
                                                 RowNaming naming) {
    CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns));
    return NamespacedTable(storage, table, ns, keys::namespace_prefix(ns), std::move(naming));
  }
  // Rows keyed keys::join(ns, group, name), e.g. one snapshotter's snapshots.
  static errdefs::StatusOr<NamespacedTable> open(const Storage& storage, MDB_dbi table, std::string_view ns,
                                                 std::string_view group, RowNaming naming) {
    CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns));
    return NamespacedTable(storage, table, ns, keys::join(ns, group, ""), std::move(naming));
  }

  bool may_exist(std::string_view name) const { return !naming_.may_exist || naming_.may_exist(name); }

  // Whole operations, each in its own transaction; the changing ones tell the
  // storage's mutation callback once committed. `not_found()` and
  // `already_exists()` make the caller's errors; for update and remove,
  // `not_found(txn)` may look at the table to choose its wording.

  template <typename NotFound>
  errdefs::StatusOr<Record> get(std::string_view name, NotFound not_found) const {
    if (!may_exist(name)) return not_found();
    Record record;
    CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) -> errdefs::Status {
      CTRD_ASSIGN_OR_RETURN(std::optional<Record> found, find(txn, name));
      if (!found) return not_found();
      record = std::move(*found);
      return errdefs::Status::Ok();
    }));
    return record;
  }

  // The rows as `to_item(name, record)` makes them, in name order, keeping
  // those `adapt(item)` lets any of `filter_texts` match (all when none).
  template <typename ToItem, typename Adapt,
            typename Item = std::invoke_result_t<ToItem&, std::string_view, Record>>
  errdefs::StatusOr<std::vector<Item>> list(const std::vector<std::string>& filter_texts, ToItem to_item,
                                            Adapt adapt) const {
    auto filter = filters::parse_all(filter_texts);
    if (!filter.ok()) return errdefs::InvalidArgument(filter.status().message());
    std::vector<Item> out;
    CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) {
      return scan(txn, [&](std::string_view name, Record record) {
        Item item = to_item(name, std::move(record));
        // Listing everything is the common case: no adaptor to build per row.
        if (filter->empty() || filter->match(adapt(item))) out.push_back(std::move(item));
        return errdefs::Status::Ok();
      });
    }));
    return out;
  }

  // Adds row `name`, creating the namespace if needed (writing anything into
  // a namespace creates it, as containerd's buckets do).
  template <typename AlreadyExists>
  errdefs::Status create(std::string_view name, const Record& record, AlreadyExists already_exists) const {
    CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> errdefs::Status {
      CTRD_RETURN_IF_ERROR(storage_->ensure_namespace(txn, ns_));
      CTRD_ASSIGN_OR_RETURN(bool added, insert(txn, name, record));
      return added ? errdefs::Status::Ok() : already_exists();
    }));
    storage_->notify_mutation(false);
    return errdefs::Status::Ok();
  }

  // Reads row `name`, lets `modify(Record*)` change it and writes it back, in
  // one write transaction so no concurrent change is lost; returns what was written.
  template <typename Modify, typename NotFound>
  errdefs::StatusOr<Record> update(std::string_view name, Modify modify, NotFound not_found) const {
    Record record;
    CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> errdefs::Status {
      std::optional<Record> found;
      if (may_exist(name)) {
        CTRD_ASSIGN_OR_RETURN(found, find(txn, name));
      }
      if (!found) return not_found(std::as_const(txn));
      record = std::move(*found);
      CTRD_RETURN_IF_ERROR(modify(&record));
      return put(txn, name, record);
    }));
    storage_->notify_mutation(false);
    return record;
  }

  // Only the row goes: what it refers to is left for the collector.
  template <typename NotFound>
  errdefs::Status remove(std::string_view name, NotFound not_found) const {
    CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> errdefs::Status {
      bool existed = false;
      if (may_exist(name)) {
        CTRD_ASSIGN_OR_RETURN(existed, erase(txn, name));
      }
      return existed ? errdefs::Status::Ok() : not_found(std::as_const(txn));
    }));
    storage_->notify_mutation(true);
    return errdefs::Status::Ok();
  }

  // Steps within a caller's transaction. Names are used as given: callers
  // check may_exist() where a name can be too long for a key.

  // Row `name` decoded, or nullopt when there is none.
  errdefs::StatusOr<std::optional<Record>> find(const lmdb::Txn& txn, std::string_view name) const {
    CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(table_, row_key(name)));
    if (!stored) return std::optional<Record>();
    Record record;
    CTRD_RETURN_IF_ERROR(decode_row(name, *stored, &record));
    return std::optional<Record>(std::move(record));
  }
  errdefs::StatusOr<bool> contains(const lmdb::Txn& txn, std::string_view name) const {
    CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(table_, row_key(name)));
    return stored.has_value();
  }
  // Whether the namespace (or group) has any row at all.
  errdefs::StatusOr<bool> has_rows(const lmdb::Txn& txn) const { return txn.has_prefix(table_, prefix_); }
  errdefs::Status put(lmdb::Txn& txn, std::string_view name, const Record& record) const {
    return txn.put(table_, row_key(name), encode(record));
  }
  // Puts only when row `name` is absent; returns whether it did.
  errdefs::StatusOr<bool> insert(lmdb::Txn& txn, std::string_view name, const Record& record) const {
    return txn.put_new(table_, row_key(name), encode(record));
  }
  // Returns whether row `name` existed.
  errdefs::StatusOr<bool> erase(lmdb::Txn& txn, std::string_view name) const {
    return txn.erase(table_, row_key(name));
  }
  // Calls `visit(name, record)` for every row, in name order, stopping at its first error.
  template <typename Visit>
  errdefs::Status scan(const lmdb::Txn& txn, Visit visit) const {
    return txn.scan_prefix(table_, prefix_, [&](std::string_view key, std::string_view value) {
      std::string_view name = key.substr(prefix_.size());
      Record record;
      if (errdefs::Status s = decode(value, "", &record); !s.ok()) return describe_failure(name, value);
      return visit(name, std::move(record));
    });
  }

 private:
  NamespacedTable(const Storage& storage, MDB_dbi table, std::string_view ns, std::string prefix,
                  RowNaming naming)
      : storage_(&storage), table_(table), ns_(ns), prefix_(std::move(prefix)), naming_(std::move(naming)) {}

  std::string row_key(std::string_view name) const {
    std::string key = prefix_;
    key.append(name);
    return key;
  }

  // Rows are decoded undescribed and the description built only for one that
  // fails: a list would otherwise build a string per row for nothing.
  errdefs::Status decode_row(std::string_view name, std::string_view value, Record* record) const {
    if (decode(value, "", record).ok()) return errdefs::Status::Ok();
    return describe_failure(name, value);
  }
  // Decoding is deterministic, so decoding `value` again fails the same way,
  // now naming the row.
  errdefs::Status describe_failure(std::string_view name, std::string_view value) const {
    Record ignored;
    return decode(value, naming_.describe(name), &ignored);
  }

  const Storage* storage_;
  MDB_dbi table_;
  std::string ns_;
  std::string prefix_;  // every row key is prefix_ + name
  RowNaming naming_;
};

}  // namespace ctrd::metadata
