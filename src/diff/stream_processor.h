// diff/stream_processor: external programs that turn a layer of one media
// type into another (containerd's stream processors: `[stream_processors.<id>]`
// in the config, e.g. ocicrypt's decoder), chained in front of the built-in
// decompressors.
//
// Each processor runs with the previous stage's bytes on its stdin and its
// stdout streamed into the next stage, so a layer is never held in memory.
// Its environment is the daemon's plus the configured `env` plus
// STREAM_PROCESSOR_MEDIATYPE (the media type it was picked for); an Apply
// payload addressed to its id is readable on fd 3, as containerd passes it.
// Every child runs in its own process group and is reaped on every path:
// LayerStream's destructor kills whatever is still running.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "archive/archive.h"
#include "errdefs/errdefs.h"

namespace ctrd::diff {

struct StreamProcessorSpec {
  std::string id;                    // the config key, e.g. "io.containerd.ocicrypt.decoder.v1.tar.gzip"
  std::vector<std::string> accepts;  // input media types
  std::string returns;               // the media type of what it writes
  std::string path;                  // absolute, or a name looked up on PATH
  std::vector<std::string> args;
  std::vector<std::string> env;  // "K=V", added to the daemon's environment
};

// The configured processors. The daemon fills the process-wide set before it
// starts serving; appliers consult it for every layer.
class StreamProcessors {
 public:
  static StreamProcessors& global();

  // InvalidArgument naming the id when the spec has no path, accepts or returns.
  errdefs::Status add(StreamProcessorSpec spec);
  void clear();
  // The first added processor accepting `media_type`.
  std::optional<StreamProcessorSpec> find(std::string_view media_type) const;

 private:
  mutable std::mutex mu_;
  std::vector<StreamProcessorSpec> specs_;
};

// Processors in one chain, at most: a processor returning a type it (or an
// earlier one) accepts would otherwise loop forever.
inline constexpr size_t kMaxStreamProcessors = 8;

class ProcessorStage;

// A layer's uncompressed tar: the blob run through every processor its media
// type calls for, then through the decompressor of the media type the last
// one returns.
class LayerStream final : public archive::Reader {
 public:
  // `payloads` maps a processor id to the serialized google.protobuf.Any the
  // Apply request carried for it. No processor accepting the media type and
  // no known compression is NotImplemented naming the type; a processor that
  // cannot be started is an error naming its id.
  static errdefs::StatusOr<std::unique_ptr<LayerStream>> open(
      std::unique_ptr<archive::Reader> blob, std::string_view media_type, const StreamProcessors& processors,
      const std::map<std::string, std::string>& payloads = {});

  ~LayerStream() override;
  LayerStream(const LayerStream&) = delete;
  LayerStream& operator=(const LayerStream&) = delete;

  errdefs::StatusOr<size_t> read(char* buf, size_t n) override;

  // Ends the stream once its consumer is done; `consumed` is how that went.
  // On success the rest of the stream is read and every processor must exit
  // 0. On failure the processors are stopped. A processor that failed on its
  // own (non-zero exit, killed by a signal it was not sent) is reported —
  // naming its id, exit status and first line of stderr — rather than the
  // consumer's error it caused; otherwise the consumer's error is returned,
  // naming the processors whose output it was reading.
  errdefs::Status close(errdefs::Status consumed);

  // The ids of the processors in this chain, in order.
  std::vector<std::string> processor_ids() const;

 private:
  LayerStream() = default;

  std::vector<std::unique_ptr<ProcessorStage>> stages_;
  std::unique_ptr<archive::Reader> tar_;
  bool closed_ = false;
};

}  // namespace ctrd::diff
