// namespaces: create, inspect, label and remove namespaces in the metadata
// store (what containerd's namespaces service needs).
//
// Obtained from DB::namespaces(); a cheap handle, safe to copy and to use from
// any thread. Every call is one LMDB transaction.
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

struct Namespace {
  std::string name;
  Labels labels;
};

class Namespaces {
 public:
  explicit Namespaces(std::shared_ptr<Storage> storage) : storage_(std::move(storage)) {}

  // InvalidArgument for a bad name or an oversized label; AlreadyExists when
  // the namespace exists (including one created implicitly by a write).
  errdefs::Status create(std::string_view name, const Labels& labels);

  // NotFound when the namespace does not exist. (containerd 1.6 answers an
  // unknown name with empty labels instead; the service may choose to.)
  errdefs::StatusOr<Labels> get(std::string_view name);

  // All namespaces in byte order of their names, with labels, from one snapshot.
  errdefs::StatusOr<std::vector<Namespace>> list();

  // The namespaces Update call: with no field paths, or "labels", the labels
  // become `labels`; "labels.<key>" sets that key from `labels`, and a key
  // missing from `labels` or set to "" is deleted. Other paths are
  // InvalidArgument. All paths apply in one transaction. Like containerd, this
  // creates the namespace when it does not exist. Returns the labels now stored.
  errdefs::StatusOr<Labels> update(std::string_view name, const Labels& labels,
                                   const std::vector<std::string>& fieldpaths);
  // update() without field paths.
  errdefs::Status set_labels(std::string_view name, const Labels& labels);
  // Sets one label; an empty value deletes it.
  errdefs::Status set_label(std::string_view name, std::string_view key, std::string_view value);

  // FailedPrecondition `namespace "x" must be empty, but it still has images,
  // blobs, containers, snapshots on "native" snapshotter` (what it holds, in
  // that order, as containerd words it). Leases and ingests do not count and
  // go with the namespace, as in containerd; the namespace's ingests are also
  // aborted in the blob store. NotFound when it does not exist.
  errdefs::Status remove(std::string_view name);

 private:
  std::shared_ptr<Storage> storage_;
};

}  // namespace ctrd::metadata
