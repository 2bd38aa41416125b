#include "metadata/content_store.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <shared_mutex>

#include "filters/filters.h"
#include "log/log.h"
#include "metadata/labels.h"
#include "metadata/leases.h"
#include "metadata/storage.h"

namespace ctrd::metadata {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

// How long an ingest no lease holds is kept before a collector may abort it
// (containerd's figure).
constexpr auto kUnleasedIngestLifetime = std::chrono::hours(24);
constexpr size_t kCopyChunk = size_t{1} << 20;

using errdefs::quoted;

Status content_not_found(std::string_view digest) {
  return errdefs::NotFound("content digest " + std::string(digest) + ": not found");
}

Status ref_not_found(std::string_view ref) {
  return errdefs::NotFound("reference " + std::string(ref) + ": not found");
}

Status validate_ref(std::string_view ref) {
  if (ref.empty()) return errdefs::InvalidArgument("ref must not be empty");
  if (ref.size() > keys::kMaxRefLength) {
    return errdefs::InvalidArgument("ref " + quoted(ref) + " greater than maximum length (" +
                                    std::to_string(keys::kMaxRefLength) + " bytes)");
  }
  return Status::Ok();
}

content::Info to_info(std::string_view digest, BlobRecord record) {
  return {std::string(digest), record.size, record.created_at, record.updated_at, std::move(record.labels)};
}

filters::Adaptor adapt(const content::Info& info) {
  return [&info](const std::vector<std::string>& path) -> std::optional<std::string> {
    if (path.empty()) return std::nullopt;
    if (path[0] == "digest") return info.digest;
    if (path[0] == "size") return std::to_string(info.size);
    if (path[0] == "labels") return label_field(path, info.labels);
    return std::nullopt;
  };
}

filters::Adaptor adapt(const content::Status& status) {
  return [&status](const std::vector<std::string>& path) -> std::optional<std::string> {
    if (!path.empty() && path[0] == "ref") return status.ref;
    return std::nullopt;
  };
}

StatusOr<filters::Filter> parse_filters(const std::vector<std::string>& texts) {
  auto filter = filters::parse_all(texts);
  if (!filter.ok()) return errdefs::InvalidArgument(filter.status().message());
  return filter;
}

// The writer a namespace gets. Without a backend writer it is "shared": the
// blob store already holds the expected blob, so the ingest starts complete
// and commit only records it; writing or truncating first copies the shared
// bytes into a real ingest (containerd's behaviour, so appends work).
class NamespacedWriter final : public content::Writer {
 public:
  struct Shared {
    std::string digest;
    int64_t size = 0;
  };

  NamespacedWriter(std::shared_ptr<Storage> storage, std::string ns, std::string lease, std::string ref,
                   std::string backend_ref, std::unique_ptr<content::Writer> backend, Shared shared)
      : storage_(std::move(storage)),
        ns_(std::move(ns)),
        lease_(std::move(lease)),
        ref_(std::move(ref)),
        backend_ref_(std::move(backend_ref)),
        backend_(std::move(backend)),
        shared_(std::move(shared)),
        started_at_(content::Clock::now()) {}

  Status write(std::string_view data) override {
    CTRD_RETURN_IF_ERROR(check_open());
    if (!backend_) {
      if (data.empty()) return Status::Ok();
      CTRD_RETURN_IF_ERROR(unshare(shared_.size));
    }
    return backend_->write(data);
  }

  std::string digest() override { return backend_ ? backend_->digest() : shared_.digest; }

  StatusOr<content::Status> status() override {
    CTRD_RETURN_IF_ERROR(check_open());
    if (!backend_) {
      return content::Status{ref_, shared_.size, shared_.size, shared_.digest, started_at_, started_at_};
    }
    CTRD_ASSIGN_OR_RETURN(content::Status status, backend_->status());
    status.ref = ref_;
    return status;
  }

