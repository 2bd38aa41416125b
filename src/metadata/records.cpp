#include "metadata/records.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <utility>

namespace ctrd::metadata {

using errdefs::Status;

namespace {

// Field tags. Never reuse a number: old databases still carry the old meaning.
enum Tag : uint64_t {
  kTagLabel = 1,  // repeated; value = varint key length, key, value
  kTagSize = 2,
  kTagCreatedAt = 3,
  kTagUpdatedAt = 4,
  kTagBackendRef = 5,
  kTagExpected = 6,
  kTagExpireAt = 7,
  kTagExpectedSize = 8,
  kTagMediaType = 9,
  kTagDigest = 10,
  kTagAnnotation = 11,  // repeated; encoded as kTagLabel
  kTagImage = 12,
  kTagRuntimeName = 13,
  kTagRuntimeOptions = 14,  // an Any: kTagTypeUrl, kTagValue
  kTagSpec = 15,            // an Any
  kTagSnapshotter = 16,
  kTagSnapshotKey = 17,
  kTagExtension = 18,  // repeated; varint name length, name, an Any
  kTagTypeUrl = 19,
  kTagValue = 20,
  kTagBackendKey = 21,
  kTagParent = 22,
};

std::string encode_any(const AnyRecord& any);

class Encoder {
 public:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void bytes_field(uint64_t tag, std::string_view bytes) {
    varint(tag);
    varint(bytes.size());
    out_.append(bytes);
  }
  void int_field(uint64_t tag, int64_t v) {
    Encoder inner;
    // Zig-zag keeps small negative numbers short.
    inner.varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
    bytes_field(tag, inner.out_);
  }
  void time_field(uint64_t tag, Clock::time_point t) {
    int_field(tag, std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
  }
  void labels(const Labels& labels, uint64_t tag = kTagLabel) {
    for (const auto& [key, value] : labels) {
      Encoder inner;
      inner.varint(key.size());
      inner.out_.append(key);
      inner.out_.append(value);
      bytes_field(tag, inner.out_);
    }
  }
  void any_field(uint64_t tag, const AnyRecord& any) {
    if (any.empty()) return;
    bytes_field(tag, encode_any(any));
  }
  void extensions(const std::map<std::string, AnyRecord>& extensions) {
    for (const auto& [name, any] : extensions) {
      Encoder inner;
      inner.varint(name.size());
      inner.out_.append(name);
      inner.out_.append(encode_any(any));
      bytes_field(kTagExtension, inner.out_);
    }
  }
  // Optional strings are left out when empty, which decodes to the same.
  void string_field(uint64_t tag, std::string_view value) {
    if (!value.empty()) bytes_field(tag, value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}

  bool varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) return false;
      auto byte = static_cast<unsigned char>(in_.front());
      in_.remove_prefix(1);
      *v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }
  bool field(uint64_t* tag, std::string_view* bytes) {
    uint64_t size = 0;
    if (!varint(tag) || !varint(&size) || size > in_.size()) return false;
    *bytes = in_.substr(0, size);
    in_.remove_prefix(size);
    return true;
  }
  bool done() const { return in_.empty(); }
  std::string_view rest() const { return in_; }

 private:
  std::string_view in_;
};

std::string encode_any(const AnyRecord& any) {
  Encoder e;
  e.bytes_field(kTagTypeUrl, any.type_url);
  e.bytes_field(kTagValue, any.value);
  return e.take();
}

bool decode_int(std::string_view bytes, int64_t* v) {
  Decoder d(bytes);
  uint64_t zigzag = 0;
  if (!d.varint(&zigzag) || !d.done()) return false;
  *v = static_cast<int64_t>(zigzag >> 1) ^ -static_cast<int64_t>(zigzag & 1);
  return true;
}

bool decode_time(std::string_view bytes, Clock::time_point* t) {
  int64_t nanos = 0;
  if (!decode_int(bytes, &nanos)) return false;
  *t = Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(nanos)));
  return true;
}

bool decode_label(std::string_view bytes, Labels* labels) {
  Decoder d(bytes);
  uint64_t key_size = 0;
  if (!d.varint(&key_size)) return false;
  std::string_view key_and_value = d.rest();
  if (key_size > key_and_value.size()) return false;
  (*labels)[std::string(key_and_value.substr(0, key_size))] = std::string(key_and_value.substr(key_size));
  return true;
}

