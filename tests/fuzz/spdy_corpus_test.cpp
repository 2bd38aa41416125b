// Runs seed streams through the spdy fuzz entry, so its invariants are
// checked in every build. The seeds are built here (no binary files in the repo):
//   spdy_corpus_test                    check the built-in seeds
//   spdy_corpus_test DIR                ... and every file in DIR
//   spdy_corpus_test --write-seeds DIR  write the seeds to DIR, for the fuzzer
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "corpus_main.h"
#include "spdy/frame.h"
#include "spdy/header_block.h"
#include "spdy_fuzz_entry.h"

namespace {

using namespace ctrd::spdy;

std::vector<std::pair<std::string, std::string>> seeds() {
  std::vector<std::pair<std::string, std::string>> out;
  auto compressor = HeaderCompressor::create();
  if (!compressor.ok()) return out;
  auto block = [&](const HeaderPairs& pairs) {
    auto c = (*compressor)->compress(pairs);
    return c.ok() ? *c : std::string();
  };
  // The leading byte of each seed is the read size minus one.
  std::string exec(1, '\x05');
  append_syn_stream(exec, SynStream{.stream_id = 1, .header_block = block({{"streamtype", "error"}})});
  append_syn_stream(exec, SynStream{.stream_id = 3, .header_block = block({{"streamtype", "stdin"}})});
  append_syn_stream(exec, SynStream{.stream_id = 5, .header_block = block({{"streamtype", "stdout"}})});
  append_data(exec, 3, 0, "echo hello\n");
  append_data(exec, 3, kFlagFin, "");
  out.emplace_back("exec", exec);

  std::string forward(1, '\x40');
  append_syn_stream(
      forward,
      SynStream{.stream_id = 1,
                .header_block = block({{"streamtype", "error"}, {"port", "8080"}, {"requestid", "0"}})});
  append_syn_stream(
      forward,
      SynStream{.stream_id = 3,
                .header_block = block({{"streamtype", "data"}, {"port", "8080"}, {"requestid", "0"}})});
  append_data(forward, 3, 0, "GET / HTTP/1.0\r\n\r\n");
  out.emplace_back("portforward", forward);

  std::string control(1, '\xff');
  append_settings(
      control,
      Settings{.flags = 0, .entries = {{.flags = 0, .id = kSettingInitialWindowSize, .value = 1 << 20}}});
  append_ping(control, 1);
  append_window_update(control, 0, 1 << 16);
  append_rst_stream(control, 1, RstStatus::kCancel);
  append_headers(control, 1, kFlagFin, block({{"x", "y"}}));
  append_goaway(control, 3, GoAwayStatus::kOk);
  out.emplace_back("control", control);

  // A compression bomb: 1 MiB of one byte in a few hundred.
  std::string bomb(1, '\x10');
  append_syn_stream(bomb,
                    SynStream{.stream_id = 1, .header_block = block({{"x", std::string(1 << 20, 'a')}})});
  out.emplace_back("bomb", bomb);

  std::string wrong(1, '\x02');
  wrong += "GET /exec/token HTTP/1.1\r\n\r\n";
  out.emplace_back("http", wrong);
  return out;
}

void run(const std::string& data) {
  ctrd::spdy::fuzz::run_one_input(reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

}  // namespace

int main(int argc, char** argv) {
  // Truncations reach the "need more bytes" paths mid-header and mid-block.
  return ctrd::fuzz::corpus_main(argc, argv, "spdy", seeds(), 7, run);
}
