// Test support for the metadata store: an in-memory content::Store standing in
// for content/local, a temporary directory removed even when a test fails, and
// small helpers to write blobs.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "content/content.h"
#include "errdefs/errdefs.h"
#include "fake_snapshotter.h"
#include "metadata/db.h"
#include "support/digest.h"
#include "support/temp_dir.h"

namespace ctrd::metadata::test_support {

using content::Clock;
using errdefs::Status;
using errdefs::StatusOr;

inline std::string sha256(std::string_view data) { return ctrd::testing::sha256_digest(data); }

using TempDir = ::ctrd::testing::TempDir;

// A thread-safe, in-memory blob store with the content::Store contract the
// metadata store relies on: ingests by ref, resumable, verified on commit.
class FakeBlobStore : public content::Store {
 public:
  StatusOr<content::Info> info(std::string_view digest) override {
    std::lock_guard lock(mu_);
    auto it = blobs_.find(std::string(digest));
    if (it == blobs_.end()) return errdefs::NotFound("blob " + std::string(digest));
    return content::Info{it->first, static_cast<int64_t>(it->second.size()), {}, {}, {}};
  }
  StatusOr<content::Info> update(const content::Info&, const std::vector<std::string>&) override {
    return errdefs::NotImplemented("fake update");
  }
  Status walk(const std::function<Status(const content::Info&)>& fn,
              const std::vector<std::string>&) override {
    std::vector<content::Info> infos;
    {
      std::lock_guard lock(mu_);
      for (const auto& [d, data] : blobs_)
        infos.push_back({d, static_cast<int64_t>(data.size()), {}, {}, {}});
    }
    for (const auto& i : infos) CTRD_RETURN_IF_ERROR(fn(i));
    return Status::Ok();
  }
  Status remove(std::string_view digest) override {
    std::lock_guard lock(mu_);
    if (blobs_.erase(std::string(digest)) == 0) return errdefs::NotFound("blob " + std::string(digest));
    ++removals_;
    return Status::Ok();
  }
  StatusOr<std::unique_ptr<content::ReaderAt>> reader_at(std::string_view digest) override {
    std::lock_guard lock(mu_);
    auto it = blobs_.find(std::string(digest));
    if (it == blobs_.end()) return errdefs::NotFound("blob " + std::string(digest));
    return std::unique_ptr<content::ReaderAt>(std::make_unique<Reader>(it->second));
  }
  StatusOr<content::Status> status(std::string_view ref) override {
    std::lock_guard lock(mu_);
    auto it = ingests_.find(std::string(ref));
    if (it == ingests_.end()) return errdefs::NotFound("ingest " + std::string(ref));
    return status_locked(it->first, it->second);
  }
  StatusOr<std::vector<content::Status>> list_statuses(const std::vector<std::string>&) override {
    std::lock_guard lock(mu_);
    std::vector<content::Status> out;
    for (const auto& [ref, ingest] : ingests_) out.push_back(status_locked(ref, ingest));
    return out;
  }
  Status abort(std::string_view ref) override {
    std::lock_guard lock(mu_);
    if (ingests_.erase(std::string(ref)) == 0) return errdefs::NotFound("ingest " + std::string(ref));
    return Status::Ok();
  }
  StatusOr<std::unique_ptr<content::Writer>> writer(const content::WriterOptions& options) override {
    if (options.ref.empty()) return errdefs::InvalidArgument("ref required");
    std::lock_guard lock(mu_);
    if (!refuse_writers_.ok()) return refuse_writers_;
    if (!options.expected.empty() && blobs_.count(options.expected) != 0) {
      return errdefs::AlreadyExists("blob " + options.expected);
    }
    auto [it, created] = ingests_.try_emplace(options.ref);
    if (created) {
      it->second.started_at = Clock::now();
      it->second.total = options.total;
    }
    writer_refs_.push_back(options.ref);
    return std::unique_ptr<content::Writer>(std::make_unique<FakeWriter>(this, options.ref));
  }

  // Makes writer() fail with `status` (Ok to stop).
  void refuse_writers(Status status) {
    std::lock_guard lock(mu_);
    refuse_writers_ = std::move(status);
  }

  // Test inspection.
  bool has_blob(const std::string& digest) {
    std::lock_guard lock(mu_);
    return blobs_.count(digest) != 0;
  }
  std::set<std::string> ingest_refs() {
    std::lock_guard lock(mu_);
    std::set<std::string> out;
    for (const auto& [ref, _] : ingests_) out.insert(ref);
    return out;
  }
  std::vector<std::string> writer_refs() {
    std::lock_guard lock(mu_);
    return writer_refs_;
  }
  int removals() {
    std::lock_guard lock(mu_);
    return removals_;
  }

 private:
  struct Ingest {
    std::string data;
    int64_t total = 0;
    Clock::time_point started_at;
    Clock::time_point updated_at;
  };

  class Reader : public content::ReaderAt {
   public:
    explicit Reader(std::string data) : data_(std::move(data)) {}
    StatusOr<size_t> read_at(char* buf, size_t n, int64_t offset) override {
      if (offset < 0 || static_cast<size_t>(offset) >= data_.size()) return size_t{0};
      size_t count = std::min(n, data_.size() - static_cast<size_t>(offset));
      data_.copy(buf, count, static_cast<size_t>(offset));
      return count;
    }
    int64_t size() const override { return static_cast<int64_t>(data_.size()); }

