// records: the values stored in the metadata tables and their byte encoding.
//
// Each record is a sequence of fields: varint tag, varint length, bytes.
// Decoders skip tags they do not know, so adding a field to a record is a
// compatible change that needs no schema bump (the counterpart of containerd
// adding keys to a bolt bucket); removing or re-purposing a tag is not.
// Times are signed nanoseconds since the Unix epoch. Internal to src/metadata.
#pragma once

#include <cstdint>
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

std::string encode(const NamespaceRecord& record);
std::string encode(const BlobRecord& record);
std::string encode(const IngestRecord& record);
std::string encode(const LeaseRecord& record);

// DataLoss naming `what` when the bytes are not a record of that kind.
errdefs::Status decode(std::string_view bytes, std::string_view what, NamespaceRecord* record);
errdefs::Status decode(std::string_view bytes, std::string_view what, BlobRecord* record);
errdefs::Status decode(std::string_view bytes, std::string_view what, IngestRecord* record);
errdefs::Status decode(std::string_view bytes, std::string_view what, LeaseRecord* record);

// Fixed-width big-endian u64, for counters kept in the meta table.
std::string encode_u64(uint64_t value);
bool decode_u64(std::string_view bytes, uint64_t* value);

}  // namespace ctrd::metadata