  Status truncate(int64_t size) override {
    CTRD_RETURN_IF_ERROR(check_open());
    if (backend_) return backend_->truncate(size);
    if (size < 0 || size > shared_.size) {
      return errdefs::InvalidArgument("cannot truncate " + quoted(ref_) + " to " + std::to_string(size));
    }
    return unshare(size);
  }

  Status commit(int64_t size, std::string_view expected, const Labels& labels) override {
    CTRD_RETURN_IF_ERROR(check_open());
    CTRD_RETURN_IF_ERROR(validate_labels(labels, "info.Labels"));
    Labels stored_labels = labels;
    drop_empty_labels(&stored_labels);

    // Held until the blob is recorded: the blob store may have answered
    // AlreadyExists for bytes another namespace is about to release.
    std::shared_lock blob_use(storage_->blob_use_lock());
    if (backend_) {
      CTRD_ASSIGN_OR_RETURN(content::Status st, backend_->status());
      if (size != 0 && size != st.offset) {
        return errdefs::FailedPrecondition(quoted(ref_) + " failed size validation: " +
                                           std::to_string(st.offset) + " != " + std::to_string(size));
      }
      // Taken before commit: a committed writer owes no digest any more.
      std::string actual = backend_->digest();
      // Outside the metadata transaction, so a slow blob commit (fsync,
      // rename) does not hold up every other metadata change. The blob store
      // already having the bytes is the normal case of sharing; only this
      // namespace's record decides AlreadyExists.
      if (Status s = backend_->commit(st.offset, expected, {}); !s.ok() && !errdefs::IsAlreadyExists(s)) {
        return s;
      }
      // From here on the blob exists, so a retry after a failed record below
      // only has to record it.
      shared_ = {std::move(actual), st.offset};
      backend_.reset();
    }
    if (size != 0 && size != shared_.size) {
      return errdefs::FailedPrecondition(quoted(ref_) + " failed size validation: " +
                                         std::to_string(shared_.size) + " != " + std::to_string(size));
    }
    if (!expected.empty() && expected != shared_.digest) {
      return errdefs::FailedPrecondition(quoted(ref_) + " unexpected digest: " + shared_.digest +
                                         " != " + std::string(expected));
    }

    Status already_exists;
    CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
      const Tables& tables = storage_->tables();
      // Again: the namespace may have been removed while the writer was open.
      CTRD_RETURN_IF_ERROR(storage_->ensure_namespace(txn, ns_));
      auto now = content::Clock::now();
      CTRD_ASSIGN_OR_RETURN(bool recorded,
                            txn.put_new(tables.blobs, keys::join(ns_, shared_.digest),
                                        encode(BlobRecord{shared_.size, now, now, stored_labels})));
      if (!recorded)
        already_exists = errdefs::AlreadyExists("content " + shared_.digest + ": already exists");
      CTRD_RETURN_IF_ERROR(txn.remove(tables.ingests, keys::join(ns_, ref_)));
      CTRD_RETURN_IF_ERROR(storage_->drop_from_lease(txn, ns_, lease_, resource_type::kIngests, ref_));
      return storage_->hold_in_lease(txn, ns_, lease_, resource_type::kContent, shared_.digest);
    }));
    committed_ = true;
    storage_->notify_mutation(false);
    return already_exists;
  }

 private:
  Status check_open() const {
    if (!committed_) return Status::Ok();
    return errdefs::FailedPrecondition("writer for " + quoted(ref_) + " was already committed");
  }

  // Replaces the shared state by a real ingest holding the first `size` bytes
  // of the shared blob.
  Status unshare(int64_t size) {
    content::Store& blobs = storage_->blobs();
    CTRD_ASSIGN_OR_RETURN(auto writer, blobs.writer({.ref = backend_ref_}));
    // A stale ingest under this backend ref would otherwise be resumed and
    // the copy appended to it.
    CTRD_ASSIGN_OR_RETURN(content::Status st, writer->status());
    if (st.offset != 0) CTRD_RETURN_IF_ERROR(writer->truncate(0));
    if (size > 0) {
      CTRD_ASSIGN_OR_RETURN(auto reader, blobs.reader_at(shared_.digest));
      std::string buffer(kCopyChunk, '\0');
      int64_t offset = 0;
      while (offset < size) {
        size_t want =
            static_cast<size_t>(std::min<int64_t>(size - offset, static_cast<int64_t>(buffer.size())));
        CTRD_ASSIGN_OR_RETURN(size_t got, reader->read_at(buffer.data(), want, offset));
        if (got == 0) {
          return errdefs::DataLoss("blob " + shared_.digest + " ended at " + std::to_string(offset) +
                                   " bytes, expected " + std::to_string(size));
        }
        CTRD_RETURN_IF_ERROR(writer->write(std::string_view(buffer.data(), got)));
        offset += static_cast<int64_t>(got);
      }
    }
    backend_ = std::move(writer);
    return Status::Ok();
  }

  std::shared_ptr<Storage> storage_;
  std::string ns_;
  std::string lease_;
  std::string ref_;
  std::string backend_ref_;
  std::unique_ptr<content::Writer> backend_;
  Shared shared_;
  content::Clock::time_point started_at_;
  bool committed_ = false;
};

}  // namespace

