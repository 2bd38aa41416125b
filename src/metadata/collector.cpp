#include "metadata/collector.h"

#include <absl/time/time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <vector>

#include "log/log.h"
#include "metadata/leases.h"
#include "metadata/storage.h"

namespace ctrd::metadata {

using errdefs::Status;
using errdefs::StatusOr;

namespace {

// containerd's GC labels.
constexpr std::string_view kLabelRoot = "containerd.io/gc.root";
constexpr std::string_view kLabelContentRef = "containerd.io/gc.ref.content";
constexpr std::string_view kLabelSnapshotRef = "containerd.io/gc.ref.snapshot.";
constexpr std::string_view kLabelExpire = "containerd.io/gc.expire";
constexpr std::string_view kLabelFlat = "containerd.io/gc.flat";

// Marks tried in read transactions before the mark is done inside the write
// transaction (blocking writers) so that a busy store still gets collected.
constexpr int kOptimisticMarks = 3;

using Nanos = std::chrono::nanoseconds;

Nanos since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<Nanos>(std::chrono::steady_clock::now() - start);
}

// Splits "<a>\0<rest>" into a and rest.
std::pair<std::string_view, std::string_view> split_first(std::string_view key) {
  size_t at = key.find(keys::kSeparator);
  if (at == std::string_view::npos) return {key, {}};
  return {key.substr(0, at), key.substr(at + 1)};
}

// Go's time.RFC3339 ("2006-01-02T15:04:05Z07:00", fractional seconds allowed).
std::optional<Clock::time_point> parse_rfc3339(std::string_view text) {
  absl::Time at;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, absl::string_view(text.data(), text.size()), &at, &error)) {
    return std::nullopt;
  }
  // Clock counts nanoseconds in 64 bits, which ends in 2262: later is "never".
  if (at > absl::FromUnixSeconds(9'000'000'000)) return Clock::time_point::max();
  return absl::ToChronoTime(at);
}

enum class Kind : char { kContent = 'c', kSnapshot = 's', kIngest = 'i', kLease = 'l' };

// One object a namespace refers to. Snapshots carry their snapshotter.
struct Node {
  Kind kind;
  std::string ns;
  std::string snapshotter;
  std::string key;
  // Reached only through a lease labelled gc.flat: labels are not followed.
  bool flat = false;
};

std::string node_id(Kind kind, std::string_view ns, std::string_view snapshotter, std::string_view key) {
  return std::string(1, static_cast<char>(kind)) + keys::join(ns, snapshotter, key);
}

// Finds everything reachable from the roots, as one transaction sees it.
class Marker {
 public:
  Marker(const Storage& storage, const lmdb::Txn& txn) : storage_(storage), txn_(txn), now_(Clock::now()) {}

  Status run() {
    CTRD_RETURN_IF_ERROR(scan_roots());
    while (!queue_.empty()) {
      Node node = std::move(queue_.back());
      queue_.pop_back();
      CTRD_RETURN_IF_ERROR(references(node));
    }
    return Status::Ok();
  }

  bool marked(Kind kind, std::string_view ns, std::string_view snapshotter, std::string_view key) const {
    return reached_.count(node_id(kind, ns, snapshotter, key)) != 0;
  }

 private:
  void reach(Node node) {
    auto [it, inserted] =
        reached_.try_emplace(node_id(node.kind, node.ns, node.snapshotter, node.key), node.flat);
    // Reached flat before and now fully: its labels must be followed after all.
    if (!inserted && !(it->second && !node.flat)) return;
    it->second = node.flat;
    queue_.push_back(std::move(node));
  }

  void label_refs(std::string_view ns, const Labels& labels) {
    for (const auto& [key, value] : labels) {
      std::string_view k = key;
      if (k.starts_with(kLabelContentRef) &&
          (k.size() == kLabelContentRef.size() || k[kLabelContentRef.size()] == '.' ||
           k[kLabelContentRef.size()] == '/')) {
        reach({Kind::kContent, std::string(ns), "", value});
      } else if (k.starts_with(kLabelSnapshotRef)) {
        std::string_view snapshotter = k.substr(kLabelSnapshotRef.size());
        snapshotter = snapshotter.substr(0, snapshotter.find('/'));
        reach({Kind::kSnapshot, std::string(ns), std::string(snapshotter), value});
      }
    }
  }

  bool expired(const Labels& labels, std::string_view what) const {
    auto it = labels.find(std::string(kLabelExpire));
    if (it == labels.end()) return false;
    auto at = parse_rfc3339(it->second);
    if (!at) {
      log::info("ignoring invalid expiration value", {{"lease", std::string(what)}, {"value", it->second}});
      return false;
    }
    return now_ > *at;
  }

  Status scan_roots() {
    const Tables& t = storage_.tables();
    CTRD_RETURN_IF_ERROR(txn_.scan_prefix(t.leases, "", [&](std::string_view key, std::string_view value) {
      // Not a structured binding: the lambda below captures it.
      const auto parts = split_first(key);
      const std::string_view ns = parts.first;
      const std::string_view id = parts.second;
      LeaseRecord lease;
      CTRD_RETURN_IF_ERROR(decode(value, key, &lease));
      if (expired(lease.labels, id)) return Status::Ok();
      bool flat = lease.labels.count(std::string(kLabelFlat)) != 0;
      reach({Kind::kLease, std::string(ns), "", std::string(id)});
      std::string prefix = keys::join(ns, id, "");
      return txn_.scan_prefix(t.lease_resources, prefix, [&](std::string_view rkey, std::string_view) {
        auto [type, rid] = split_first(rkey.substr(prefix.size()));
        if (type == resource_type::kContent) {
          reach({Kind::kContent, std::string(ns), "", std::string(rid), flat});
        } else if (type == resource_type::kIngests) {
          reach({Kind::kIngest, std::string(ns), "", std::string(rid)});
        } else if (type.starts_with(resource_type::kSnapshotsPrefix)) {
          reach({Kind::kSnapshot, std::string(ns),
                 std::string(type.substr(resource_type::kSnapshotsPrefix.size())), std::string(rid), flat});
        }
        return Status::Ok();
      });
    }));
    CTRD_RETURN_IF_ERROR(txn_.scan_prefix(t.images, "", [&](std::string_view key, std::string_view value) {
      auto [ns, name] = split_first(key);
      ImageRecord image;
      CTRD_RETURN_IF_ERROR(decode(value, key, &image));
      reach({Kind::kContent, std::string(ns), "", image.digest});
      label_refs(ns, image.labels);
      return Status::Ok();
    }));
    CTRD_RETURN_IF_ERROR(txn_.scan_prefix(t.ingests, "", [&](std::string_view key, std::string_view value) {
      auto [ns, ref] = split_first(key);
      IngestRecord ingest;
      CTRD_RETURN_IF_ERROR(decode(value, key, &ingest));
      // Unleased ingests live until they expire; leased ones as long as their lease.
      if (ingest.expire_at != Clock::time_point() && now_ <= ingest.expire_at) {
        reach({Kind::kIngest, std::string(ns), "", std::string(ref)});
      }
      return Status::Ok();
    }));
    CTRD_RETURN_IF_ERROR(txn_.scan_prefix(t.blobs, "", [&](std::string_view key, std::string_view value) {
      auto [ns, digest] = split_first(key);
      BlobRecord blob;
      CTRD_RETURN_IF_ERROR(decode(value, key, &blob));
      if (blob.labels.count(std::string(kLabelRoot)) != 0) {
        reach({Kind::kContent, std::string(ns), "", std::string(digest)});
      }
      return Status::Ok();
    }));
    CTRD_RETURN_IF_ERROR(
        txn_.scan_prefix(t.containers, "", [&](std::string_view key, std::string_view value) {
          auto [ns, id] = split_first(key);
          ContainerRecord container;
          CTRD_RETURN_IF_ERROR(decode(value, key, &container));
          if (!container.snapshotter.empty()) {
            reach({Kind::kSnapshot, std::string(ns), container.snapshotter, container.snapshot_key});
          }
          label_refs(ns, container.labels);
          return Status::Ok();
        }));
    return txn_.scan_prefix(t.snapshots, "", [&](std::string_view key, std::string_view value) {
      auto [ns, rest] = split_first(key);
      auto [snapshotter, name] = split_first(rest);
      SnapshotRecord snapshot;
      CTRD_RETURN_IF_ERROR(decode(value, key, &snapshot));
      if (snapshot.labels.count(std::string(kLabelRoot)) != 0) {
        reach({Kind::kSnapshot, std::string(ns), std::string(snapshotter), std::string(name)});
      }
      return Status::Ok();
    });
  }

  Status references(const Node& node) {
    const Tables& t = storage_.tables();
    switch (node.kind) {
      case Kind::kContent: {
        if (node.flat || node.key.empty()) return Status::Ok();
        CTRD_ASSIGN_OR_RETURN(auto stored, txn_.get(t.blobs, keys::join(node.ns, node.key)));
        if (!stored) return Status::Ok();
        BlobRecord blob;
        CTRD_RETURN_IF_ERROR(decode(*stored, node.key, &blob));
        label_refs(node.ns, blob.labels);
        return Status::Ok();
      }
      case Kind::kSnapshot: {
        if (node.key.empty() || node.snapshotter.empty()) return Status::Ok();
        CTRD_ASSIGN_OR_RETURN(auto stored,
                              txn_.get(t.snapshots, keys::join(node.ns, node.snapshotter, node.key)));
        if (!stored) return Status::Ok();
        SnapshotRecord snapshot;
        CTRD_RETURN_IF_ERROR(decode(*stored, node.key, &snapshot));
        if (!snapshot.parent.empty())
          reach({Kind::kSnapshot, node.ns, node.snapshotter, snapshot.parent, node.flat});
        if (!node.flat) label_refs(node.ns, snapshot.labels);
        return Status::Ok();
      }
      case Kind::kIngest: {
        CTRD_ASSIGN_OR_RETURN(auto stored, txn_.get(t.ingests, keys::join(node.ns, node.key)));
        if (!stored) return Status::Ok();
        IngestRecord ingest;
        CTRD_RETURN_IF_ERROR(decode(*stored, node.key, &ingest));
        if (!ingest.expected.empty()) reach({Kind::kContent, node.ns, "", ingest.expected});
        return Status::Ok();
      }
      case Kind::kLease:
        return Status::Ok();
    }
    return Status::Ok();
  }

  const Storage& storage_;
  const lmdb::Txn& txn_;
  Clock::time_point now_;
  std::map<std::string, bool> reached_;  // node id -> reached only flat
  std::vector<Node> queue_;
};

// The rows a mark found unreachable, as the marking transaction saw them.
struct Plan {
  std::vector<std::string> leases;     // row keys
  std::vector<std::string> blobs;      // row keys
  std::vector<std::string> ingests;    // row keys
  std::vector<std::string> snapshots;  // row keys
  std::vector<std::string> ingest_backend_refs;
  size_t size() const { return leases.size() + blobs.size() + ingests.size() + snapshots.size(); }
};

StatusOr<Plan> plan(const Storage& storage, const lmdb::Txn& txn) {
  Marker marker(storage, txn);
  CTRD_RETURN_IF_ERROR(marker.run());
  const Tables& t = storage.tables();
  Plan plan;
  CTRD_RETURN_IF_ERROR(txn.scan_prefix(t.leases, "", [&](std::string_view key, std::string_view) {
    auto [ns, id] = split_first(key);
    if (!marker.marked(Kind::kLease, ns, "", id)) plan.leases.emplace_back(key);
    return Status::Ok();
  }));
  CTRD_RETURN_IF_ERROR(txn.scan_prefix(t.blobs, "", [&](std::string_view key, std::string_view) {
    auto [ns, digest] = split_first(key);
    if (!marker.marked(Kind::kContent, ns, "", digest)) plan.blobs.emplace_back(key);
    return Status::Ok();
  }));
  CTRD_RETURN_IF_ERROR(txn.scan_prefix(t.ingests, "", [&](std::string_view key, std::string_view value) {
    auto [ns, ref] = split_first(key);
    if (marker.marked(Kind::kIngest, ns, "", ref)) return Status::Ok();
    IngestRecord ingest;
    CTRD_RETURN_IF_ERROR(decode(value, key, &ingest));
    plan.ingests.emplace_back(key);
    plan.ingest_backend_refs.push_back(std::move(ingest.backend_ref));
    return Status::Ok();
  }));
  CTRD_RETURN_IF_ERROR(txn.scan_prefix(t.snapshots, "", [&](std::string_view key, std::string_view) {
    auto [ns, rest] = split_first(key);
    auto [snapshotter, name] = split_first(rest);
    if (!marker.marked(Kind::kSnapshot, ns, snapshotter, name)) plan.snapshots.emplace_back(key);
    return Status::Ok();
  }));
  return plan;
}

Status apply(const Storage& storage, lmdb::Txn& txn, const Plan& plan) {
  const Tables& t = storage.tables();
  for (const auto& key : plan.leases) {
    CTRD_RETURN_IF_ERROR(txn.remove(t.leases, key));
    CTRD_RETURN_IF_ERROR(txn.erase_prefix(t.lease_resources, key + keys::kSeparator).status());
  }
  for (const auto& key : plan.blobs) {
    CTRD_RETURN_IF_ERROR(txn.remove(t.blobs, key));
  }
  for (const auto& key : plan.ingests) {
    CTRD_RETURN_IF_ERROR(txn.remove(t.ingests, key));
  }
  for (const auto& key : plan.snapshots) {
    // Unreachable snapshots' children are unreachable too (a child reaches
    // its parent), so their child links go in this same sweep.
    std::optional<std::string_view> stored;
    CTRD_ASSIGN_OR_RETURN(stored, txn.get(t.snapshots, key));
    if (!stored) continue;
    SnapshotRecord snapshot;
    CTRD_RETURN_IF_ERROR(decode(*stored, key, &snapshot));
    auto [ns, rest] = split_first(key);
    auto [snapshotter, name] = split_first(rest);
    if (!snapshot.parent.empty()) {
      CTRD_RETURN_IF_ERROR(
          txn.remove(t.snapshot_children, keys::join(ns, snapshotter, snapshot.parent, name)));
    }
    CTRD_RETURN_IF_ERROR(txn.erase_prefix(t.snapshot_children, key + keys::kSeparator).status());
    CTRD_RETURN_IF_ERROR(txn.remove(t.snapshots, key));
  }
  return Status::Ok();
}

// Marks and sweeps. A mark done in a read transaction is exact only if no
// change committed before the sweep's write transaction began; LMDB numbers
// transactions, so that is checked instead of holding writers off during the
// mark. After a few lost races the mark runs inside the write transaction.
StatusOr<Plan> mark_and_sweep(const Storage& storage, GcStats* stats) {
  for (int attempt = 0;; ++attempt) {
    auto mark_start = std::chrono::steady_clock::now();
    Plan swept;
    size_t marked_at = 0;
    bool optimistic = attempt < kOptimisticMarks;
    if (optimistic) {
      CTRD_ASSIGN_OR_RETURN(lmdb::Txn read, storage.read());
      marked_at = mdb_txn_id(read.get());
      CTRD_ASSIGN_OR_RETURN(swept, plan(storage, read));
    }
    CTRD_ASSIGN_OR_RETURN(lmdb::Txn write, storage.write());
    if (!optimistic) {
      CTRD_ASSIGN_OR_RETURN(swept, plan(storage, write));
    } else if (mdb_txn_id(write.get()) != marked_at + 1) {
      stats->mark += since(mark_start);
      continue;  // something committed since the mark; the write txn aborts
    }
    stats->mark += since(mark_start);
    auto sweep_start = std::chrono::steady_clock::now();
    if (swept.size() > 0) {
      CTRD_RETURN_IF_ERROR(apply(storage, write, swept));
      CTRD_RETURN_IF_ERROR(write.commit());
    }
    stats->sweep = since(sweep_start);
    return swept;
  }
}

// Removes blobs no namespace holds and no ingest shares.
Status clean_blobs(const Storage& storage, GcStats* stats) {
  std::set<std::string, std::less<>> used;
  CTRD_RETURN_IF_ERROR(storage.view([&](const lmdb::Txn& txn) -> Status {
    CTRD_RETURN_IF_ERROR(
        txn.scan_prefix(storage.tables().blobs, "", [&](std::string_view key, std::string_view) {
          used.emplace(split_first(key).second);
          return Status::Ok();
        }));
    return txn.scan_prefix(storage.tables().ingests, "", [&](std::string_view key, std::string_view value) {
      IngestRecord ingest;
      CTRD_RETURN_IF_ERROR(decode(value, key, &ingest));
      if (!ingest.expected.empty()) used.insert(std::move(ingest.expected));
      return Status::Ok();
    });
  }));
  std::vector<std::string> candidates;
  CTRD_RETURN_IF_ERROR(storage.blobs().walk(
      [&](const content::Info& info) {
        if (used.count(info.digest) == 0) candidates.push_back(info.digest);
        return Status::Ok();
      },
      {}));
  for (const auto& digest : candidates) {
    // Checked again under the blob use lock: a commit may have just taken it.
    auto removed = storage.release_blob(digest);
    if (!removed.ok()) {
      log::warn("remove unreferenced blob", {{"digest", digest}, {"error", removed.status().to_string()}});
    } else if (*removed) {
      ++stats->blobs_removed;
    }
  }
  return Status::Ok();
}

// Aborts backend ingests of swept rows, and those no row refers to (left by
// a crash between recording an ingest and opening it, or by a removed namespace).
Status clean_ingests(const Storage& storage, const std::vector<std::string>& swept_refs, GcStats* stats) {
  content::Store& blobs = storage.blobs();
  std::set<std::string> aborted;
  for (const auto& ref : swept_refs) {
    Status s = blobs.abort(ref);
    if (!s.ok() && !errdefs::IsNotFound(s)) {
      log::warn("abort expired ingest", {{"ref", ref}, {"error", s.to_string()}});
    }
    aborted.insert(ref);
  }
  stats->ingests_removed += swept_refs.size();
  // Listed before the rows are read: a row is written before its backend
  // ingest is opened, so a listed ingest without a row has none for good.
  CTRD_ASSIGN_OR_RETURN(auto statuses, blobs.list_statuses({}));
  std::set<std::string, std::less<>> recorded;
  CTRD_RETURN_IF_ERROR(storage.view([&](const lmdb::Txn& txn) -> Status {
    return txn.scan_prefix(storage.tables().ingests, "", [&](std::string_view key, std::string_view value) {
      IngestRecord ingest;
      CTRD_RETURN_IF_ERROR(decode(value, key, &ingest));
      recorded.insert(std::move(ingest.backend_ref));
      return Status::Ok();
    });
  }));
  for (const auto& status : statuses) {
    if (recorded.count(status.ref) != 0 || aborted.count(status.ref) != 0) continue;
    Status s = blobs.abort(status.ref);
    if (s.ok()) {
      ++stats->ingests_removed;
      log::debug("cleanup aborting ingest", {{"ref", status.ref}});
    } else if (!errdefs::IsNotFound(s)) {
      log::warn("abort unreferenced ingest", {{"ref", status.ref}, {"error", s.to_string()}});
    }
  }
  return Status::Ok();
}

// Removes backend snapshots no namespace refers to, children first, then lets
// the backend clean up after itself.
Status clean_snapshotter(const Storage& storage, std::string_view name, const SnapshotBackend& backend,
                         GcStats* stats) {
  // Exclusive: no namespace is between creating a backend snapshot and recording it.
  std::unique_lock hold(backend.lock);
  std::set<std::string, std::less<>> used;
  CTRD_RETURN_IF_ERROR(storage.view([&](const lmdb::Txn& txn) -> Status {
    return txn.scan_prefix(storage.tables().snapshots, "", [&](std::string_view key, std::string_view value) {
      auto [snapshotter, rest] = split_first(split_first(key).second);
      (void)rest;
      if (snapshotter != name) return Status::Ok();
      SnapshotRecord snapshot;
      CTRD_RETURN_IF_ERROR(decode(value, key, &snapshot));
      used.insert(std::move(snapshot.backend_key));
      return Status::Ok();
    });
  }));
  std::map<std::string, std::string> parents;  // every backend snapshot -> its parent
  CTRD_RETURN_IF_ERROR(backend.snapshotter->walk(
      [&](const snapshots::Info& info) {
        parents[info.name] = info.parent;
        return Status::Ok();
      },
      {}));
  std::vector<std::pair<size_t, std::string>> candidates;  // (depth, key), deepest first
  for (const auto& [key, parent] : parents) {
    if (used.count(key) != 0) continue;
    size_t d = 0;
    for (std::string p = parent; !p.empty() && d <= parents.size(); ++d) {
      auto it = parents.find(p);
      p = it == parents.end() ? std::string() : it->second;
    }
    candidates.emplace_back(d, key);
  }
  std::sort(candidates.begin(), candidates.end(), std::greater<>());
  // A parent whose child failed to go stays for the next round, and for the
  // next collection if that round removes nothing.
  bool progress = true;
  while (!candidates.empty() && progress) {
    progress = false;
    std::vector<std::pair<size_t, std::string>> left;
    for (auto& candidate : candidates) {
      Status s = backend.snapshotter->remove(candidate.second);
      if (s.ok() || errdefs::IsNotFound(s)) {
        if (s.ok()) {
          ++stats->snapshots_removed;
          log::debug("removed snapshot", {{"snapshotter", std::string(name)}, {"key", candidate.second}});
        }
        progress = true;
      } else {
        if (s.code() != errdefs::Code::kFailedPrecondition) {
          log::warn(
              "remove unreferenced snapshot",
              {{"snapshotter", std::string(name)}, {"key", candidate.second}, {"error", s.to_string()}});
        }
        left.push_back(std::move(candidate));
      }
    }
    candidates = std::move(left);
  }
  Status cleaned = backend.snapshotter->cleanup();
  if (!cleaned.ok() && cleaned.code() != errdefs::Code::kNotImplemented) return cleaned;
  return Status::Ok();
}

}  // namespace

StatusOr<GcStats> collect_garbage(const Storage& storage) {
  std::lock_guard serialized(storage.gc_lock());
  GcStats stats;
  CTRD_ASSIGN_OR_RETURN(Plan swept, mark_and_sweep(storage, &stats));

  // Files go outside any transaction; failures here only cost disk space
  // until the next collection, so they are logged rather than returned.
  auto cleanup_start = std::chrono::steady_clock::now();
  if (Status s = clean_ingests(storage, swept.ingest_backend_refs, &stats); !s.ok()) {
    log::warn("clean up ingests", {{"error", s.to_string()}});
  }
  if (Status s = clean_blobs(storage, &stats); !s.ok()) {
    log::warn("clean up blob store", {{"error", s.to_string()}});
  }
  for (const auto& [name, backend] : storage.snapshot_backends()) {
    if (Status s = clean_snapshotter(storage, name, *backend, &stats); !s.ok()) {
      log::warn("clean up snapshotter", {{"snapshotter", name}, {"error", s.to_string()}});
    }
  }
  stats.cleanup = since(cleanup_start);
  return stats;
}

}  // namespace ctrd::metadata
