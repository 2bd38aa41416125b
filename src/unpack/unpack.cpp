#include "unpack/unpack.h"

#include <time.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <set>

#include "digest/sha256.h"
#include "images/images.h"
#include "log/log.h"
#include "metadata/snapshotter.h"
#include "snapshots/snapshotter.h"

namespace ctrd::unpack {
namespace {

using errdefs::Status;
using errdefs::StatusOr;

constexpr std::string_view kLabelExpire = "containerd.io/gc.expire";
// containerd's client.WithLease default: long enough for any pull, short
// enough that a crashed daemon's leftovers are collected the next day.
constexpr std::chrono::hours kLeaseExpiry{24};
// Fresh random names tried when one is taken (extraction keys, lease ids), as containerd retries.
constexpr int kNameAttempts = 3;

// containerd's uniquePart(): "<nanoseconds of the second>-<4 base64url characters>".
std::string unique_part() {
  static constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device random;
  const uint32_t bits = random() & 0xffffff;  // 3 random bytes
  std::string out = std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count() %
                                   1000000000) +
                    "-";
  for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kBase64Url[(bits >> shift) & 0x3f]);
  return out;
}

// Go's time.RFC3339 in UTC, what the collector parses from gc.expire.
std::string rfc3339_utc(std::chrono::system_clock::time_point at) {
  const time_t seconds = std::chrono::system_clock::to_time_t(at);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  std::array<char, 32> buf{};
  const size_t n = strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return std::string(buf.data(), n);
}

// The lease the unpack runs under: the caller's, or one made here and removed
// when done, so that snapshots half made when the daemon dies expire.
class UnpackLease {
 public:
  static StatusOr<UnpackLease> hold(const UnpackContext& ctx) {
    if (!ctx.lease.empty()) return UnpackLease(ctx.lease, std::nullopt);
    metadata::Leases leases = ctx.db->leases(ctx.ns);
    const std::string expire = rfc3339_utc(std::chrono::system_clock::now() + kLeaseExpiry);
    for (int attempt = 0;; ++attempt) {
      auto created = leases.create(unique_part(), {{std::string(kLabelExpire), expire}});
      if (created.ok()) return UnpackLease(created->id, std::move(leases));
      if (!errdefs::IsAlreadyExists(created.status()) || attempt + 1 == kNameAttempts) {
        return created.status().with_context("create unpack lease");
      }
    }
  }
  UnpackLease(UnpackLease&& other) noexcept : id_(std::move(other.id_)), owned_(std::move(other.owned_)) {
    other.owned_.reset();
  }
  UnpackLease& operator=(UnpackLease&&) = delete;
  UnpackLease(const UnpackLease&) = delete;
  UnpackLease& operator=(const UnpackLease&) = delete;
  ~UnpackLease() {
    if (!owned_) return;
    if (Status removed = owned_->remove(id_); !removed.ok()) {
      log::warn("failed to remove unpack lease", {{"lease", id_}, {"error", removed.to_string()}});
    }
  }
  const std::string& id() const { return id_; }

 private:
  UnpackLease(std::string id, std::optional<metadata::Leases> owned)
      : id_(std::move(id)), owned_(std::move(owned)) {}
  std::string id_;
  std::optional<metadata::Leases> owned_;  // set when this lease is ours to remove
};

// One extraction per snapshotter and chain id at a time in this process
// (containerd's unpacker locks the same key): a second pull of the same image
// waits and then finds the snapshot instead of extracting it again.
class ChainLocks {
 public:
  class Held {
   public:
    Held(ChainLocks& locks, std::string key) : locks_(locks), key_(std::move(key)) {}
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    ~Held() { locks_.release(key_); }

   private:
    ChainLocks& locks_;
    std::string key_;
  };

  static ChainLocks& global() {
    static ChainLocks locks;
    return locks;
  }
  // Waits for no longer than the holder's own extraction, which is bounded by its I/O.
  Held acquire(std::string key) {
    std::unique_lock lock(mu_);
    released_.wait(lock, [&] { return !held_.contains(key); });
    held_.insert(key);
    return Held(*this, std::move(key));
  }

 private:
  void release(const std::string& key) {
    {
      std::lock_guard lock(mu_);
      held_.erase(key);
    }
    released_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable released_;
  std::set<std::string> held_;
};

// Removes the extraction snapshot unless it was committed.
class ExtractionGuard {
 public:
  ExtractionGuard(snapshots::Snapshotter& sn, std::string key) : sn_(sn), key_(std::move(key)) {}
  ExtractionGuard(const ExtractionGuard&) = delete;
  ExtractionGuard& operator=(const ExtractionGuard&) = delete;
  ~ExtractionGuard() {
    if (committed_) return;
    if (Status removed = sn_.remove(key_); !removed.ok() && !errdefs::IsNotFound(removed)) {
      log::warn("failed to clean up extraction snapshot", {{"key", key_}, {"error", removed.to_string()}});
    }
  }
  void committed() { committed_ = true; }