StatusOr<content::Info> ContentStore::info(std::string_view digest) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  CTRD_RETURN_IF_ERROR(content::validate_digest(digest));
  BlobRecord record;
  CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(storage_->tables().blobs, keys::join(ns_, digest)));
    if (!stored) return content_not_found(digest);
    return decode(*stored, digest, &record);
  }));
  return to_info(digest, std::move(record));
}

StatusOr<content::Info> ContentStore::update(const content::Info& info,
                                             const std::vector<std::string>& fieldpaths) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  CTRD_RETURN_IF_ERROR(content::validate_digest(info.digest));
  BlobRecord record;
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    std::string key = keys::join(ns_, info.digest);
    CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(storage_->tables().blobs, key));
    if (!stored) return content_not_found(info.digest);
    CTRD_RETURN_IF_ERROR(decode(*stored, info.digest, &record));

    if (fieldpaths.empty()) record.labels = info.labels;
    for (const auto& path : fieldpaths) {
      if (!apply_label_path(path, info.labels, &record.labels)) {
        return errdefs::InvalidArgument("cannot update " + quoted(path) + " field on content info " +
                                        quoted(info.digest));
      }
    }
    drop_empty_labels(&record.labels);
    CTRD_RETURN_IF_ERROR(validate_labels(record.labels, "info.Labels"));
    record.updated_at = content::Clock::now();
    return txn.put(storage_->tables().blobs, key, encode(record));
  }));
  storage_->notify_mutation(false);
  return to_info(info.digest, std::move(record));
}

Status ContentStore::walk(const std::function<Status(const content::Info&)>& fn,
                          const std::vector<std::string>& filter_texts) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  CTRD_ASSIGN_OR_RETURN(filters::Filter filter, parse_filters(filter_texts));
  // Collected first so `fn` runs outside the transaction: it may be slow or
  // call back into the store.
  std::vector<content::Info> matched;
  CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) -> Status {
    std::string prefix = keys::namespace_prefix(ns_);
    return txn.scan_prefix(storage_->tables().blobs, prefix,
                           [&](std::string_view key, std::string_view value) {
                             std::string_view digest = key.substr(prefix.size());
                             BlobRecord record;
                             CTRD_RETURN_IF_ERROR(decode(value, digest, &record));
                             content::Info info = to_info(digest, std::move(record));
                             if (filter.match(adapt(info))) matched.push_back(std::move(info));
                             return Status::Ok();
                           });
  }));
  for (const auto& info : matched) CTRD_RETURN_IF_ERROR(fn(info));
  return Status::Ok();
}

Status ContentStore::remove(std::string_view digest) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  CTRD_RETURN_IF_ERROR(content::validate_digest(digest));
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(bool existed, txn.erase(storage_->tables().blobs, keys::join(ns_, digest)));
    if (!existed) return content_not_found(digest);
    return storage_->drop_from_lease(txn, ns_, lease_, resource_type::kContent, digest);
  }));
  // The bytes stay until a collection finds no namespace holding them.
  storage_->notify_mutation(true);
  return Status::Ok();
}

