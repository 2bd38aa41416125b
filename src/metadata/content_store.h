// content_store: the content::Store a namespace sees (DB::content_store) —
// per-namespace blob records, labels and ingests over the shared blob store.
// Semantics are documented on DB::content_store; this header exists so the
// implementation can be tested and constructed inside src/metadata.
#pragma once

#include <memory>
#include <string>

#include "content/content.h"
#include "errdefs/errdefs.h"

namespace ctrd::metadata {

class Storage;

class ContentStore final : public content::Store {
 public:
  ContentStore(std::shared_ptr<Storage> storage, std::string ns, std::string lease)
      : storage_(std::move(storage)), ns_(std::move(ns)), lease_(std::move(lease)) {}

  errdefs::StatusOr<content::Info> info(std::string_view digest) override;
  errdefs::StatusOr<content::Info> update(const content::Info& info,
                                          const std::vector<std::string>& fieldpaths) override;
  // Fields: digest, size (decimal), labels.<key>.
  errdefs::Status walk(const std::function<errdefs::Status(const content::Info&)>& fn,
                       const std::vector<std::string>& filters) override;
  errdefs::Status remove(std::string_view digest) override;
  errdefs::StatusOr<std::unique_ptr<content::ReaderAt>> reader_at(std::string_view digest) override;

  errdefs::StatusOr<content::Status> status(std::string_view ref) override;
  // Fields: ref. Sorted by ref.
  errdefs::StatusOr<std::vector<content::Status>> list_statuses(
      const std::vector<std::string>& filters) override;
  errdefs::Status abort(std::string_view ref) override;
  errdefs::StatusOr<std::unique_ptr<content::Writer>> writer(const content::WriterOptions& options) override;

 private:
  // Undoes the record of a new ingest the blob store then refused to open.
  void forget_ingest(std::string_view ref, std::string_view backend_ref);

  std::shared_ptr<Storage> storage_;
  std::string ns_;
  std::string lease_;  // empty: not bound to a lease
};

}  // namespace ctrd::metadata
