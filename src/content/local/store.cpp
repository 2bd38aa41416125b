#include "content/local/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>
#include <utility>

#include "content/local/files.h"
#include "content/local/ingest.h"
#include "content/local/writer.h"
#include "digest/sha256.h"
#include "filters/filters.h"
#include "log/log.h"
#include "os/dirs.h"
#include "os/unique_fd.h"

namespace ctrd::content::local {
namespace {

constexpr mode_t kDataMode = 0600;

class LocalReaderAt final : public ReaderAt {
 public:
  LocalReaderAt(UniqueFd fd, int64_t size) : fd_(std::move(fd)), size_(size) {}

  errdefs::StatusOr<size_t> read_at(char* buf, size_t n, int64_t offset) override {
    if (offset < 0) return errdefs::InvalidArgument("read at negative offset " + std::to_string(offset));
    return read_full_at(fd_.get(), buf, n, offset);
  }
  int64_t size() const override { return size_; }

 private:
  UniqueFd fd_;
  int64_t size_;
};

Info info_from_stat(std::string digest, const struct stat& st) {
  Info info;
  info.digest = std::move(digest);
  info.size = static_cast<int64_t>(st.st_size);
  info.created_at = to_time_point(st.st_mtim);
  // containerd reports the access time; commit sets both to the commit time.
  info.updated_at = to_time_point(st.st_atim);
  return info;
}

filters::Adaptor adapt_info(const Info& info) {
  return [&info](const std::vector<std::string>& fieldpath) -> std::optional<std::string> {
    if (fieldpath.empty()) return std::nullopt;
    const std::string& field = fieldpath[0];
    if (field == "digest") return info.digest;
    if (field == "size") return std::to_string(info.size);
    if (field == "labels" && fieldpath.size() > 1) {
      std::string key = fieldpath[1];
      for (size_t i = 2; i < fieldpath.size(); ++i) key += "." + fieldpath[i];
      auto it = info.labels.find(key);
      if (it != info.labels.end()) return it->second;
    }
    return std::nullopt;
  };
}

filters::Adaptor adapt_status(const Status& status) {
  return [&status](const std::vector<std::string>& fieldpath) -> std::optional<std::string> {
    if (!fieldpath.empty() && fieldpath[0] == "ref") return status.ref;
    return std::nullopt;
  };
}

bool is_lower_hex_name(std::string_view name) {
  if (name.size() != 64) return false;
  for (char c : name) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Names in `dir`, skipping "." and "..". Taken as a snapshot so callbacks may
// add or remove entries while the caller iterates.
errdefs::StatusOr<std::vector<std::string>> list_directory(const std::string& dir) {
  DIR* raw = ::opendir(dir.c_str());
  if (raw == nullptr) return errdefs::FromErrno(errno, "open directory " + dir);
  std::unique_ptr<DIR, int (*)(DIR*)> handle(raw, &::closedir);
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* entry = ::readdir(handle.get());
    if (entry == nullptr) {
      if (errno != 0) return errdefs::FromErrno(errno, "read directory " + dir);
      break;
    }
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  return names;
}

errdefs::Status validate_ref(std::string_view ref) {
  if (ref.empty()) return errdefs::InvalidArgument("ref must not be empty");
  return errdefs::Status::Ok();
}

class LocalStore final : public Store {
 public:
  LocalStore(std::string root, Options options)
      : root_(std::move(root)),
        blobs_dir_(root_ + "/blobs/sha256"),
        ingest_root_(root_ + "/ingest"),
        options_(options) {}

  errdefs::StatusOr<Info> info(std::string_view digest) override {
    CTRD_RETURN_IF_ERROR(validate_digest(digest));
    struct stat st {};
    if (::stat(blob_path(digest).c_str(), &st) != 0) return blob_error(errno, digest);
    return info_from_stat(std::string(digest), st);
  }

  errdefs::StatusOr<Info> update(const Info& /*info*/,
                                 const std::vector<std::string>& /*fieldpaths*/) override {
    return errdefs::FailedPrecondition("update not supported on immutable content store");
  }

  errdefs::Status walk(const std::function<errdefs::Status(const Info&)>& fn,
                       const std::vector<std::string>& filter_texts) override {
    CTRD_ASSIGN_OR_RETURN(filters::Filter filter, filters::parse_all(filter_texts));
    auto names = list_directory(blobs_dir_);
    if (!names.ok()) {
      if (errdefs::IsNotFound(names.status())) return errdefs::Status::Ok();
      return names.status();
    }
    for (const std::string& name : *names) {
      if (!is_lower_hex_name(name)) {
        // Not ours (or a corrupted layout): reporting it would hand clients a
        // digest that every other call rejects.
        log::warn("ignoring unexpected file in blob directory", {{"path", blobs_dir_ + "/" + name}});
        continue;
      }
      struct stat st {};
      const std::string path = blobs_dir_ + "/" + name;
      if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) continue;  // removed since the listing
        return errdefs::FromErrno(errno, "stat " + path);
      }
      if (!S_ISREG(st.st_mode)) continue;
      Info blob = info_from_stat("sha256:" + name, st);
      if (!filter.match(adapt_info(blob))) continue;
      CTRD_RETURN_IF_ERROR(fn(blob));
    }
    return errdefs::Status::Ok();
  }