StatusOr<std::unique_ptr<content::ReaderAt>> ContentStore::reader_at(std::string_view digest) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  CTRD_RETURN_IF_ERROR(content::validate_digest(digest));
  CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(storage_->tables().blobs, keys::join(ns_, digest)));
    if (!stored) return content_not_found(digest);
    return Status::Ok();
  }));
  return storage_->blobs().reader_at(digest);
}

StatusOr<content::Status> ContentStore::status(std::string_view ref) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  IngestRecord ingest;
  CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) -> Status {
    CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(storage_->tables().ingests, keys::join(ns_, ref)));
    if (!stored) return ref_not_found(ref);
    return decode(*stored, ref, &ingest);
  }));
  CTRD_ASSIGN_OR_RETURN(content::Status status, storage_->blobs().status(ingest.backend_ref));
  status.ref = ref;
  return status;
}

StatusOr<std::vector<content::Status>> ContentStore::list_statuses(
    const std::vector<std::string>& filter_texts) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  CTRD_ASSIGN_OR_RETURN(filters::Filter filter, parse_filters(filter_texts));
  std::vector<std::pair<std::string, std::string>> refs;  // client ref, backend ref
  CTRD_RETURN_IF_ERROR(storage_->view([&](const lmdb::Txn& txn) -> Status {
    std::string prefix = keys::namespace_prefix(ns_);
    return txn.scan_prefix(storage_->tables().ingests, prefix,
                           [&](std::string_view key, std::string_view value) {
                             std::string_view ref = key.substr(prefix.size());
                             IngestRecord ingest;
                             CTRD_RETURN_IF_ERROR(decode(value, ref, &ingest));
                             refs.emplace_back(ref, std::move(ingest.backend_ref));
                             return Status::Ok();
                           });
  }));
  std::vector<content::Status> out;
  for (auto& [ref, backend_ref] : refs) {
    auto status = storage_->blobs().status(backend_ref);
    // A shared ingest nobody wrote to has no backend ingest yet.
    if (!status.ok() && errdefs::IsNotFound(status.status())) continue;
    if (!status.ok()) return status.status();
    status->ref = ref;
    if (filter.match(adapt(*status))) out.push_back(std::move(*status));
  }
  return out;
}

Status ContentStore::abort(std::string_view ref) {
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  IngestRecord ingest;
  CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
    std::string key = keys::join(ns_, ref);
    CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(storage_->tables().ingests, key));
    if (!stored) return ref_not_found(ref);
    CTRD_RETURN_IF_ERROR(decode(*stored, ref, &ingest));
    CTRD_RETURN_IF_ERROR(txn.remove(storage_->tables().ingests, key));
    CTRD_RETURN_IF_ERROR(storage_->drop_from_lease(txn, ns_, lease_, resource_type::kIngests, ref));
    // Inside the transaction: if the blob store refuses, the ingest stays
    // listed and the client can retry.
    Status aborted = storage_->blobs().abort(ingest.backend_ref);
    return errdefs::IsNotFound(aborted) ? Status::Ok() : aborted;
  }));
  // A shared blob the ingest kept alive is the collector's to judge.
  storage_->notify_mutation(true);
  return Status::Ok();
}