   private:
    std::string data_;
  };

  class FakeWriter : public content::Writer {
   public:
    FakeWriter(FakeBlobStore* store, std::string ref) : store_(store), ref_(std::move(ref)) {}
    Status write(std::string_view data) override {
      std::lock_guard lock(store_->mu_);
      auto it = store_->ingests_.find(ref_);
      if (it == store_->ingests_.end()) return errdefs::NotFound("ingest " + ref_);
      it->second.data.append(data);
      it->second.updated_at = Clock::now();
      return Status::Ok();
    }
    std::string digest() override {
      std::lock_guard lock(store_->mu_);
      auto it = store_->ingests_.find(ref_);
      return it == store_->ingests_.end() ? std::string() : sha256(it->second.data);
    }
    StatusOr<content::Status> status() override {
      std::lock_guard lock(store_->mu_);
      auto it = store_->ingests_.find(ref_);
      if (it == store_->ingests_.end()) return errdefs::NotFound("ingest " + ref_);
      return store_->status_locked(ref_, it->second);
    }
    Status truncate(int64_t size) override {
      std::lock_guard lock(store_->mu_);
      auto it = store_->ingests_.find(ref_);
      if (it == store_->ingests_.end()) return errdefs::NotFound("ingest " + ref_);
      it->second.data.resize(static_cast<size_t>(size));
      return Status::Ok();
    }
    Status commit(int64_t size, std::string_view expected, const content::Labels&) override {
      std::lock_guard lock(store_->mu_);
      auto it = store_->ingests_.find(ref_);
      if (it == store_->ingests_.end()) return errdefs::NotFound("ingest " + ref_);
      std::string data = it->second.data;
      std::string actual = sha256(data);
      if (size > 0 && static_cast<size_t>(size) != data.size()) {
        return errdefs::FailedPrecondition("size mismatch " + std::to_string(data.size()) +
                                           " != " + std::to_string(size));
      }
      if (!expected.empty() && expected != actual) {
        return errdefs::FailedPrecondition("digest mismatch " + actual + " != " + std::string(expected));
      }
      store_->ingests_.erase(it);
      if (!store_->blobs_.emplace(actual, std::move(data)).second)
        return errdefs::AlreadyExists("blob " + actual);
      return Status::Ok();
    }

   private:
    FakeBlobStore* store_;
    std::string ref_;
  };

  content::Status status_locked(const std::string& ref, const Ingest& ingest) const {
    return {ref,
            static_cast<int64_t>(ingest.data.size()),
            ingest.total,
            "",
            ingest.started_at,
            ingest.updated_at};
  }

  std::mutex mu_;
  std::map<std::string, std::string> blobs_;
  std::map<std::string, Ingest> ingests_;
  std::vector<std::string> writer_refs_;
  int removals_ = 0;
  Status refuse_writers_;
};

// Writes `data` through `store` under `ref` and commits it.
inline Status write_blob(content::Store& store, const std::string& ref, std::string_view data,
                         const content::Labels& labels = {}, bool with_expected = true) {
  content::WriterOptions options{ref, static_cast<int64_t>(data.size()), with_expected ? sha256(data) : ""};
  CTRD_ASSIGN_OR_RETURN(auto writer, store.writer(options));
  CTRD_ASSIGN_OR_RETURN(content::Status st, writer->status());
  if (st.offset < static_cast<int64_t>(data.size())) {
    CTRD_RETURN_IF_ERROR(writer->write(data.substr(static_cast<size_t>(st.offset))));
  }
  return writer->commit(static_cast<int64_t>(data.size()), sha256(data), labels);
}

inline std::string read_all(content::Store& store, const std::string& digest) {
  auto reader = store.reader_at(digest);
  if (!reader.ok()) return "<" + reader.status().to_string() + ">";
  std::string out(static_cast<size_t>((*reader)->size()), '\0');
  auto n = (*reader)->read_at(out.data(), out.size(), 0);
  if (!n.ok()) return "<" + n.status().to_string() + ">";
  out.resize(*n);
  return out;
}

// A fresh store over a fake blob store and a fake snapshotter ("fake") in a
// temporary directory.
class MetadataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    blobs_ = std::make_shared<FakeBlobStore>();
    snapshotter_ = std::make_shared<FakeSnapshotter>();
    auto db = DB::open(dir_.sub("metadata"), blobs_, {{"fake", snapshotter_}});
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    db_ = *db;
  }
  // Closes and opens the store again over the same files, blobs and snapshots.
  void reopen() {
    db_.reset();
    auto db = DB::open(dir_.sub("metadata"), blobs_, {{"fake", snapshotter_}});
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    db_ = *db;
  }
  // The "fake" snapshotter as namespace `ns` sees it.
  std::shared_ptr<snapshots::Snapshotter> snapshots(const std::string& ns, const std::string& lease = "") {
    auto sn = db_->snapshotter(ns, "fake", lease);
    EXPECT_TRUE(sn.ok()) << sn.status().to_string();
    return sn.ok() ? *sn : nullptr;
  }

  TempDir dir_;  // first: removed after the database is closed
  std::shared_ptr<FakeBlobStore> blobs_;
  std::shared_ptr<FakeSnapshotter> snapshotter_;
  std::shared_ptr<DB> db_;
};

}  // namespace ctrd::metadata::test_support
