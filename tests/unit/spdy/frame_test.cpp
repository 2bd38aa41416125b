// spdy/frame and spdy/header_block: frames written and read back, the
// reader's limits, header blocks over one zlib stream, bounded inflation.
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <variant>

#include "spdy/frame.h"
#include "spdy/header_block.h"

namespace ctrd::spdy {
namespace {

// Every frame in `bytes`, which must hold only whole frames.
std::vector<Frame> read_all(std::string_view bytes, uint32_t max_frame_length = 1u << 20) {
  FrameReader reader(max_frame_length);
  reader.append(bytes);
  std::vector<Frame> frames;
  while (true) {
    auto frame = reader.next();
    EXPECT_TRUE(frame.ok()) << frame.status().to_string();
    if (!frame.ok() || !frame->has_value()) break;
    // Views into the reader: keep only what the test compares, copied.
    frames.push_back(**frame);
    if (auto* d = std::get_if<DataFrame>(&frames.back())) d->data = {};
  }
  EXPECT_EQ(reader.buffered(), 0u);
  return frames;
}

TEST(SpdyHeaderBlock, TheDictionaryIsSpdy3s) {
  const std::string_view d = header_dictionary();
  EXPECT_EQ(d.size(), 1423u);
  EXPECT_EQ(
      adler32(adler32(0, nullptr, 0), reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size())),
      0xe3c6a7c2u);
}

TEST(SpdyFrame, ControlFramesComeBackAsWritten) {
  std::string out;
  append_syn_stream(out, SynStream{.stream_id = 5,
                                   .associated_stream_id = 3,
                                   .priority = 6,
                                   .flags = kFlagFin,
                                   .header_block = "abc"});
  append_syn_reply(out, 5, kFlagFin, "xy");
  append_headers(out, 7, 0, "");
  append_rst_stream(out, 5, RstStatus::kCancel);
  append_settings(out, Settings{.flags = kFlagClearSettings,
                                .entries = {{.flags = 1, .id = kSettingInitialWindowSize, .value = 1 << 20},
                                            {.flags = 0, .id = 4, .value = 100}}});
  append_ping(out, 0xfffffffe);
  append_goaway(out, 9, GoAwayStatus::kProtocolError);
  append_window_update(out, 0, 0x7fffffff);
  const auto frames = read_all(out);
  ASSERT_EQ(frames.size(), 8u);
  const auto& syn = std::get<SynStream>(frames[0]);
  EXPECT_EQ(syn.stream_id, 5u);
  EXPECT_EQ(syn.associated_stream_id, 3u);
  EXPECT_EQ(syn.priority, 6);
  EXPECT_EQ(syn.flags, kFlagFin);
  EXPECT_EQ(std::get<SynReply>(frames[1]).stream_id, 5u);
  EXPECT_EQ(std::get<SynReply>(frames[1]).flags, kFlagFin);
  EXPECT_EQ(std::get<Headers>(frames[2]).stream_id, 7u);
  EXPECT_EQ(std::get<RstStream>(frames[3]).status, static_cast<uint32_t>(RstStatus::kCancel));
  const auto& settings = std::get<Settings>(frames[4]);
  EXPECT_EQ(settings.flags, kFlagClearSettings);
  ASSERT_EQ(settings.entries.size(), 2u);
  EXPECT_EQ(settings.entries[0].id, kSettingInitialWindowSize);
  EXPECT_EQ(settings.entries[0].value, 1u << 20);
  EXPECT_EQ(settings.entries[0].flags, 1);
  EXPECT_EQ(settings.entries[1].value, 100u);
  EXPECT_EQ(std::get<Ping>(frames[5]).id, 0xfffffffeu);
  EXPECT_EQ(std::get<GoAway>(frames[6]).last_good_stream_id, 9u);
  EXPECT_EQ(std::get<GoAway>(frames[6]).status, static_cast<uint32_t>(GoAwayStatus::kProtocolError));
  EXPECT_EQ(std::get<WindowUpdate>(frames[7]).stream_id, 0u);
  EXPECT_EQ(std::get<WindowUpdate>(frames[7]).delta, 0x7fffffffu);
}

TEST(SpdyFrame, TheReaderWaitsForWholeFramesFedByteByByte) {
  std::string out;
  append_data(out, 3, 0, "hello");
  append_data(out, 3, kFlagFin, "");
  append_ping(out, 1);
  FrameReader reader;
  std::vector<std::string> seen;
  for (char c : out) {
    reader.append(std::string_view(&c, 1));
    auto frame = reader.next();
    ASSERT_TRUE(frame.ok());
    if (!frame->has_value()) continue;
    if (auto* d = std::get_if<DataFrame>(&**frame))
      seen.push_back("data " + std::to_string(d->stream_id) + " " + std::to_string(d->flags) + " " +
                     std::string(d->data));
    else if (std::holds_alternative<Ping>(**frame))
      seen.push_back("ping");
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"data 3 0 hello", "data 3 1 ", "ping"}));
}