 private:
  snapshots::Snapshotter& sn_;
  std::string key_;
  bool committed_ = false;
};

struct LayerJob {
  const content::Descriptor& layer;
  const std::string& diff_id;
  const std::string& parent;  // chain id below, empty for the bottom layer
  const std::string& chain;
};

// Extracts one layer into the snapshot `job.chain`; whether it was applied
// here (false: someone else made the snapshot meanwhile).
StatusOr<bool> extract_layer(const UnpackContext& ctx, snapshots::Snapshotter& sn, content::Store& store,
                             const LayerJob& job) {
  // The layer's annotations that snapshotters understand go along, as in containerd.
  snapshots::Labels labels = metadata::inherited_labels(job.layer.annotations);
  labels[std::string(metadata::kLabelSnapshotRef)] = job.chain;

  std::string key;
  std::vector<mount::Mount> mounts;
  for (int attempt = 1;; ++attempt) {
    key = std::string(kUnpackKeyPrefix) + "-" + unique_part() + " " + job.chain;
    auto prepared = sn.prepare(key, job.parent, labels);
    if (prepared.ok()) {
      mounts = std::move(*prepared);
      break;
    }
    if (!errdefs::IsAlreadyExists(prepared.status()) || attempt == kNameAttempts) {
      return prepared.status().with_context("failed to prepare extraction snapshot " + errdefs::quoted(key));
    }
    // The key is taken: either the snapshot appeared meanwhile or the key collided.
    if (sn.stat(job.chain).ok()) return false;
  }
  ExtractionGuard guard(sn, key);

  auto applied = ctx.applier->apply({.ns = ctx.ns, .layer = job.layer, .mounts = mounts, .payloads = {}});
  if (!applied.ok()) return applied.status().with_context("failed to extract layer " + job.diff_id);
  if (applied->digest != job.diff_id) {
    return errdefs::DataLoss("wrong diff id calculated on extraction of layer " + job.layer.digest +
                             ": got " + applied->digest + ", the image config says " + job.diff_id);
  }

  if (Status committed = sn.commit(job.chain, key, labels); !committed.ok()) {
    // Another unpack committed the same chain first: the layer is there.
    if (errdefs::IsAlreadyExists(committed)) return false;
    return committed.with_context("failed to commit snapshot " + errdefs::quoted(key));
  }
  guard.committed();

  // Only now is the uncompressed digest verified.
  content::Info layer_info;
  layer_info.digest = job.layer.digest;
  layer_info.labels[std::string(diff::kUncompressedLabel)] = applied->digest;
  CTRD_RETURN_IF_ERROR(store.update(layer_info, {"labels." + std::string(diff::kUncompressedLabel)})
                           .status()
                           .with_context("label layer " + job.layer.digest));
  return true;
}

}  // namespace

std::string chain_id(const std::vector<std::string>& diff_ids) {
  if (diff_ids.empty()) return "";
  std::string chain = diff_ids.front();
  for (size_t i = 1; i < diff_ids.size(); ++i) {
    chain = "sha256:" + digest::Sha256::hex_of(chain + " " + diff_ids[i]);
  }
  return chain;
}

StatusOr<std::string> unpack(const UnpackContext& ctx, const content::Descriptor& image_target,
                             const images::Platform& platform) {
  if (!ctx.db || !ctx.applier)
    return errdefs::InvalidArgument("unpack needs a metadata store and an applier");
  if (ctx.ns.empty()) return errdefs::FailedPrecondition("namespace is required for unpacking");
  if (ctx.snapshotter.empty()) return errdefs::InvalidArgument("unpack needs a snapshotter name");

  CTRD_ASSIGN_OR_RETURN(UnpackLease lease, UnpackLease::hold(ctx));
  std::shared_ptr<content::Store> store = ctx.db->content_store(ctx.ns, lease.id());
  images::StoreProvider provider(*store);
  CTRD_ASSIGN_OR_RETURN(images::ResolvedImage image, images::resolve(provider, image_target, platform));
  CTRD_ASSIGN_OR_RETURN(std::shared_ptr<snapshots::Snapshotter> sn,
                        ctx.db->snapshotter(ctx.ns, ctx.snapshotter, lease.id()));

  const auto started = std::chrono::steady_clock::now();
  std::vector<std::string> chain;
  std::string parent;
  int applied_layers = 0;
  for (size_t i = 0; i < image.layers.size(); ++i) {
    chain.push_back(image.diff_ids[i]);
    const std::string chain_id_here = chain_id(chain);
    // The lock covers only this layer's check and extraction (as containerd's
    // unpacker), so pulls of images sharing a base proceed side by side above it.
    ChainLocks::Held locked = ChainLocks::global().acquire(ctx.snapshotter + "/" + chain_id_here);
    auto existing = sn->stat(chain_id_here);
    if (existing.ok()) {
      parent = chain_id_here;
      continue;
    }
    if (!errdefs::IsNotFound(existing.status())) {
      return existing.status().with_context("failed to stat snapshot " + chain_id_here);
    }
    CTRD_ASSIGN_OR_RETURN(
        bool applied,
        extract_layer(ctx, *sn, *store, {image.layers[i], image.diff_ids[i], parent, chain_id_here}));
    if (applied) ++applied_layers;
    parent = chain_id_here;
  }
  if (parent.empty()) return parent;  // no layers: nothing to keep alive

  content::Info config_info;
  config_info.digest = image.config.digest;
  const std::string gc_label = std::string(kGcRefSnapshotPrefix) + ctx.snapshotter;
  config_info.labels[gc_label] = parent;
  CTRD_RETURN_IF_ERROR(store->update(config_info, {"labels." + gc_label})
                           .status()
                           .with_context("label config " + config_info.digest));

  log::debug("image unpacked", {{"config", image.config.digest},
                                {"chainID", parent},
                                {"snapshotter", ctx.snapshotter},
                                {"applied", std::to_string(applied_layers)},
                                {"ms", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                          std::chrono::steady_clock::now() - started)
                                                          .count())}});
  return parent;
}

}  // namespace ctrd::unpack
