// ctrd's SPDY frames and header blocks against Debian's
// github.com/moby/spdystream/spdy, the framer of the Kubernetes client stack
// (tests/unit/spdy/go): what it writes, ctrd reads; what ctrd writes, it reads.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <variant>

#include "spdy/frame.h"
#include "spdy/header_block.h"
#include "support/daemon_process.h"
#include "support/temp_dir.h"

namespace ctrd::spdy {
namespace {

#ifdef CTRD_SPDY_INTEROP
// Runs the Go program; its exit code, with its stdout in `out`.
int run_interop(const std::string& mode, const std::filesystem::path& input, std::string* out) {
  testing::TempDir dir;
  testing::DaemonProcess process(testing::ProcessCommand{.argv = {CTRD_SPDY_INTEROP, mode},
                                                         .log = dir.path() / "out",
                                                         .err_log = dir.path() / "err",
                                                         .input = input,
                                                         .env = std::nullopt});
  const auto code = process.wait(std::chrono::seconds(30));
  std::ifstream in(dir.path() / "out", std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  *out = text.str();
  if (code != 0) {
    std::ifstream err(dir.path() / "err");
    std::stringstream e;
    e << err.rdbuf();
    ADD_FAILURE() << "interop " << mode << ": " << e.str();
  }
  return code.value_or(-1);
}

std::string describe(const HeaderPairs& headers) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : headers) {
    std::string value = v;
    for (char& c : value)
      if (c == '\0') c = '|';
    parts.push_back(k + "=" + value);
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

TEST(SpdyInterop, WhatSpdystreamWritesIsRead) {
  std::string bytes;
  ASSERT_EQ(run_interop("write", "/dev/null", &bytes), 0);
  FrameReader reader;
  reader.append(bytes);
  auto decompressor = HeaderDecompressor::create();
  ASSERT_TRUE(decompressor.ok());
  std::vector<std::string> lines;
  while (true) {
    auto next = reader.next();
    ASSERT_TRUE(next.ok()) << next.status().to_string();
    if (!next->has_value()) break;
    const Frame& frame = **next;
    auto headers_of = [&](std::string_view block) {
      auto pairs = (*decompressor)->decompress(block);
      EXPECT_TRUE(pairs.ok()) << pairs.status().to_string();
      return pairs.ok() ? describe(*pairs) : "";
    };
    if (auto* f = std::get_if<SynStream>(&frame))
      lines.push_back("SYN_STREAM " + std::to_string(f->stream_id) + " " + std::to_string(f->priority) + " " +
                      headers_of(f->header_block));
    else if (auto* f = std::get_if<SynReply>(&frame))
      lines.push_back("SYN_REPLY " + std::to_string(f->stream_id) + " " + std::to_string(f->flags) + " " +
                      headers_of(f->header_block));
    else if (auto* f = std::get_if<Headers>(&frame))
      lines.push_back("HEADERS " + std::to_string(f->stream_id) + " " + headers_of(f->header_block));
    else if (auto* f = std::get_if<DataFrame>(&frame))
      lines.push_back("DATA " + std::to_string(f->stream_id) + " " + std::to_string(f->flags) + " " +
                      std::string(f->data));
    else if (auto* f = std::get_if<Ping>(&frame))
      lines.push_back("PING " + std::to_string(f->id));
    else if (auto* f = std::get_if<WindowUpdate>(&frame))
      lines.push_back("WINDOW_UPDATE " + std::to_string(f->stream_id) + " " + std::to_string(f->delta));
    else if (auto* f = std::get_if<Settings>(&frame))
      lines.push_back("SETTINGS " + std::to_string(f->entries.size()) + " " +
                      std::to_string(f->entries[0].id) + "=" + std::to_string(f->entries[0].value));
    else if (auto* f = std::get_if<RstStream>(&frame))
      lines.push_back("RST_STREAM " + std::to_string(f->stream_id) + " " + std::to_string(f->status));
    else if (auto* f = std::get_if<GoAway>(&frame))
      lines.push_back("GOAWAY " + std::to_string(f->last_good_stream_id) + " " + std::to_string(f->status));
  }
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "SYN_STREAM 1 2 streamtype=error",
                       "SYN_STREAM 3 0 port=8080,streamtype=stdout",
                       "SYN_REPLY 3 1 status=200",
                       "DATA 3 0 hello",
                       "DATA 3 1 ",
                       "HEADERS 1 x-multi=a|b",
                       "PING 7",
                       "WINDOW_UPDATE 3 4096",
                       "SETTINGS 1 7=65536",
                       "RST_STREAM 1 5",
                       "GOAWAY 3 0",
                   }));
}

TEST(SpdyInterop, WhatCtrdWritesSpdystreamReads) {
  auto compressor = HeaderCompressor::create();
  ASSERT_TRUE(compressor.ok());
  auto block = [&](const HeaderPairs& pairs) {
    auto c = (*compressor)->compress(pairs);
    EXPECT_TRUE(c.ok());
    return c.ok() ? *c : "";
  };
  std::string out;
  append_syn_stream(out, SynStream{.stream_id = 2,
                                   .associated_stream_id = 1,
                                   .priority = 3,
                                   .flags = 0,
                                   .header_block = block({{"streamtype", "data"}, {"port", "80"}})});
  append_syn_reply(out, 1, 0, block({}));
  append_syn_reply(out, 3, kFlagFin, block({{"streamtype", "data"}, {"port", "80"}}));
  append_data(out, 1, 0, "from ctrd");
  append_data(out, 1, kFlagFin, "");
  append_headers(out, 1, 0, block({{"x-multi", std::string("a\0b", 3)}}));
  append_ping(out, 8);
  append_window_update(out, 1, 100);
  append_settings(
      out, Settings{.flags = 0, .entries = {{.flags = 0, .id = kSettingInitialWindowSize, .value = 1}}});
  append_rst_stream(out, 1, RstStatus::kRefusedStream);
  append_goaway(out, 1, GoAwayStatus::kOk);
  testing::TempDir dir;
  std::ofstream(dir.path() / "frames", std::ios::binary) << out;
  std::string lines;
  ASSERT_EQ(run_interop("read", dir.path() / "frames", &lines), 0);
  EXPECT_EQ(lines,
            "SYN_STREAM 2 1 3 0 port=80,streamtype=data\n"
            "SYN_REPLY 1 0 \n"
            "SYN_REPLY 3 1 port=80,streamtype=data\n"
            "DATA 1 0 \"from ctrd\"\n"
            "DATA 1 1 \"\"\n"
            "HEADERS 1 0 x-multi=a|b\n"
            "PING 8\n"
            "WINDOW_UPDATE 1 100\n"
            "SETTINGS 0 7=1\n"
            "RST_STREAM 1 3\n"
            "GOAWAY 1 0\n");
}
#else
TEST(SpdyInterop, NeedsGo) {
  GTEST_SKIP() << "go is not installed: the spdystream interop program was not built";
}
#endif

}  // namespace
}  // namespace ctrd::spdy
