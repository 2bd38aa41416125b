#include "snapshots/dir_snapshotter.h"

#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "log/log.h"
#include "os/dirs.h"
#include "os/fs.h"
#include "os/unique_fd.h"

namespace ctrd::snapshots {

namespace fs = os::fs;

using errdefs::Status;
using errdefs::StatusOr;

namespace {

// The id a directory name stands for, or 0 when it is not a snapshot's.
uint64_t parse_id(std::string_view name) {
  uint64_t id = 0;
  if (name.empty()) return 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
  if (ec != std::errc() || end != name.data() + name.size() || name.front() == '0') return 0;
  return id;
}

}  // namespace

DirSnapshotter::DirSnapshotter(std::string root, std::unique_ptr<Metastore> metastore)
    : root_(std::move(root)), metastore_(std::move(metastore)) {}

DirSnapshotter::~DirSnapshotter() = default;

StatusOr<std::unique_ptr<Metastore>> DirSnapshotter::open_root(const std::string& root) {
  CTRD_RETURN_IF_ERROR(os::ensure_dir(root, 0700));
  CTRD_RETURN_IF_ERROR(os::ensure_dir(root + "/snapshots", 0700));
  return Metastore::open(root + "/metadata");
}

std::string DirSnapshotter::snapshot_dir(uint64_t id) const {
  return root_ + "/snapshots/" + std::to_string(id);
}

StatusOr<Info> DirSnapshotter::stat(std::string_view key) { return metastore_->stat(key); }

StatusOr<Info> DirSnapshotter::update(const Info& info, const std::vector<std::string>& fieldpaths) {
  return metastore_->update(info, fieldpaths);
}

StatusOr<Usage> DirSnapshotter::usage(std::string_view key) {
  CTRD_ASSIGN_OR_RETURN(Snapshot snap, metastore_->get(key));
  CTRD_ASSIGN_OR_RETURN(os::fs::Usage usage, os::fs::disk_usage(layer_dir(snap.id)));
  return Usage{.size = usage.size, .inodes = usage.inodes};
}

StatusOr<std::vector<mount::Mount>> DirSnapshotter::mounts(std::string_view key) {
  CTRD_ASSIGN_OR_RETURN(Snapshot snap, metastore_->get(key));
  if (snap.kind != Kind::kActive && snap.kind != Kind::kView) {
    return errdefs::FailedPrecondition("requested snapshot " + std::string(key) + " not active or view");
  }
  return mounts_for(snap);
}

StatusOr<std::vector<mount::Mount>> DirSnapshotter::prepare(std::string_view key, std::string_view parent,
                                                            const Labels& labels) {
  return create(Kind::kActive, key, parent, labels);
}

StatusOr<std::vector<mount::Mount>> DirSnapshotter::view(std::string_view key, std::string_view parent,
                                                         const Labels& labels) {
  return create(Kind::kView, key, parent, labels);
}

StatusOr<std::vector<mount::Mount>> DirSnapshotter::create(Kind kind, std::string_view key,
                                                           std::string_view parent, const Labels& labels) {
  std::shared_lock lock(dirs_mutex_);
  // Checked up front too, so that a doomed call does not copy a whole tree.
  if (auto existing = metastore_->stat(key); existing.ok()) {
    return errdefs::AlreadyExists("snapshot " + std::string(key) + " already exists");
  }
  std::vector<uint64_t> parent_ids;
  if (!parent.empty()) {
    CTRD_ASSIGN_OR_RETURN(Snapshot p, metastore_->get_parent(parent));
    parent_ids.push_back(p.id);
    parent_ids.insert(parent_ids.end(), p.parent_ids.begin(), p.parent_ids.end());
  }

  std::string temp = root_ + "/snapshots/new-XXXXXX";
  if (::mkdtemp(temp.data()) == nullptr) return errdefs::FromErrno(errno, "create snapshot dir in " + root_);
  if (Status s = populate(temp, kind, parent_ids); !s.ok()) {
    (void)fs::remove_tree(temp);
    return s;
  }
  std::string final_dir;
  auto placed = metastore_->create(kind, key, parent, labels, [&](const Snapshot& snap, Labels& stored) {
    // The parent was read in another transaction: it may have been removed
    // and another snapshot created under its name since.
    if (snap.parent_ids != parent_ids) {
      return errdefs::Aborted("parent " + std::string(parent) + " changed while preparing " +
                              std::string(key));
    }
    add_labels(snap, stored);
    std::string dir = snapshot_dir(snap.id);
    if (::rename(temp.c_str(), dir.c_str()) != 0)
      return errdefs::FromErrno(errno, "rename " + temp + " to " + dir);
    final_dir = std::move(dir);
    return Status::Ok();
  });
  if (!placed.ok()) {
    (void)fs::remove_tree(final_dir.empty() ? temp : final_dir);
    return placed.status();
  }
  return mounts_for(*placed);
}

Status DirSnapshotter::commit(std::string_view name, std::string_view key, const Labels& labels) {
  return metastore_->commit(key, name, labels).status();
}

Status DirSnapshotter::remove(std::string_view key) {
  std::shared_lock lock(dirs_mutex_);
  std::string from;
  std::string aside;
  auto removed = metastore_->remove(key, [&](const Snapshot& snap) {
    from = snapshot_dir(snap.id);
    std::string dir = root_ + "/snapshots/rm-" + std::to_string(snap.id);
    if (::rename(from.c_str(), dir.c_str()) != 0) {
      if (errno == ENOENT) return Status::Ok();  // already gone: the record alone remains to drop
      return errdefs::FromErrno(errno, "rename " + from + " to " + dir);
    }
    aside = std::move(dir);
    return Status::Ok();
  });
  if (!removed.ok()) {
    if (!aside.empty() && ::rename(aside.c_str(), from.c_str()) != 0) {
      log::warn("restoring snapshot dir after failed remove", {{"dir", aside}});
    }
    return removed.status();
  }
  if (!aside.empty()) {
    if (Status s = fs::remove_tree(aside); !s.ok()) {
      // The record is gone; cleanup() retries the directory.
      log::warn("removing snapshot dir", {{"dir", aside}, {"error", s.to_string()}});
    }
  }
  return Status::Ok();
}

Status DirSnapshotter::walk(const std::function<Status(const Info&)>& fn,
                            const std::vector<std::string>& filters) {
  return metastore_->walk(fn, filters);
}

Status DirSnapshotter::cleanup() {
  std::unique_lock lock(dirs_mutex_);
  CTRD_ASSIGN_OR_RETURN(auto ids, metastore_->ids());
  const std::string dir = root_ + "/snapshots";
  std::error_code ec;
  std::vector<std::string> stray;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    uint64_t id = parse_id(name);
    if (id == 0 || !ids.contains(id)) stray.push_back(entry.path().string());
  }
  if (ec) return errdefs::FromErrno(ec.value(), "list " + dir);
  for (const auto& path : stray) {
    log::info("removing unused snapshot dir", {{"path", path}});
    CTRD_RETURN_IF_ERROR(fs::remove_tree(path));
  }
  return Status::Ok();
}

}  // namespace ctrd::snapshots
