#include "ttrpc/wire.h"

#include <gtest/gtest.h>

#include <string>

namespace ctrd::ttrpc {
namespace {

using errdefs::Code;

TEST(FrameHeader, IsBigEndianAndRoundTrips) {
  const FrameHeader h{
      .length = 0x01020304, .stream_id = 0xA0B0C0D1, .type = MessageType::kResponse, .flags = 0x05};
  char bytes[kFrameHeaderSize];
  encode_frame_header(h, bytes);
  EXPECT_EQ(std::string(bytes, sizeof(bytes)), std::string("\x01\x02\x03\x04\xA0\xB0\xC0\xD1\x02\x05", 10));
  EXPECT_EQ(decode_frame_header(bytes), h);
}

TEST(Request, RoundTripsEveryField) {
  const Request r{.service = "containerd.task.v2.Task",
                  .method = "Create",
                  .payload = std::string("\0\x01\xff payload", 11),
                  .timeout_nano = 1'500'000'000,
                  .metadata = {{"containerd-namespace-ttrpc", "default"}, {"k", ""}, {"k", "second"}}};
  const std::string bytes = encode(r);
  EXPECT_EQ(bytes.size(), encoded_size(r));
  Request back;
  ASSERT_TRUE(decode(bytes, back).ok());
  EXPECT_EQ(back, r);
}

TEST(Request, EncodesLikeProtobuf) {
  // Field 1 "a", field 2 "b", field 4 varint 300, field 5 {1: "k", 2: "v"}.
  const Request r{.service = "a", .method = "b", .timeout_nano = 300, .metadata = {{"k", "v"}}};
  EXPECT_EQ(encode(r), std::string("\x0a\x01"
                                   "a\x12\x01"
                                   "b\x20\xac\x02\x2a\x06\x0a\x01k\x12\x01v",
                                   17));
}

TEST(Response, OkCarriesAnEmptyStatusLikeGo) {
  EXPECT_EQ(encode(Response{}), std::string("\x0a\x00", 2));
  Response back{.code = 3};
  ASSERT_TRUE(decode(std::string_view(), back).ok());
  EXPECT_EQ(back, Response{});
}

TEST(Response, RoundTripsStatusAndPayload) {
  const Response r{.code = 5, .message = "container \"x\" not found", .payload = "p"};
  Response back;
  ASSERT_TRUE(decode(encode(r), back).ok());
  EXPECT_EQ(back, r);

  const Response negative{.code = -1};
  ASSERT_TRUE(decode(encode(negative), back).ok());
  EXPECT_EQ(back.code, -1);
}

TEST(Response, SkipsStatusDetailsAndUnknownFields) {
  // status {code 5, details {type_url "t"}}, field 9 varint, payload "x".
  const std::string bytes("\x0a\x07\x08\x05\x1a\x03\x0a\x01t\x48\x01\x12\x01x", 14);
  Response back;
  ASSERT_TRUE(decode(bytes, back).ok());
  EXPECT_EQ(back, (Response{.code = 5, .payload = "x"}));
}

TEST(Decode, RejectsMalformedInput) {
  Request request;
  Response response;
  const std::string good = encode(Request{.service = "svc", .method = "m", .payload = "data"});
  for (size_t cut = 1; cut < good.size(); ++cut) {
    if (cut == 5 || cut == 8) continue;  // field boundaries: a shorter valid message
    EXPECT_EQ(decode(good.substr(0, cut), request).code(), Code::kInvalidArgument) << "cut " << cut;
  }
  // Service (field 1) sent as a varint: wrong wire type.
  EXPECT_EQ(decode(std::string("\x08\x01", 2), request).code(), Code::kInvalidArgument);
  // A metadata entry claiming more bytes than there are.
  EXPECT_EQ(decode(std::string("\x2a\x05\x0a\x01k", 5), request).code(), Code::kInvalidArgument);
  // A status sub-message that is itself truncated.
  EXPECT_EQ(decode(std::string("\x0a\x02\x12\x05", 4), response).code(), Code::kInvalidArgument);
  // Field number 0 is never valid.
  EXPECT_EQ(decode(std::string("\x02\x00", 2), response).code(), Code::kInvalidArgument);
}

std::string frame(uint32_t id, MessageType type, std::string_view payload) {
  std::string out;
  append_frame(out, id, type, payload);
  return out;
}

TEST(FrameDecoder, ReassemblesFramesFedByteByByte) {
  const std::string stream = frame(1, MessageType::kRequest, "hello") + frame(3, MessageType::kResponse, "") +
                             frame(5, MessageType::kData, std::string(1000, 'x'));
  FrameDecoder decoder;
  std::vector<std::pair<FrameHeader, std::string>> got;
  for (char c : stream) {
    decoder.append(std::string_view(&c, 1));
    while (true) {
      auto f = decoder.next();
      ASSERT_TRUE(f.ok()) << f.status().to_string();
      if (!f->has_value()) break;
      EXPECT_FALSE((*f)->oversized);
      got.emplace_back((*f)->header, std::string((*f)->payload));
    }
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].first, (FrameHeader{.length = 5, .stream_id = 1, .type = MessageType::kRequest}));
  EXPECT_EQ(got[0].second, "hello");
  EXPECT_EQ(got[1].first.stream_id, 3u);
  EXPECT_EQ(got[1].second, "");
  EXPECT_EQ(got[2].first.type, MessageType::kData);
  EXPECT_EQ(got[2].second, std::string(1000, 'x'));
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameDecoder, ReportsAnOversizedFrameAndSkipsItsPayloadUnbuffered) {
  FrameDecoder decoder;
  char header[kFrameHeaderSize];
  const uint32_t big = kMaxMessageSize + 1;
  encode_frame_header(FrameHeader{.length = big, .stream_id = 7, .type = MessageType::kRequest}, header);
  decoder.append(std::string_view(header, sizeof(header)));

  auto f = decoder.next();
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_TRUE((*f)->oversized);
  EXPECT_EQ((*f)->header.stream_id, 7u);
  EXPECT_EQ((*f)->header.length, big);

  const std::string chunk(64 << 10, 'z');
  size_t fed = 0;
  while (fed + chunk.size() <= big) {
    decoder.append(chunk);
    fed += chunk.size();
    auto none = decoder.next();
    ASSERT_TRUE(none.ok() && !none->has_value());
    EXPECT_EQ(decoder.buffered(), 0u);  // skipped, not stored
  }
  // The payload's tail and the next frame in one piece.
  decoder.append(std::string(big - fed, 'z') + frame(9, MessageType::kRequest, "after"));
  auto next = decoder.next();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_FALSE((*next)->oversized);
  EXPECT_EQ((*next)->header.stream_id, 9u);
  EXPECT_EQ((*next)->payload, "after");
}

TEST(FrameDecoder, RefusesAnUnknownMessageType) {
  FrameDecoder decoder;
  decoder.append("GET / HTTP/1.1\r\n\r\n");
  auto f = decoder.next();
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Code::kInvalidArgument);
  EXPECT_NE(f.status().message().find("unknown message type"), std::string::npos);
}

