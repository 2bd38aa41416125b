#include "remotes/pull.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

#include "executor/worker_pool.h"
#include "images/images.h"
#include "images/media_types.h"

namespace ctrd::remotes {
namespace {

using content::Descriptor;
using errdefs::Status;
using errdefs::StatusOr;

constexpr std::string_view kGcRefPrefix = "containerd.io/gc.ref.content.";

// containerd's remotes.MakeRefKey: the ingest ref names what the blob is.
std::string ingest_ref(const Descriptor& d) {
  if (images::is_index_type(d.media_type)) return "index-" + d.digest;
  if (images::is_manifest_type(d.media_type)) return "manifest-" + d.digest;
  if (images::is_config_type(d.media_type)) return "config-" + d.digest;
  if (images::is_layer_type(d.media_type)) return "layer-" + d.digest;
  return "unknown-" + d.digest;
}

// containerd's images.ChildGCLabels, numbered per key as SetChildrenMappedLabels does.
content::Labels children_gc_labels(const std::vector<Descriptor>& children) {
  content::Labels labels;
  std::map<std::string, int> counters;
  for (const auto& child : children) {
    std::string key;
    if (images::is_config_type(child.media_type)) {
      key = std::string(kGcRefPrefix) + "config";
    } else if (images::is_manifest_type(child.media_type)) {
      key = std::string(kGcRefPrefix) + "m.";
    } else if (images::is_layer_type(child.media_type)) {
      key = std::string(kGcRefPrefix) + "l.";
    } else {
      key = std::string(kGcRefPrefix);
    }
    int index = counters[key]++;
    if (index > 0 || key.back() == '.') key += std::to_string(index);
    labels[key] = child.digest;
  }
  return labels;
}

class Puller {
 public:
  Puller(Resolver& resolver, Reference ref, content::Store& store, const PullOptions& options)
      : resolver_(resolver),
        ref_(std::move(ref)),
        store_(store),
        options_(options),
        matcher_(options.platform),
        source_key_(distribution_source_key(ref_.domain)) {}

  StatusOr<Descriptor> run() {
    CTRD_ASSIGN_OR_RETURN(Descriptor target, resolver_.resolve(ref_));
    CTRD_RETURN_IF_ERROR(walk_document(target, 0));
    CTRD_RETURN_IF_ERROR(fetch_blobs());
    return target;
  }

 private:
  // An index or manifest: read (from the store or the registry), parsed, its
  // children chosen, then committed with the labels naming them.
  Status walk_document(const Descriptor& d, int depth) {
    if (depth > images::kMaxIndexDepth) {
      return errdefs::FailedPrecondition(ref_.string() + ": indexes nested deeper than " +
                                         std::to_string(images::kMaxIndexDepth));
    }
    const bool present = store_.info(d.digest).ok();
    std::string body;
    if (present) {
      images::StoreProvider provider(store_);
      CTRD_ASSIGN_OR_RETURN(body, images::read_blob(provider, d, resolver_.options().max_manifest_size));
    } else {
      CTRD_ASSIGN_OR_RETURN(body, fetch_document(d));
    }

    std::vector<Descriptor> children;
    std::vector<Descriptor> documents;  // children to walk further
    if (images::is_index_type(d.media_type)) {
      CTRD_ASSIGN_OR_RETURN(images::Index index, images::parse_index(body, d.media_type));
      CTRD_ASSIGN_OR_RETURN(Descriptor chosen, choose_manifest(index));
      children.push_back(chosen);
      documents.push_back(chosen);
    } else if (images::is_manifest_type(d.media_type)) {
      CTRD_ASSIGN_OR_RETURN(images::Manifest manifest, images::parse_manifest(body, d.media_type));
      children.push_back(manifest.config);
      for (const auto& layer : manifest.layers) children.push_back(layer);
      for (const auto& child : children) queue_blob(child);
    } else {
      return errdefs::NotFound(ref_.string() + ": " + d.digest + " has media type " +
                               errdefs::quoted(d.media_type) + ", neither an index nor a manifest");
    }

    content::Labels labels = children_gc_labels(children);
    if (present) {
      CTRD_RETURN_IF_ERROR(label_existing(d.digest, labels));
    } else {
      CTRD_RETURN_IF_ERROR(commit_document(d, body, labels));
    }
    for (const auto& child : documents) CTRD_RETURN_IF_ERROR(walk_document(child, depth + 1));
    return Status::Ok();
  }

  // The entry the platform prefers: entries for other platforms are skipped,
  // entries without a platform come last (containerd keeps them, to be
  // checked against their config later).
  StatusOr<Descriptor> choose_manifest(const images::Index& index) const {
    std::optional<Descriptor> best;
    size_t best_rank = std::numeric_limits<size_t>::max();
    for (const auto& entry : index.manifests) {
      size_t rank = std::numeric_limits<size_t>::max() - 1;
      if (entry.platform) {
        auto r = matcher_.rank(*entry.platform);
        if (!r) continue;
        rank = *r;
      }
      if (!best || rank < best_rank) {
        best = entry.descriptor;
        best_rank = rank;
      }
    }
    if (!best) {
      return errdefs::NotFound(ref_.string() + ": no match for platform " +
                               images::format(options_.platform) + " in manifest");
    }
    return *best;
  }

