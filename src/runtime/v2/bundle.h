// runtime/v2/bundle: a task's OCI bundle as containerd 1.6 lays it out —
// <state>/<ns>/<id>/{config.json, rootfs/, work -> <root>/<ns>/<id>} — where
// the shim runs and keeps its address, log fifo and runc state.
#pragma once

#include <string>

#include "errdefs/errdefs.h"

namespace ctrd::runtime::v2 {

class Bundle {
 public:
  // Validates `id` and writes the bundle; on failure nothing is left.
  static errdefs::StatusOr<Bundle> create(const std::string& state_dir, const std::string& root_dir,
                                          const std::string& ns, const std::string& id,
                                          const std::string& spec);
  // An existing bundle (nothing is read).
  static Bundle at(const std::string& state_dir, const std::string& ns, const std::string& id);

  const std::string& ns() const { return ns_; }
  const std::string& id() const { return id_; }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  // Unmounts the rootfs and removes the bundle and its work dir. Each is
  // renamed to a dot-name first, so a crash midway leaves nothing that
  // looks like a task.
  errdefs::Status remove() const;

 private:
  Bundle(std::string ns, std::string id, std::string path)
      : ns_(std::move(ns)), id_(std::move(id)), path_(std::move(path)) {}
  std::string ns_;
  std::string id_;
  std::string path_;
};

}  // namespace ctrd::runtime::v2
