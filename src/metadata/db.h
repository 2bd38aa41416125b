// metadata: ctrd's metadata store on LMDB — namespaces, per-namespace views of
// the shared content store, leases — the counterpart of containerd's bbolt
// metadata package. The service layer calls it; it knows nothing of gRPC.
//
// Concurrency: one LMDB environment per DB. Every change is one write
// transaction (LMDB admits one writer at a time); reads run in read-only
// snapshot transactions that never block, nor are blocked by, the writer.
// Every handle (DB, Namespaces, Leases, content views) is safe to share across
// threads.
//
// Layout. One environment in <dir> (data.mdb, lock.mdb) holding named
// databases ("tables"); per-namespace rows are keyed "<namespace>\0<rest>", so
// one namespace's rows are a contiguous key range:
//
//   meta             schema_version  -> u64 BE    checked at open (see kSchemaVersion)
//                    ingest_sequence -> u64 BE    last number used in a backend ingest ref
//   namespaces       <ns>                            -> {labels}
//   blobs            <ns>\0<digest>                  -> {size, created_at, updated_at, labels}
//   ingests          <ns>\0<ref>                     -> {backend_ref, expected, expected_size, expire_at}
//   leases           <ns>\0<lease id>                -> {created_at, labels}
//   lease_resources  <ns>\0<lease id>\0<type>\0<id>  -> ""   type: content | ingests | snapshots/<name>
//
//   images           <ns>\0<name>                    -> {target, created_at, updated_at, labels}
//   containers       <ns>\0<id>                      -> {spec, runtime, snapshot, image, ..., labels}
//   snapshots        <ns>\0<snapshotter>\0<key>      -> {backend key, parent, created_at, ..., labels}
//   snapshot_children <ns>\0<snapshotter>\0<parent>\0<child> -> ""
//
// Values are tagged-field records (records.h) to which fields can be added
// without a schema bump. A table is added by opening it in DB::open; a namespace's remove() then
// counts its rows (containerd's wording: "images", "containers",
// `snapshots on "<name>" snapshotter`).
//
// The blob store is shared by all namespaces: a namespace "holds" a blob when
// it has a row in `blobs`. Backend ingest refs are "<ns>/<sequence>/<ref>" so
// namespaces may use the same ref independently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <functional>
#include <map>

#include "content/content.h"
#include "errdefs/errdefs.h"
#include "metadata/containers.h"
#include "metadata/gc.h"
#include "metadata/images.h"
#include "metadata/leases.h"
#include "metadata/namespaces.h"
#include "snapshots/snapshotter.h"

namespace ctrd::metadata {

class Storage;

// Version of the key layout and record meanings. A database written with a
// newer version is refused; an older one would be migrated at open.
inline constexpr uint64_t kSchemaVersion = 1;

class DB {
 public:
  struct Options {
    // Address space reserved for the map; the file grows only as data is
    // written (sparse), so this is a ceiling, not a cost.
    size_t map_size = size_t{1} << 30;
    // Concurrent read transactions; each in-flight read call holds one.
    unsigned max_readers = 1024;
  };

  // Opens (creating `dir` and the database when missing) the store whose
  // blobs live in `blobs`. FailedPrecondition when the database's schema
  // version is newer than kSchemaVersion, or when this process already has
  // `dir` open (LMDB forbids opening one environment twice in a process).
  using Snapshotters = std::map<std::string, std::shared_ptr<snapshots::Snapshotter>, std::less<>>;
  static errdefs::StatusOr<std::shared_ptr<DB>> open(const std::string& dir,
                                                     std::shared_ptr<content::Store> blobs,
                                                     Snapshotters snapshotters, const Options& options);
  static errdefs::StatusOr<std::shared_ptr<DB>> open(const std::string& dir,
                                                     std::shared_ptr<content::Store> blobs,
                                                     Snapshotters snapshotters = {}) {
    return open(dir, std::move(blobs), std::move(snapshotters), Options());
  }

  // The environment closes once the DB and every handle obtained from it are gone.
  ~DB();
  DB(const DB&) = delete;
  DB& operator=(const DB&) = delete;

  Namespaces namespaces() const;
  Leases leases(std::string ns) const;
  Images images(std::string ns) const;
  Containers containers(std::string ns) const;

  // Snapshotter `name` as namespace `ns` sees it (containerd's metadata
  // snapshotter): keys and labels are per namespace and map to backend keys
  // "<ns>/<sequence>/<key>", so the same key in two namespaces is two
  // snapshots. Prepare/View/Commit add the snapshot to `lease` when set.
  // Remove only forgets the namespace's record (FailedPrecondition when it
  // has children); the backend snapshot goes at the next collection.
  // NotFound naming the snapshotter when no such backend was given to open().
  errdefs::StatusOr<std::shared_ptr<snapshots::Snapshotter>> snapshotter(std::string ns,
                                                                         std::string_view name,
                                                                         std::string lease = "") const;
  // Names of the snapshotters given to open(), sorted.
  std::vector<std::string> snapshotter_names() const;

  // Runs a full collection now (see gc.h). Collections are serialized.
  errdefs::StatusOr<GcStats> garbage_collect() const;
  // Called after every committed change that may leave garbage: `deletion` is
  // true for removals (containerd's scheduler counts both kinds). At most one
  // callback; it must be cheap and must not call back into the DB.
  void set_mutation_callback(std::function<void(bool deletion)> callback) const;

  // A content store bound to namespace `ns` and, when `lease` is not empty,
  // to that lease (containerd's metadata content store with the namespace and
  // lease taken from the request context):
  //  - info/walk/update/reader_at see only blobs `ns` holds; labels and times
  //    are per namespace. update takes field paths "labels" and "labels.<key>".
  //  - remove drops the blob from `ns`, and from the bound lease; the blob
  //    store keeps the bytes until the next collection finds no namespace
  //    holding them (as containerd).
  //  - writer(): refs are per namespace. With an expected digest `ns` already
  //    holds, AlreadyExists (and the bound lease takes the blob). With one the
  //    blob store already has at the expected size, the writer starts complete
  //    (offset == total) without copying, and commit records the blob in `ns`.
  //    The first write creates `ns`. A bound lease holds the ingest while it is
  //    open and the blob once committed; a bound lease that does not exist is
  //    NotFound.
  // An empty or invalid `ns` makes every call fail (FailedPrecondition /
  // InvalidArgument), as a request without a namespace does in containerd.
  std::shared_ptr<content::Store> content_store(std::string ns, std::string lease = "") const;

  const std::string& dir() const;

 private:
  explicit DB(std::shared_ptr<Storage> storage) : storage_(std::move(storage)) {}
  std::shared_ptr<Storage> storage_;
};

}  // namespace ctrd::metadata