  StatusOr<std::string> fetch_document(const Descriptor& d) {
    std::string body;
    CTRD_RETURN_IF_ERROR(resolver_.fetch(ref_, d, [&](std::string_view data) {
      body.append(data);
      return Status::Ok();
    }));
    return body;
  }

  Status commit_document(const Descriptor& d, const std::string& body, content::Labels labels) {
    labels[source_key_] = append_distribution_source("", ref_.repository);
    Status s = write_blob(d, labels, [&](content::Writer& writer) { return writer.write(body); });
    return s.ok() ? s : s.with_context("commit " + d.digest);
  }

  // Writes `d` through `fill` and commits it with `labels`; a blob that is
  // there already only gets the labels. On any failure nothing of it is kept.
  Status write_blob(const Descriptor& d, const content::Labels& labels,
                    const std::function<Status(content::Writer&)>& fill) {
    const std::string ref = ingest_ref(d);
    auto writer = store_.writer({ref, d.size, d.digest});
    if (!writer.ok()) {
      if (errdefs::IsAlreadyExists(writer.status())) return label_existing(d.digest, labels);
      return writer.status().with_context("write " + d.digest);
    }
    // A resumed ingest starts over: the registry is asked for the whole blob.
    if (auto st = (*writer)->status(); st.ok() && st->offset > 0)
      CTRD_RETURN_IF_ERROR((*writer)->truncate(0));
    Status s = fill(**writer);
    if (s.ok()) s = (*writer)->commit(d.size, d.digest, labels);
    if (errdefs::IsAlreadyExists(s)) return label_existing(d.digest, labels);
    if (!s.ok()) {
      writer->reset();
      (void)store_.abort(ref);
      return s;
    }
    return Status::Ok();
  }

  // Adds `labels` and this pull's distribution source to a blob already in the store.
  Status label_existing(const std::string& digest, const content::Labels& labels) {
    CTRD_ASSIGN_OR_RETURN(content::Info info, store_.info(digest));
    content::Info update;
    update.digest = digest;
    std::vector<std::string> fields;
    for (const auto& [k, v] : labels) {
      if (k == source_key_) continue;
      update.labels[k] = v;
      fields.push_back("labels." + k);
    }
    std::string existing;
    if (auto it = info.labels.find(source_key_); it != info.labels.end()) existing = it->second;
    std::string merged = append_distribution_source(existing, ref_.repository);
    if (merged != existing) {
      update.labels[source_key_] = merged;
      fields.push_back("labels." + source_key_);
    }
    if (fields.empty()) return Status::Ok();
    auto updated = store_.update(update, fields);
    return updated.ok() ? Status::Ok() : updated.status().with_context("label " + digest);
  }

  void queue_blob(const Descriptor& d) {
    if (queued_.insert(d.digest).second) blobs_.push_back(d);
  }

  // Config and layers, up to max_concurrent_downloads at a time.
  Status fetch_blobs() {
    std::mutex mu;
    std::condition_variable done_cv;
    size_t pending = blobs_.size();
    Status first_error;
    std::atomic<bool> failed{false};
    {
      executor::WorkerPool pool(std::max<size_t>(1, options_.max_concurrent_downloads));
      for (const auto& blob : blobs_) {
        pool.submit([&, blob] {
          Status s =
              failed ? errdefs::Canceled("pull stopped by an earlier error") : fetch_blob(blob, failed);
          std::lock_guard lock(mu);
          if (!s.ok() && first_error.ok()) {
            first_error = s;
            failed = true;
          }
          if (--pending == 0) done_cv.notify_all();
        });
      }
      std::unique_lock lock(mu);
      done_cv.wait(lock, [&] { return pending == 0; });
    }
    return first_error;
  }

  Status fetch_blob(const Descriptor& d, const std::atomic<bool>& failed) {
    content::Labels labels{{source_key_, append_distribution_source("", ref_.repository)}};
    if (store_.info(d.digest).ok()) return label_existing(d.digest, labels);
    return write_blob(d, labels, [&](content::Writer& writer) {
      return resolver_.fetch(ref_, d, [&](std::string_view data) -> Status {
        if (failed) return errdefs::Canceled("pull stopped by an earlier error");
        return writer.write(data);
      });
    });
  }

  Resolver& resolver_;
  const Reference ref_;
  content::Store& store_;
  const PullOptions& options_;
  const images::PlatformMatcher matcher_;
  const std::string source_key_;
  std::vector<Descriptor> blobs_;
  std::set<std::string> queued_;
};

}  // namespace

std::string distribution_source_key(std::string_view domain) {
  return "containerd.io/distribution.source." + hostname_of(domain);
}

std::string append_distribution_source(std::string_view existing, std::string_view repository) {
  std::set<std::string> repos;
  std::stringstream in{std::string(existing)};
  for (std::string r; std::getline(in, r, ',');) {
    if (!r.empty()) repos.insert(r);
  }
  repos.insert(std::string(repository));
  std::string out;
  for (const auto& r : repos) out += (out.empty() ? "" : ",") + r;
  return out;
}

StatusOr<Descriptor> pull(Resolver& resolver, std::string_view ref, content::Store& store,
                          const PullOptions& options) {
  CTRD_ASSIGN_OR_RETURN(Reference parsed, parse_reference(ref));
  Puller puller(resolver, std::move(parsed), store, options);
  auto target = puller.run();
  if (!target.ok()) return target.status().with_context("pull " + std::string(ref));
  return target;
}

}  // namespace ctrd::remotes