bool decode_any(std::string_view bytes, AnyRecord* any) {
  Decoder d(bytes);
  while (!d.done()) {
    uint64_t tag = 0;
    std::string_view value;
    if (!d.field(&tag, &value)) return false;
    if (tag == kTagTypeUrl) any->type_url = value;
    if (tag == kTagValue) any->value = value;
  }
  return true;
}

bool decode_extension(std::string_view bytes, std::map<std::string, AnyRecord>* extensions) {
  Decoder d(bytes);
  uint64_t name_size = 0;
  if (!d.varint(&name_size)) return false;
  std::string_view rest = d.rest();
  if (name_size > rest.size()) return false;
  return decode_any(rest.substr(name_size), &(*extensions)[std::string(rest.substr(0, name_size))]);
}

// Calls `on_field` for each field; DataLoss when the framing is broken or a
// known field does not parse.
Status decode_fields(std::string_view bytes, std::string_view what,
                     const std::function<bool(uint64_t tag, std::string_view value)>& on_field) {
  Decoder d(bytes);
  while (!d.done()) {
    uint64_t tag = 0;
    std::string_view value;
    if (!d.field(&tag, &value) || !on_field(tag, value)) {
      std::string readable(what);
      std::replace(readable.begin(), readable.end(), '\0', '/');  // composite keys
      return errdefs::DataLoss("corrupt metadata record for " + readable);
    }
  }
  return Status::Ok();
}

}  // namespace

std::string encode(const NamespaceRecord& record) {
  Encoder e;
  e.labels(record.labels);
  return e.take();
}

std::string encode(const BlobRecord& record) {
  Encoder e;
  e.int_field(kTagSize, record.size);
  e.time_field(kTagCreatedAt, record.created_at);
  e.time_field(kTagUpdatedAt, record.updated_at);
  e.labels(record.labels);
  return e.take();
}

std::string encode(const IngestRecord& record) {
  Encoder e;
  e.bytes_field(kTagBackendRef, record.backend_ref);
  if (!record.expected.empty()) {
    e.bytes_field(kTagExpected, record.expected);
    e.int_field(kTagExpectedSize, record.expected_size);
  }
  if (record.expire_at != Clock::time_point()) e.time_field(kTagExpireAt, record.expire_at);
  return e.take();
}

std::string encode(const LeaseRecord& record) {
  Encoder e;
  e.time_field(kTagCreatedAt, record.created_at);
  e.labels(record.labels);
  return e.take();
}

Status decode(std::string_view bytes, std::string_view what, NamespaceRecord* record) {
  *record = {};
  return decode_fields(bytes, what, [&](uint64_t tag, std::string_view value) {
    if (tag == kTagLabel) return decode_label(value, &record->labels);
    return true;
  });
}

Status decode(std::string_view bytes, std::string_view what, BlobRecord* record) {
  *record = {};
  return decode_fields(bytes, what, [&](uint64_t tag, std::string_view value) {
    switch (tag) {
      case kTagLabel:
        return decode_label(value, &record->labels);
      case kTagSize:
        return decode_int(value, &record->size);
      case kTagCreatedAt:
        return decode_time(value, &record->created_at);
      case kTagUpdatedAt:
        return decode_time(value, &record->updated_at);
      default:
        return true;
    }
  });
}

Status decode(std::string_view bytes, std::string_view what, IngestRecord* record) {
  *record = {};
  return decode_fields(bytes, what, [&](uint64_t tag, std::string_view value) {
    switch (tag) {
      case kTagBackendRef:
        record->backend_ref = value;
        return true;
      case kTagExpected:
        record->expected = value;
        return true;
      case kTagExpectedSize:
        return decode_int(value, &record->expected_size);
      case kTagExpireAt:
        return decode_time(value, &record->expire_at);
      default:
        return true;
    }
  });
}

Status decode(std::string_view bytes, std::string_view what, LeaseRecord* record) {
  *record = {};
  return decode_fields(bytes, what, [&](uint64_t tag, std::string_view value) {
    switch (tag) {
      case kTagLabel:
        return decode_label(value, &record->labels);
      case kTagCreatedAt:
        return decode_time(value, &record->created_at);
      default:
        return true;
    }
  });
}

