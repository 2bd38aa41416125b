// containers: per-namespace container records (containerd's containers.Store).
// Obtained from DB::containers(namespace); a cheap handle, safe to copy and to
// use from any thread. Specs, runtime options and extensions are opaque
// google.protobuf.Any values (type URL + bytes), stored as given.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "content/content.h"
#include "errdefs/errdefs.h"

namespace ctrd::metadata {

class Storage;
using Labels = content::Labels;

struct AnyValue {
  std::string type_url;
  std::string value;
  bool operator==(const AnyValue&) const = default;
};

struct Container {
  std::string id;
  Labels labels;
  std::string image;
  struct Runtime {
    std::string name;
    AnyValue options;
    bool operator==(const Runtime&) const = default;
  } runtime;
  AnyValue spec;
  std::string snapshotter;
  std::string snapshot_key;
  content::Clock::time_point created_at;
  content::Clock::time_point updated_at;
  std::map<std::string, AnyValue> extensions;
};

class Containers {
 public:
  Containers(std::shared_ptr<Storage> storage, std::string ns)
      : storage_(std::move(storage)), ns_(std::move(ns)) {}

  errdefs::StatusOr<Container> get(std::string_view id);
  // Containers matching any of `filters` (fields: id, image, runtime.name,
  // snapshotter, snapshotkey, labels.<key>), by id.
  errdefs::StatusOr<std::vector<Container>> list(const std::vector<std::string>& filters = {});
  // Validates as containerd does (id an identifier, runtime name and spec
  // set, labels); AlreadyExists for a duplicate id. Sets both times.
  errdefs::StatusOr<Container> create(const Container& container);
  // Field paths: "labels", "labels.<key>", "spec", "image", "runtime",
  // "snapshotter", "snapshotkey", "extensions", "extensions.<key>"; empty means
  // every mutable field. Changing snapshotter / snapshot key / runtime name is
  // InvalidArgument as in containerd when they are immutable there.
  errdefs::StatusOr<Container> update(const Container& container, const std::vector<std::string>& fieldpaths);
  errdefs::Status remove(std::string_view id);

 private:
  std::shared_ptr<Storage> storage_;
  std::string ns_;
};

}  // namespace ctrd::metadata