  errdefs::Status remove(std::string_view digest) override {
    CTRD_RETURN_IF_ERROR(validate_digest(digest));
    if (::unlink(blob_path(digest).c_str()) != 0) return blob_error(errno, digest);
    return errdefs::Status::Ok();
  }

  errdefs::StatusOr<std::unique_ptr<ReaderAt>> reader_at(std::string_view digest) override {
    CTRD_RETURN_IF_ERROR(validate_digest(digest));
    auto fd = open_file(blob_path(digest), O_RDONLY);
    if (!fd.ok()) {
      if (errdefs::IsNotFound(fd.status())) return blob_error(ENOENT, digest);
      return fd.status();
    }
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return blob_error(errno, digest);
    return std::unique_ptr<ReaderAt>(
        std::make_unique<LocalReaderAt>(std::move(fd).value(), static_cast<int64_t>(st.st_size)));
  }

  errdefs::StatusOr<Status> status(std::string_view ref) override {
    CTRD_RETURN_IF_ERROR(validate_ref(ref));
    auto status = read_ingest_status(IngestPaths::for_ref(ingest_root_, ref));
    if (!status.ok()) {
      if (errdefs::IsNotFound(status.status())) return ingest_not_found(ref);
      return status.status();
    }
    if (status->ref != ref) return ingest_not_found(ref);
    return status;
  }

  errdefs::StatusOr<std::vector<Status>> list_statuses(
      const std::vector<std::string>& filter_texts) override {
    CTRD_ASSIGN_OR_RETURN(filters::Filter filter, filters::parse_all(filter_texts));
    CTRD_ASSIGN_OR_RETURN(std::vector<std::string> names, list_directory(ingest_root_));
    std::vector<Status> active;
    for (const std::string& name : names) {
      const std::string dir = ingest_root_ + "/" + name;
      struct stat st {};
      if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;  // gone, or not an ingest
      auto status = read_ingest_status(IngestPaths::in_dir(dir));
      if (!status.ok()) {
        // Committed or aborted while listing, or created but not yet complete.
        if (errdefs::IsNotFound(status.status())) continue;
        return status.status();
      }
      if (filter.match(adapt_status(*status))) active.push_back(std::move(status).value());
    }
    return active;
  }

  errdefs::Status abort(std::string_view ref) override {
    CTRD_RETURN_IF_ERROR(validate_ref(ref));
    const IngestPaths paths = IngestPaths::for_ref(ingest_root_, ref);
    CTRD_ASSIGN_OR_RETURN(RefLock lock, RefLock::acquire(paths.dir, ref, std::chrono::milliseconds(0)));
    struct stat st {};
    if (::lstat(paths.dir.c_str(), &st) != 0) {
      if (errno == ENOENT) return ingest_not_found(ref);
      return errdefs::FromErrno(errno, "stat " + paths.dir);
    }
    std::error_code ec;
    std::filesystem::remove_all(paths.dir, ec);
    if (ec) return errdefs::FromErrno(ec.value(), "remove ingest " + paths.dir);
    return errdefs::Status::Ok();
  }

  errdefs::StatusOr<std::unique_ptr<Writer>> writer(const WriterOptions& options) override {
    CTRD_RETURN_IF_ERROR(validate_ref(options.ref));
    if (options.total < 0) {
      return errdefs::InvalidArgument("total must not be negative, got " + std::to_string(options.total));
    }
    if (!options.expected.empty()) {
      CTRD_RETURN_IF_ERROR(validate_digest(options.expected).with_context("expected"));
      if (::access(blob_path(options.expected).c_str(), F_OK) == 0) {
        return errdefs::AlreadyExists("content " + options.expected + ": already exists");
      }
    }

    OpenIngest ingest;
    ingest.paths = IngestPaths::for_ref(ingest_root_, options.ref);
    ingest.blobs_dir = blobs_dir_;
    CTRD_ASSIGN_OR_RETURN(ingest.lock, RefLock::acquire(ingest.paths.dir, options.ref, options_.lock_wait));

    bool resumed = false;
    const bool fresh = ::mkdir(ingest.paths.dir.c_str(), 0700) == 0;
    if (!fresh) {
      if (errno != EEXIST) return errdefs::FromErrno(errno, "create ingest " + ingest.paths.dir);
      CTRD_ASSIGN_OR_RETURN(resumed, resume(options, ingest));
    }
    if (!resumed) {
      if (errdefs::Status created = create(options, ingest); !created.ok()) {
        // A half-made directory would only be recreated later; don't leave it for list_statuses.
        if (fresh) {
          std::error_code ec;
          std::filesystem::remove_all(ingest.paths.dir, ec);
        }
        return created;
      }
    }
    ingest.status.expected = options.expected;
    return std::unique_ptr<Writer>(std::make_unique<LocalWriter>(std::move(ingest)));
  }