TEST(FrameDecoder, WaitsForAWholeHeader) {
  FrameDecoder decoder;
  decoder.append(std::string("\x00\x00\x00\x01\x00\x00\x00", 7));
  auto f = decoder.next();
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->has_value());
}

TEST(Codes, MapToGrpcNumbersAndBack) {
  EXPECT_EQ(to_grpc_code(Code::kNotFound), 5);
  EXPECT_EQ(to_grpc_code(Code::kNotImplemented), 12);
  EXPECT_EQ(to_grpc_code(Code::kUnavailable), 14);
  EXPECT_EQ(to_grpc_code(Code::kSkip), 2);
  for (Code c : {Code::kOk, Code::kUnknown, Code::kInvalidArgument, Code::kNotFound, Code::kAlreadyExists,
                 Code::kFailedPrecondition, Code::kUnavailable, Code::kNotImplemented, Code::kCanceled,
                 Code::kDeadlineExceeded, Code::kResourceExhausted, Code::kAborted, Code::kOutOfRange,
                 Code::kPermissionDenied, Code::kInternal, Code::kDataLoss}) {
    EXPECT_EQ(from_grpc_code(to_grpc_code(c)), c) << errdefs::code_name(c);
  }
  EXPECT_EQ(from_grpc_code(16), Code::kUnknown);
  EXPECT_EQ(from_grpc_code(-4), Code::kUnknown);
  EXPECT_EQ(from_grpc_code(1000), Code::kUnknown);
}

TEST(Codes, StatusSurvivesAResponse) {
  const errdefs::Status s = errdefs::AlreadyExists("image \"x\": already exists");
  EXPECT_EQ(status_from_response(response_from_status(s)), s);
  EXPECT_TRUE(status_from_response(Response{}).ok());
}

}  // namespace
}  // namespace ctrd::ttrpc