TEST(SpdyFrame, WrongVersionsLyingLengthsAndOversizedFramesAreErrors) {
  auto first_error = [](std::string bytes, uint32_t limit = 1u << 20) {
    FrameReader reader(limit);
    reader.append(bytes);
    auto frame = reader.next();
    return frame.ok() ? errdefs::Code::kOk : frame.status().code();
  };
  std::string v2;
  append_ping(v2, 1);
  v2[1] = 2;  // version 2
  EXPECT_EQ(first_error(v2), errdefs::Code::kInvalidArgument);
  std::string short_rst;
  append_rst_stream(short_rst, 1, RstStatus::kCancel);
  short_rst[7] = 4;  // length 4: an RST_STREAM is 8
  short_rst.resize(12);
  EXPECT_EQ(first_error(short_rst), errdefs::Code::kInvalidArgument);
  std::string settings;
  append_settings(settings, Settings{.flags = 0, .entries = {{.flags = 0, .id = 1, .value = 1}}});
  settings[11] = 9;  // claims 9 entries, holds 1
  EXPECT_EQ(first_error(settings), errdefs::Code::kInvalidArgument);
  std::string syn0;
  append_syn_stream(syn0, SynStream{.stream_id = 0});
  EXPECT_EQ(first_error(syn0), errdefs::Code::kInvalidArgument);
  std::string big;
  append_data(big, 1, 0, std::string(2000, 'x'));
  EXPECT_EQ(first_error(big, 1000), errdefs::Code::kResourceExhausted);
  // Refused from the header alone: the body is never waited for.
  EXPECT_EQ(first_error(big.substr(0, kFrameHeaderSize), 1000), errdefs::Code::kResourceExhausted);
}

TEST(SpdyFrame, AControlFrameOfAnUnknownTypeIsSkipped) {
  std::string out;
  append_ping(out, 1);
  out[3] = 42;  // type 42
  append_ping(out, 2);
  const auto frames = read_all(out);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(std::get<UnknownControl>(frames[0]).type, 42);
  EXPECT_EQ(std::get<Ping>(frames[1]).id, 2u);
}

TEST(SpdyHeaderBlock, BlocksShareOneZlibStreamInOrder) {
  auto compressor = HeaderCompressor::create();
  auto decompressor = HeaderDecompressor::create();
  ASSERT_TRUE(compressor.ok() && decompressor.ok());
  const std::vector<HeaderPairs> blocks = {
      {{"streamtype", "error"}},
      {{"streamtype", "stdout"}, {"port", "8080"}, {"requestid", "0"}},
      {},
      {{"x-multi", std::string("a\0b", 3)}},
  };
  std::vector<std::string> compressed;
  for (const auto& b : blocks) {
    auto c = (*compressor)->compress(b);
    ASSERT_TRUE(c.ok());
    compressed.push_back(*c);
  }
  // The second block of the same headers refers back to the first: smaller.
  EXPECT_LT(compressed[1].size(), encode_pairs(blocks[1]).size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto pairs = (*decompressor)->decompress(compressed[i]);
    ASSERT_TRUE(pairs.ok()) << i << ": " << pairs.status().to_string();
    EXPECT_EQ(*pairs, blocks[i]) << i;
  }
  auto again = (*decompressor)->decompress(compressed[0]);
  EXPECT_FALSE(again.ok()) << "a block replayed out of order must not decode";
}

TEST(SpdyHeaderBlock, ABlockInflatingPastTheLimitIsRefused) {
  auto compressor = HeaderCompressor::create();
  auto decompressor = HeaderDecompressor::create(64 * 1024);
  ASSERT_TRUE(compressor.ok() && decompressor.ok());
  auto bomb = (*compressor)->compress({{"x", std::string(8 << 20, 'a')}});
  ASSERT_TRUE(bomb.ok());
  EXPECT_LT(bomb->size(), 64u * 1024);
  auto pairs = (*decompressor)->decompress(*bomb);
  ASSERT_FALSE(pairs.ok());
  EXPECT_EQ(pairs.status().code(), errdefs::Code::kResourceExhausted);
}

TEST(SpdyHeaderBlock, MalformedPairsAreInvalidArgument) {
  EXPECT_EQ(decode_pairs("").status().code(), errdefs::Code::kInvalidArgument);
  EXPECT_EQ(decode_pairs(std::string("\xff\xff\xff\xff", 4)).status().code(),
            errdefs::Code::kInvalidArgument);
  std::string empty_name = encode_pairs({{"", "v"}});
  EXPECT_EQ(decode_pairs(empty_name).status().code(), errdefs::Code::kInvalidArgument);
  std::string truncated = encode_pairs({{"name", "value"}});
  truncated.pop_back();
  EXPECT_EQ(decode_pairs(truncated).status().code(), errdefs::Code::kInvalidArgument);
  std::string trailing = encode_pairs({{"name", "value"}}) + "x";
  EXPECT_EQ(decode_pairs(trailing).status().code(), errdefs::Code::kInvalidArgument);
  auto upper = decode_pairs(encode_pairs({{"StreamType", "stdin"}}));
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(header_value(*upper, "streamtype"), "stdin");
  // Garbage that is not zlib at all.
  auto decompressor = HeaderDecompressor::create();
  ASSERT_TRUE(decompressor.ok());
  EXPECT_EQ((*decompressor)->decompress("not zlib at all").status().code(), errdefs::Code::kInvalidArgument);
}

}  // namespace
}  // namespace ctrd::spdy
