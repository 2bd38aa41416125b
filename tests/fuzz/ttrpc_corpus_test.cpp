// Runs seed streams through the ttrpc fuzz entry, so its invariants are
// checked in every build. The seeds are built here (no binary files in the repo):
//   ttrpc_corpus_test                    check the built-in seeds
//   ttrpc_corpus_test DIR                ... and every file in DIR
//   ttrpc_corpus_test --write-seeds DIR  write the seeds to DIR, for the fuzzer
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "corpus_main.h"
#include "ttrpc/wire.h"
#include "ttrpc_fuzz_entry.h"

namespace {

using namespace ctrd::ttrpc;

std::string frame(uint32_t id, MessageType type, std::string_view payload) {
  std::string out;
  append_frame(out, id, type, payload);
  return out;
}

std::vector<std::pair<std::string, std::string>> seeds() {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string request = encode(Request{.service = "containerd.task.v2.Task",
                                             .method = "State",
                                             .payload = std::string("\x0a\x02id", 4),
                                             .timeout_nano = 5'000'000'000,
                                             .metadata = {{"containerd-namespace-ttrpc", "default"}}});
  const std::string response = encode(Response{.code = 5, .message = "not found", .payload = "p"});
  // The leading byte of each seed is the read size minus one.
  out.emplace_back("request", std::string(1, '\x03') + frame(1, MessageType::kRequest, request));
  out.emplace_back("responses", std::string(1, '\xff') + frame(1, MessageType::kResponse, response) +
                                    frame(3, MessageType::kResponse, encode(Response{})));
  out.emplace_back("data", std::string(1, '\x00') + frame(5, MessageType::kData, "chunk"));
  char header[kFrameHeaderSize];
  encode_frame_header(
      FrameHeader{.length = kMaxMessageSize + 1, .stream_id = 7, .type = MessageType::kRequest}, header);
  out.emplace_back("oversized", std::string(1, '\x40') + std::string(header, sizeof(header)) +
                                    std::string(300, 'x') + frame(9, MessageType::kRequest, request));
  out.emplace_back("bad-type", std::string(1, '\x10') + "GET / HTTP/1.1\r\n\r\n");
  out.emplace_back("bad-message", std::string(1, '\x07') +
                                      frame(1, MessageType::kRequest, "\x0a\x05\xff\xff") +
                                      frame(3, MessageType::kResponse, "\x0a\x80\x80\x80\x80\x10"));
  out.emplace_back("groups",
                   std::string(1, '\x20') + frame(1, MessageType::kRequest, "\x33\x08\x01\x34\x0a\x01s"));
  return out;
}

void run(const std::string& data) {
  ctrd::ttrpc::fuzz::run_one_input(reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

}  // namespace

int main(int argc, char** argv) {
  // Truncations reach the "need more bytes" paths mid-header and mid-payload.
  return ctrd::fuzz::corpus_main(argc, argv, "ttrpc", seeds(), 3, run);
}
