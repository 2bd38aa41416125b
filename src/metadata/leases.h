// leases: per-namespace leases and the resources they hold (containerd's
// leases.Manager), for the leases service and for content writes bound to a
// lease.
//
// Obtained from DB::leases(namespace); a cheap handle, safe to copy and to use
// from any thread. Expiry (the "containerd.io/gc.expire" label) is only stored
// here; acting on it is the garbage collector's business.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "content/content.h"
#include "errdefs/errdefs.h"

namespace ctrd::metadata {

class Storage;
using Labels = content::Labels;

struct Lease {
  std::string id;
  content::Clock::time_point created_at;
  Labels labels;
};

// Resource types, as containerd spells them.
namespace resource_type {
inline constexpr std::string_view kContent = "content";             // id: a digest
inline constexpr std::string_view kIngests = "ingests";             // id: an ingest ref
inline constexpr std::string_view kSnapshotsPrefix = "snapshots/";  // + snapshotter; id: snapshot key
}  // namespace resource_type

struct LeaseResource {
  std::string id;
  std::string type;
  bool operator==(const LeaseResource&) const = default;
};

class Leases {
 public:
  Leases(std::shared_ptr<Storage> storage, std::string ns)
      : storage_(std::move(storage)), ns_(std::move(ns)) {}

  // Lease ids are free-form like containerd's (its clients generate ids such
  // as "1234-ab_-" that identifiers would reject), but must be non-empty, at
  // most 128 bytes and free of NUL. AlreadyExists for a duplicate. Creates the
  // namespace when it does not exist.
  errdefs::StatusOr<Lease> create(std::string_view id, const Labels& labels);

  // NotFound when absent. Only forgets the lease: what it held is left for the
  // garbage collector to judge.
  errdefs::Status remove(std::string_view id);

  // Leases matching any of `filters` (fields: id, labels.<key>), by id.
  errdefs::StatusOr<std::vector<Lease>> list(const std::vector<std::string>& filters = {});

  // Resource types are "content" (id must be a digest), "ingests" and
  // "snapshots/<snapshotter>"; a malformed one is InvalidArgument, an unknown
  // one NotImplemented (containerd's codes). NotFound when the lease is absent.
  // Adding a resource twice is not an error.
  errdefs::Status add_resource(std::string_view lease_id, const LeaseResource& resource);
  // Removing a resource the lease does not hold is not an error.
  errdefs::Status delete_resource(std::string_view lease_id, const LeaseResource& resource);
  // Content first, then ingests, then snapshots by snapshotter and key.
  errdefs::StatusOr<std::vector<LeaseResource>> list_resources(std::string_view lease_id);

 private:
  std::shared_ptr<Storage> storage_;
  std::string ns_;
};

}  // namespace ctrd::metadata
