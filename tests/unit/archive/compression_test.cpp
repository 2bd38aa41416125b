#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>

#include "archive/archive.h"
#include "archive_test_util.h"

namespace ctrd::archive {
namespace {

using testing::read_all;
using testing::StringReader;
using testing::StringWriter;

// Compressible but not trivial: words from a small vocabulary, plus noise.
std::string sample(size_t size, unsigned seed = 1) {
  std::mt19937 rng(seed);
  static const char* kWords[] = {"layer ", "tar ",        "overlay ",    "snapshot ",
                                 "\n",     "containerd ", "\x00\x01\x02"};
  std::string out;
  while (out.size() < size) {
    if (rng() % 8 == 0) {
      out.push_back(static_cast<char>(rng()));
    } else {
      out += kWords[rng() % 7];
    }
  }
  out.resize(size);
  return out;
}

std::string compress_all(const std::string& data, Compression c, size_t piece = 100000) {
  StringWriter sink;
  auto writer = compress(sink, c);
  for (size_t pos = 0; pos < data.size(); pos += piece)
    EXPECT_TRUE(writer->write(std::string_view(data).substr(pos, piece)).ok());
  EXPECT_TRUE(writer->finish().ok());
  return sink.out;
}

errdefs::StatusOr<std::string> decompress_all(std::string data, Compression c, size_t in_chunk,
                                              size_t out_chunk) {
  auto reader = decompress(std::make_unique<StringReader>(std::move(data), in_chunk), c);
  return read_all(*reader, out_chunk);
}

TEST(CompressionOf, KnowsLayerMediaTypes) {
  struct Case {
    const char* type;
    Compression want;
  } cases[] = {
      {"application/vnd.oci.image.layer.v1.tar", Compression::kNone},
      {"application/vnd.oci.image.layer.v1.tar+gzip", Compression::kGzip},
      {"application/vnd.oci.image.layer.v1.tar+zstd", Compression::kZstd},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", Compression::kNone},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression::kGzip},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", Compression::kZstd},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", Compression::kGzip},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression::kGzip},
      {"application/vnd.docker.image.rootfs.diff.tar", Compression::kNone},
  };
  for (const Case& c : cases) {
    auto got = compression_of(c.type);
    ASSERT_TRUE(got.ok()) << c.type << ": " << got.status().to_string();
    EXPECT_EQ(*got, c.want) << c.type;
  }
}

TEST(CompressionOf, UnknownIsNotImplementedNamingTheType) {
  for (const char* type :
       {"application/vnd.oci.image.config.v1+json", "application/vnd.oci.image.layer.v1.tar+lz4",
        "application/vnd.docker.image.rootfs.diff.tar.gzip+encrypted", ""}) {
    auto got = compression_of(type);
    ASSERT_FALSE(got.ok()) << type;
    EXPECT_EQ(got.status().code(), errdefs::Code::kNotImplemented);
    EXPECT_NE(got.status().message().find(type), std::string::npos) << got.status().message();
  }
}

class RoundTrip : public ::testing::TestWithParam<Compression> {};

TEST_P(RoundTrip, DecompressInvertsCompress) {
  const std::string data = sample(3 * 1024 * 1024 + 17);
  const std::string packed = compress_all(data, GetParam());
  if (GetParam() != Compression::kNone) {
    EXPECT_LT(packed.size(), data.size());
  }
  // Small input pieces and small output reads cross every buffer boundary.
  for (auto [in_chunk, out_chunk] : {std::pair<size_t, size_t>{1 << 30, 1 << 20}, {4099, 777}, {1, 65536}}) {
    if (in_chunk == 1 && GetParam() == Compression::kNone) continue;
    auto got = decompress_all(packed, GetParam(), in_chunk, out_chunk);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_TRUE(*got == data) << "in_chunk=" << in_chunk << " size " << got->size() << " vs " << data.size();
  }
}

TEST_P(RoundTrip, EmptyInputRoundTrips) {
  const std::string packed = compress_all("", GetParam());
  auto got = decompress_all(packed, GetParam(), 1 << 20, 1 << 20);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, "");
}