StatusOr<std::unique_ptr<content::Writer>> ContentStore::writer(const content::WriterOptions& options) {
  CTRD_RETURN_IF_ERROR(validate_ref(options.ref));
  CTRD_RETURN_IF_ERROR(validate_bound_namespace(ns_));
  if (!options.expected.empty()) CTRD_RETURN_IF_ERROR(content::validate_digest(options.expected));

  const Tables& tables = storage_->tables();
  content::Store& blobs = storage_->blobs();
  bool exists_here = false;
  bool new_ingest = false;
  std::string backend_ref;
  NamespacedWriter::Shared shared;
  {
    // A shared ingest keeps its blob alive; it must be recorded before a
    // concurrent release can decide the blob is unused.
    std::shared_lock blob_use(storage_->blob_use_lock());
    CTRD_RETURN_IF_ERROR(storage_->update([&](lmdb::Txn& txn) -> Status {
      if (!options.expected.empty()) {
        CTRD_ASSIGN_OR_RETURN(auto held, txn.get(tables.blobs, keys::join(ns_, options.expected)));
        if (held) {
          // The lease still takes the blob, so a caller relying on it to
          // keep the blob alive is covered; AlreadyExists follows the commit.
          exists_here = true;
          return storage_->hold_in_lease(txn, ns_, lease_, resource_type::kContent, options.expected);
        }
        if (auto info = blobs.info(options.expected);
            info.ok() && (options.total == 0 || options.total == info->size)) {
          shared = {options.expected, info->size};
        }
      }

      CTRD_RETURN_IF_ERROR(storage_->ensure_namespace(txn, ns_));
      std::string key = keys::join(ns_, options.ref);
      IngestRecord ingest;
      CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(tables.ingests, key));
      if (stored) {
        CTRD_RETURN_IF_ERROR(decode(*stored, options.ref, &ingest));
      } else {
        CTRD_ASSIGN_OR_RETURN(uint64_t sequence, storage_->next_ingest_sequence(txn));
        ingest.backend_ref = ns_ + "/" + std::to_string(sequence) + "/" + options.ref;
        new_ingest = true;
      }
      backend_ref = ingest.backend_ref;

      CTRD_RETURN_IF_ERROR(storage_->hold_in_lease(txn, ns_, lease_, resource_type::kIngests, options.ref));
      // A leased ingest lives as long as its lease.
      ingest.expire_at =
          lease_.empty() ? content::Clock::now() + kUnleasedIngestLifetime : content::Clock::time_point();
      if (!shared.digest.empty()) {
        ingest.expected = shared.digest;
        ingest.expected_size = shared.size;
      }
      return txn.put(tables.ingests, key, encode(ingest));
    }));
  }
  if (exists_here) return errdefs::AlreadyExists("content " + options.expected + ": already exists");

  std::unique_ptr<content::Writer> backend;
  if (shared.digest.empty()) {
    // Opened outside the transaction: the blob store may wait for another
    // writer of the ref to close, and metadata writes must not wait with it.
    // No expected digest: it was checked against this namespace above, and
    // the blob store must not answer for a blob only another namespace holds.
    auto opened = blobs.writer({.ref = backend_ref, .total = options.total, .expected = ""});
    if (!opened.ok()) {
      if (new_ingest) forget_ingest(options.ref, backend_ref);
      return opened.status();
    }
    backend = std::move(*opened);
  }
  return std::unique_ptr<content::Writer>(std::make_unique<NamespacedWriter>(
      storage_, ns_, lease_, options.ref, std::move(backend_ref), std::move(backend), std::move(shared)));
}

void ContentStore::forget_ingest(std::string_view ref, std::string_view backend_ref) {
  Status s = storage_->update([&](lmdb::Txn& txn) -> Status {
    std::string key = keys::join(ns_, ref);
    CTRD_ASSIGN_OR_RETURN(auto stored, txn.get(storage_->tables().ingests, key));
    if (!stored) return Status::Ok();
    IngestRecord ingest;
    CTRD_RETURN_IF_ERROR(decode(*stored, ref, &ingest));
    // Someone else may have reused the ref since; theirs stays.
    if (ingest.backend_ref != backend_ref) return Status::Ok();
    CTRD_RETURN_IF_ERROR(txn.remove(storage_->tables().ingests, key));
    return storage_->drop_from_lease(txn, ns_, lease_, resource_type::kIngests, ref);
  });
  if (!s.ok())
    log::warn("forget ingest the blob store refused", {{"ref", std::string(ref)}, {"error", s.to_string()}});
}

}  // namespace ctrd::metadata
