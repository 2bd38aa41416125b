// protobuf/time.h: std::chrono time points <-> google.protobuf.Timestamp,
// for the gRPC front ends, the proxy plugins and the runtime.
#pragma once

#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>

#include <chrono>

namespace ctrd::protobuf {

inline google::protobuf::Timestamp to_timestamp(std::chrono::system_clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(ns);
}

inline std::chrono::system_clock::time_point from_timestamp(const google::protobuf::Timestamp& t) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(google::protobuf::util::TimeUtil::TimestampToNanoseconds(t))));
}

}  // namespace ctrd::protobuf