std::string encode(const ImageRecord& record) {
  Encoder e;
  e.bytes_field(kTagMediaType, record.media_type);
  e.bytes_field(kTagDigest, record.digest);
  e.int_field(kTagSize, record.size);
  e.labels(record.annotations, kTagAnnotation);
  e.time_field(kTagCreatedAt, record.created_at);
  e.time_field(kTagUpdatedAt, record.updated_at);
  e.labels(record.labels);
  return e.take();
}

std::string encode(const ContainerRecord& record) {
  Encoder e;
  e.labels(record.labels);
  e.string_field(kTagImage, record.image);
  e.bytes_field(kTagRuntimeName, record.runtime_name);
  e.any_field(kTagRuntimeOptions, record.runtime_options);
  e.any_field(kTagSpec, record.spec);
  e.string_field(kTagSnapshotter, record.snapshotter);
  e.string_field(kTagSnapshotKey, record.snapshot_key);
  e.time_field(kTagCreatedAt, record.created_at);
  e.time_field(kTagUpdatedAt, record.updated_at);
  e.extensions(record.extensions);
  return e.take();
}

std::string encode(const SnapshotRecord& record) {
  Encoder e;
  e.bytes_field(kTagBackendKey, record.backend_key);
  e.string_field(kTagParent, record.parent);
  e.time_field(kTagCreatedAt, record.created_at);
  e.time_field(kTagUpdatedAt, record.updated_at);
  e.labels(record.labels);
  return e.take();
}

Status decode(std::string_view bytes, std::string_view what, ImageRecord* record) {
  *record = {};
  return decode_fields(bytes, what, [&](uint64_t tag, std::string_view value) {
    switch (tag) {
      case kTagMediaType:
        record->media_type = value;
        return true;
      case kTagDigest:
        record->digest = value;
        return true;
      case kTagSize:
        return decode_int(value, &record->size);
      case kTagAnnotation:
        return decode_label(value, &record->annotations);
      case kTagCreatedAt:
        return decode_time(value, &record->created_at);
      case kTagUpdatedAt:
        return decode_time(value, &record->updated_at);
      case kTagLabel:
        return decode_label(value, &record->labels);
      default:
        return true;
    }
  });
}

Status decode(std::string_view bytes, std::string_view what, ContainerRecord* record) {
  *record = {};
  return decode_fields(bytes, what, [&](uint64_t tag, std::string_view value) {
    switch (tag) {
      case kTagLabel:
        return decode_label(value, &record->labels);
      case kTagImage:
        record->image = value;
        return true;
      case kTagRuntimeName:
        record->runtime_name = value;
        return true;
      case kTagRuntimeOptions:
        return decode_any(value, &record->runtime_options);
      case kTagSpec:
        return decode_any(value, &record->spec);
      case kTagSnapshotter:
        record->snapshotter = value;
        return true;
      case kTagSnapshotKey:
        record->snapshot_key = value;
        return true;
      case kTagCreatedAt:
        return decode_time(value, &record->created_at);
      case kTagUpdatedAt:
        return decode_time(value, &record->updated_at);
      case kTagExtension:
        return decode_extension(value, &record->extensions);
      default:
        return true;
    }
  });
}

Status decode(std::string_view bytes, std::string_view what, SnapshotRecord* record) {
  *record = {};
  return decode_fields(bytes, what, [&](uint64_t tag, std::string_view value) {
    switch (tag) {
      case kTagBackendKey:
        record->backend_key = value;
        return true;
      case kTagParent:
        record->parent = value;
        return true;
      case kTagCreatedAt:
        return decode_time(value, &record->created_at);
      case kTagUpdatedAt:
        return decode_time(value, &record->updated_at);
      case kTagLabel:
        return decode_label(value, &record->labels);
      default:
        return true;
    }
  });
}

std::string encode_u64(uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return out;
}

bool decode_u64(std::string_view bytes, uint64_t* value) {
  if (bytes.size() != 8) return false;
  *value = 0;
  for (char c : bytes) *value = (*value << 8) | static_cast<unsigned char>(c);
  return true;
}

}  // namespace ctrd::metadata
