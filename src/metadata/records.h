// records: the values stored in the metadata tables and their byte encoding.
//
// Each record is a sequence of fields: varint tag, varint length, bytes.
// Decoders skip tags they do not know, so adding a field to a record is a
// compatible change that needs no schema bump (the counterpart of containerd
// adding keys to a bolt bucket); removing or re-purposing a tag is not.
// Times are signed nanoseconds since the Unix epoch. Internal to src/metadata.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "content/content.h"
#include "errdefs/errdefs.h"

namespace ctrd::metadata {

using Clock = content::Clock;
using Labels = content::Labels;

struct NamespaceRecord {
  Labels labels;
};

// A blob as one namespace sees it; the bytes live in the shared blob store.
struct BlobRecord {
  int64_t size = 0;
  Clock::time_point created_at;
  Clock::time_point updated_at;
  Labels labels;
};

// A namespace's ingest: the ref the client chose maps to a backend ref unique
// across namespaces.
struct IngestRecord {
  std::string backend_ref;
  // Set when the ingest shares a blob the backend already holds (containerd's
  // "shared" policy): the blob must then survive until the ingest ends.
  std::string expected;
  int64_t expected_size = 0;
  // When a lease does not hold the ingest, the time after which a collector may
  // abort it (containerd uses 24h). Epoch when leased.
  Clock::time_point expire_at;
};

struct LeaseRecord {
  Clock::time_point created_at;
  Labels labels;
};

// An opaque google.protobuf.Any; unset when both parts are empty.
struct AnyRecord {
  std::string type_url;
  std::string value;
  bool empty() const { return type_url.empty() && value.empty(); }
};

struct ImageRecord {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  Labels annotations;
  Clock::time_point created_at;
  Clock::time_point updated_at;
  Labels labels;
};

struct ContainerRecord {
  Labels labels;
  std::string image;
  std::string runtime_name;
  AnyRecord runtime_options;
  AnyRecord spec;
  std::string snapshotter;
  std::string snapshot_key;
  Clock::time_point created_at;
  Clock::time_point updated_at;
  std::map<std::string, AnyRecord> extensions;
};

// A namespace's snapshot: its key maps to a backend key unique across namespaces.
struct SnapshotRecord {
  std::string backend_key;
  std::string parent;  // the namespace's key of the parent, empty for none
  Clock::time_point created_at;
  Clock::time_point updated_at;
  Labels labels;
};

std::string encode(const NamespaceRecord& record);
std::string encode(const BlobRecord& record);
std::string encode(const IngestRecord& record);
std::string encode(const LeaseRecord& record);
std::string encode(const ImageRecord& record);
std::string encode(const ContainerRecord& record);
std::string encode(const SnapshotRecord& record);

// DataLoss naming `what` when the bytes are not a record of that kind.
errdefs::Status decode(std::string_view bytes, std::string_view what, NamespaceRecord* record);
errdefs::Status decode(std::string_view bytes, std::string_view what, BlobRecord* record);
errdefs::Status decode(std::string_view bytes, std::string_view what, IngestRecord* record);
errdefs::Status decode(std::string_view bytes, std::string_view what, LeaseRecord* record);
errdefs::Status decode(std::string_view bytes, std::string_view what, ImageRecord* record);
errdefs::Status decode(std::string_view bytes, std::string_view what, ContainerRecord* record);
errdefs::Status decode(std::string_view bytes, std::string_view what, SnapshotRecord* record);

// Fixed-width big-endian u64, for counters kept in the meta table.
std::string encode_u64(uint64_t value);
bool decode_u64(std::string_view bytes, uint64_t* value);

}  // namespace ctrd::metadata