INSTANTIATE_TEST_SUITE_P(All, RoundTrip,
                         ::testing::Values(Compression::kNone, Compression::kGzip, Compression::kZstd));

TEST(Gzip, ConcatenatedMembersAreOneStream) {
  const std::string a = sample(300000, 2);
  const std::string b = sample(5, 3);
  const std::string c = sample(200000, 4);
  const std::string packed = compress_all(a, Compression::kGzip) + compress_all(b, Compression::kGzip) +
                             compress_all(c, Compression::kGzip);
  for (size_t in_chunk : {size_t{1} << 30, size_t{7}, size_t{1}}) {
    auto got = decompress_all(packed, Compression::kGzip, in_chunk, 1000);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_TRUE(*got == a + b + c) << "in_chunk=" << in_chunk;
  }
}

TEST(Gzip, TruncatedStreamIsDataLoss) {
  const std::string packed = compress_all(sample(200000), Compression::kGzip);
  for (size_t keep : {size_t{0}, size_t{5}, packed.size() / 2, packed.size() - 4, packed.size() - 1}) {
    auto got = decompress_all(packed.substr(0, keep), Compression::kGzip, 1 << 20, 1 << 20);
    ASSERT_FALSE(got.ok()) << "keep=" << keep;
    EXPECT_EQ(got.status().code(), errdefs::Code::kDataLoss) << got.status().to_string();
    EXPECT_NE(got.status().message().find("gzip"), std::string::npos) << got.status().message();
  }
}

TEST(Gzip, BadChecksumAndGarbageAreDataLoss) {
  std::string packed = compress_all(sample(10000), Compression::kGzip);
  packed[packed.size() - 6] ^= 0x55;  // inside the CRC32 of the trailer
  auto got = decompress_all(packed, Compression::kGzip, 1 << 20, 1 << 20);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), errdefs::Code::kDataLoss);

  auto garbage = decompress_all("this is not gzip at all", Compression::kGzip, 1 << 20, 1 << 20);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().code(), errdefs::Code::kDataLoss);

  const std::string trailing = compress_all("abc", Compression::kGzip) + "junk after the member";
  auto after = decompress_all(trailing, Compression::kGzip, 1 << 20, 1 << 20);
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.status().code(), errdefs::Code::kDataLoss);
}

// A stream from the gzip tool carries a file name and mtime in its header.
TEST(Gzip, ReadsTheGzipToolsOutput) {
  testing::TempDir dir;
  const std::string data = sample(100000, 9);
  const std::string path = dir.sub("data.bin");
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
  if (std::system(("gzip -9 " + path + " 2>/dev/null").c_str()) != 0) GTEST_SKIP() << "no gzip tool";
  std::string packed;
  f = std::fopen((path + ".gz").c_str(), "rb");
  ASSERT_NE(f, nullptr);
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) packed.append(buf, n);
  std::fclose(f);
  auto got = decompress_all(packed, Compression::kGzip, 1000, 1 << 20);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_TRUE(*got == data);
}

TEST(Zstd, TruncatedStreamIsDataLoss) {
  const std::string packed = compress_all(sample(200000), Compression::kZstd);
  for (size_t keep : {size_t{0}, size_t{3}, packed.size() / 2, packed.size() - 1}) {
    auto got = decompress_all(packed.substr(0, keep), Compression::kZstd, 1 << 20, 1 << 20);
    ASSERT_FALSE(got.ok()) << "keep=" << keep;
    EXPECT_EQ(got.status().code(), errdefs::Code::kDataLoss) << got.status().to_string();
    EXPECT_NE(got.status().message().find("zstd"), std::string::npos) << got.status().message();
  }
  auto garbage = decompress_all("definitely not zstd", Compression::kZstd, 1 << 20, 1 << 20);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().code(), errdefs::Code::kDataLoss);
}

TEST(Zstd, ConcatenatedFramesAreOneStream) {
  const std::string packed =
      compress_all("first ", Compression::kZstd) + compress_all("second", Compression::kZstd);
  auto got = decompress_all(packed, Compression::kZstd, 3, 4);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, "first second");
}

}  // namespace
}  // namespace ctrd::archive