 private:
  std::string blob_path(std::string_view digest) const {
    return blobs_dir_ + "/" + std::string(digest.substr(digest.find(':') + 1));
  }

  static errdefs::Status blob_error(int err, std::string_view digest) {
    if (err == ENOENT) return errdefs::NotFound("content " + std::string(digest) + ": not found");
    return errdefs::FromErrno(err, "content " + std::string(digest));
  }

  static errdefs::Status ingest_not_found(std::string_view ref) {
    return errdefs::NotFound("ingest ref \"" + std::string(ref) + "\": not found");
  }

  // Picks up an existing ingest directory. False when it cannot be resumed and
  // must be recreated, as containerd does: incomplete, another ref's (a hash
  // collision or corruption), or a stored total that differs from the new one.
  errdefs::StatusOr<bool> resume(const WriterOptions& options, OpenIngest& ingest) {
    auto stored = read_ingest_status(ingest.paths);
    if (!stored.ok()) {
      log::info("recreating ingest that cannot be resumed",
                {{"ref", options.ref}, {"path", ingest.paths.dir}, {"error", stored.status().to_string()}});
      return false;
    }
    if (stored->ref != options.ref) {
      log::warn("recreating ingest recorded for another ref",
                {{"ref", options.ref}, {"stored_ref", stored->ref}, {"path", ingest.paths.dir}});
      return false;
    }
    if (options.total > 0 && stored->total > 0 && options.total != stored->total) {
      log::info("recreating ingest: provided total differs from status",
                {{"ref", options.ref},
                 {"total", std::to_string(options.total)},
                 {"stored_total", std::to_string(stored->total)}});
      return false;
    }

    CTRD_ASSIGN_OR_RETURN(ingest.data, open_file(ingest.paths.data, O_RDWR));
    CTRD_ASSIGN_OR_RETURN(int64_t hashed, hash_file(ingest.data.get(), ingest.hasher));
    ingest.status = std::move(stored).value();
    ingest.status.offset = hashed;
    if (ingest.status.total == 0 && options.total > 0) {
      CTRD_RETURN_IF_ERROR(write_file_durably(ingest.paths.total, std::to_string(options.total)));
      ingest.status.total = options.total;
    }
    return true;
  }

  // Lays out a fresh ingest; `data` comes last so that its presence marks the
  // ingest complete.
  errdefs::Status create(const WriterOptions& options, OpenIngest& ingest) {
    if (::unlink(ingest.paths.data.c_str()) != 0 && errno != ENOENT) {
      return errdefs::FromErrno(errno, "remove stale " + ingest.paths.data);
    }
    const Clock::time_point now = Clock::now();
    const std::string timestamp = format_timestamp(now);
    CTRD_RETURN_IF_ERROR(write_file_durably(ingest.paths.ref, options.ref));
    CTRD_RETURN_IF_ERROR(write_file_durably(ingest.paths.started_at, timestamp));
    CTRD_RETURN_IF_ERROR(write_file_durably(ingest.paths.updated_at, timestamp));
    if (options.total > 0) {
      CTRD_RETURN_IF_ERROR(write_file_durably(ingest.paths.total, std::to_string(options.total)));
    } else if (::unlink(ingest.paths.total.c_str()) != 0 && errno != ENOENT) {
      return errdefs::FromErrno(errno, "remove stale " + ingest.paths.total);
    }
    CTRD_ASSIGN_OR_RETURN(ingest.data, open_file(ingest.paths.data, O_RDWR | O_CREAT | O_TRUNC, kDataMode));
    ingest.hasher.reset();
    ingest.status = Status{};
    ingest.status.ref = options.ref;
    ingest.status.total = options.total;
    ingest.status.started_at = now;
    ingest.status.updated_at = now;
    return errdefs::Status::Ok();
  }

  const std::string root_;
  const std::string blobs_dir_;
  const std::string ingest_root_;
  const Options options_;
};

}  // namespace

errdefs::StatusOr<std::shared_ptr<Store>> open_store(const std::string& root, const Options& options) {
  if (root.empty()) return errdefs::InvalidArgument("content store root must not be empty");
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(root, ec);
  if (ec) return errdefs::FromErrno(ec.value(), "resolve content store root " + root);
  std::string normalized = absolute.lexically_normal().string();
  while (normalized.size() > 1 && normalized.back() == '/') normalized.pop_back();

  // Only the daemon reads blobs; clients go through the API.
  for (const char* sub : {"", "/ingest", "/blobs", "/blobs/sha256"}) {
    CTRD_RETURN_IF_ERROR(os::ensure_dir(normalized + sub, 0700));
  }
  return std::shared_ptr<Store>(std::make_shared<LocalStore>(std::move(normalized), options));
}

}  // namespace ctrd::content::local
