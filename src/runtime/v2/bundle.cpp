#include "runtime/v2/bundle.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "identifiers/identifiers.h"
#include "mount/mount.h"
#include "os/fs.h"

namespace ctrd::runtime::v2 {
namespace {

namespace fs = std::filesystem;

errdefs::Status make_dir(const std::string& path, mode_t mode, bool exist_ok) {
  if (::mkdir(path.c_str(), mode) == 0 || (exist_ok && errno == EEXIST)) return errdefs::Status::Ok();
  return errdefs::FromErrno(errno, "mkdir " + path);
}

errdefs::Status make_dirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return errdefs::Internal("mkdir " + path + ": " + ec.message());
  ::chmod(path.c_str(), mode);
  return errdefs::Status::Ok();
}

// With a user namespace the container's root must reach the bundle: it
// becomes group-owned by the host gid of container gid 0, as in containerd.
errdefs::Status share_with_remapped_root(const std::string& path, const std::string& spec) {
  auto doc = nlohmann::json::parse(spec, nullptr, false);
  if (doc.is_discarded()) return errdefs::InvalidArgument("task spec is not valid JSON");
  const auto linux_it = doc.find("linux");
  if (linux_it == doc.end() || !linux_it->is_object()) return errdefs::Status::Ok();
  const auto maps = linux_it->find("gidMappings");
  if (maps == linux_it->end() || !maps->is_array()) return errdefs::Status::Ok();
  for (const auto& m : *maps) {
    if (m.value("containerID", 1u) != 0) continue;
    const auto gid = m.value("hostID", 0u);
    if (gid == 0) return errdefs::Status::Ok();
    if (::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0)
      return errdefs::FromErrno(errno, "chown " + path);
    if (::chmod(path.c_str(), 0710) != 0) return errdefs::FromErrno(errno, "chmod " + path);
  }
  return errdefs::Status::Ok();
}

errdefs::Status write_file(const std::string& path, const std::string& data, mode_t mode) {
  std::FILE* f = std::fopen(path.c_str(), "we");
  if (f == nullptr) return errdefs::FromErrno(errno, "create " + path);
  const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  if (std::fclose(f) != 0 || !ok) return errdefs::FromErrno(errno, "write " + path);
  ::chmod(path.c_str(), mode);
  return errdefs::Status::Ok();
}

errdefs::Status remove_renamed(const std::string& path) {
  const fs::path p(path);
  const std::string hidden = (p.parent_path() / ("." + p.filename().string())).string();
  if (::rename(path.c_str(), hidden.c_str()) != 0) {
    if (errno == ENOENT) return errdefs::Status::Ok();
    return errdefs::FromErrno(errno, "rename " + path);
  }
  return os::fs::remove_tree(hidden);
}

}  // namespace

errdefs::StatusOr<Bundle> Bundle::create(const std::string& state_dir, const std::string& root_dir,
                                         const std::string& ns, const std::string& id,
                                         const std::string& spec) {
  if (errdefs::Status valid = identifiers::validate(id); !valid.ok())
    return errdefs::InvalidArgument("invalid task id " + id + ": " + valid.message());
  Bundle bundle = at(state_dir, ns, id);
  const std::string work = root_dir + "/" + ns + "/" + id;

  CTRD_RETURN_IF_ERROR(make_dirs(state_dir + "/" + ns, 0711));
  CTRD_RETURN_IF_ERROR(make_dirs(root_dir + "/" + ns, 0711));
  if (::mkdir(bundle.path_.c_str(), 0700) != 0) {
    if (errno == EEXIST) return errdefs::AlreadyExists("bundle for task " + id + " already exists");
    return errdefs::FromErrno(errno, "mkdir " + bundle.path_);
  }
  auto built = [&]() -> errdefs::Status {
    CTRD_RETURN_IF_ERROR(share_with_remapped_root(bundle.path_, spec));
    CTRD_RETURN_IF_ERROR(make_dir(bundle.file("rootfs"), 0711, false));
    // A work dir left by a task of the same id that was never cleaned up
    // belongs to nobody now.
    if (::mkdir(work.c_str(), 0711) != 0) {
      if (errno != EEXIST) return errdefs::FromErrno(errno, "mkdir " + work);
      CTRD_RETURN_IF_ERROR(os::fs::remove_tree(work));
      CTRD_RETURN_IF_ERROR(make_dir(work, 0711, false));
    }
    if (::symlink(work.c_str(), bundle.file("work").c_str()) != 0)
      return errdefs::FromErrno(errno, "symlink " + bundle.file("work"));
    return write_file(bundle.file("config.json"), spec, 0666);
  }();
  if (!built.ok()) {
    (void)bundle.remove();
    return built;
  }
  return bundle;
}

Bundle Bundle::at(const std::string& state_dir, const std::string& ns, const std::string& id) {
  return Bundle(ns, id, state_dir + "/" + ns + "/" + id);
}

errdefs::Status Bundle::remove() const {
  char target[4096];
  const ssize_t n = ::readlink(file("work").c_str(), target, sizeof target - 1);
  const std::string work = n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string();
  const std::string rootfs = file("rootfs");
  CTRD_RETURN_IF_ERROR(mount::unmount_all(rootfs));
  errdefs::Status bundle_removed = remove_renamed(path_);
  errdefs::Status work_removed = work.empty() ? errdefs::Status::Ok() : remove_renamed(work);
  if (!bundle_removed.ok()) return bundle_removed;
  return work_removed;
}

}  // namespace ctrd::runtime::v2
