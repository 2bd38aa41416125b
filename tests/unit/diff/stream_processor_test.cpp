#include "diff/stream_processor.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "archive/archive.h"
#include "archive_test_util.h"
#include "config/config.h"
#include "diff/diff.h"

namespace ctrd::diff {
namespace {

using archive::testing::read_all;
using archive::testing::StringReader;
using archive::testing::StringWriter;
using archive::testing::TarBuilder;
using archive::testing::TempDir;

constexpr std::string_view kRot13Type = "application/vnd.example.layer.v1.tar+rot13";
constexpr std::string_view kBase64GzipType = "application/vnd.example.layer.v1.tar+gzip+base64";

std::string sample_tar() {
  return TarBuilder().dir("etc").file("etc/hello", "hello from a processed layer\n").take();
}

std::string rot13(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>('a' + (c - 'a' + 13) % 26);
    if (c >= 'A' && c <= 'Z') c = static_cast<char>('A' + (c - 'A' + 13) % 26);
  }
  return s;
}

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string gzip(std::string_view data) {
  StringWriter out;
  auto w = archive::compress(out, archive::Compression::kGzip);
  EXPECT_TRUE(w->write(data).ok());
  EXPECT_TRUE(w->finish().ok());
  return out.out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// True when this process has no child left, zombie or running.
bool no_children() {
  errno = 0;
  return ::waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD;
}

StreamProcessorSpec rot13_spec() {
  // PATH lookup of a bare name, and args from the spec.
  return {"com.example.rot13",          {std::string(kRot13Type)},
          std::string(kMediaTypeLayer), "tr",
          {"A-Za-z", "N-ZA-Mn-za-m"},   {}};
}

StreamProcessorSpec base64_spec() {
  return {"com.example.base64",
          {std::string(kBase64GzipType)},
          std::string(kMediaTypeLayerGzip),
          "/usr/bin/base64",
          {"-d"},
          {}};
}

class StreamProcessorTest : public ::testing::Test {
 protected:
  // An executable shell script in the temp dir.
  std::string script(const std::string& name, const std::string& body) {
    const std::string path = tmp_.sub(name);
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0755);
    return path;
  }

  errdefs::StatusOr<std::unique_ptr<LayerStream>> open(
      std::string data, std::string_view type, const std::map<std::string, std::string>& payloads = {}) {
    return LayerStream::open(std::make_unique<StringReader>(std::move(data), 4096), type, processors_,
                             payloads);
  }

  // Applies the stream as the walking differ does and closes it with the result.
  errdefs::Status apply_and_close(LayerStream& stream) {
    auto applied = archive::apply(stream, tmp_.sub("root"), {});
    return stream.close(applied.status());
  }

  void SetUp() override { ASSERT_EQ(::mkdir(tmp_.sub("root").c_str(), 0755), 0); }
  void TearDown() override { EXPECT_TRUE(no_children()) << "a processor was left unreaped"; }

  TempDir tmp_{::ctrd::testing::trusted_temp_parent()};  // only root may write to it: scripts run from here
  StreamProcessors processors_;
};

TEST_F(StreamProcessorTest, DecodesCustomMediaTypeIntoPlainTar) {
  ASSERT_TRUE(processors_.add(rot13_spec()).ok());
  const std::string tar = sample_tar();
  auto stream = open(rot13(tar), kRot13Type);
  ASSERT_TRUE(stream.ok()) << stream.status().to_string();
  EXPECT_EQ((*stream)->processor_ids(), std::vector<std::string>{"com.example.rot13"});
  auto got = read_all(**stream);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, tar);
  EXPECT_TRUE((*stream)->close(errdefs::Status::Ok()).ok());
}

TEST_F(StreamProcessorTest, AppliesThroughProcessor) {
  ASSERT_TRUE(processors_.add(rot13_spec()).ok());
  auto stream = open(rot13(sample_tar()), kRot13Type);
  ASSERT_TRUE(stream.ok()) << stream.status().to_string();
  auto closed = apply_and_close(**stream);
  ASSERT_TRUE(closed.ok()) << closed.to_string();
  EXPECT_EQ(read_file(tmp_.sub("root/etc/hello")), "hello from a processed layer\n");
}

TEST_F(StreamProcessorTest, ChainsProcessorsIntoDecompressor) {
  ASSERT_TRUE(processors_.add(base64_spec()).ok());
  // rot13 of base64 of gzip of the tar: two processors, then isa-l.
  ASSERT_TRUE(processors_
                  .add({"com.example.rot13-outer",
                        {"application/vnd.example.rot13"},
                        std::string(kBase64GzipType),
                        "tr",
                        {"A-Za-z", "N-ZA-Mn-za-m"},
                        {}})
                  .ok());
  const std::string tar = sample_tar();
  auto stream = open(rot13(base64(gzip(tar))), "application/vnd.example.rot13");
  ASSERT_TRUE(stream.ok()) << stream.status().to_string();
  EXPECT_EQ((*stream)->processor_ids(),
            (std::vector<std::string>{"com.example.rot13-outer", "com.example.base64"}));
  auto got = read_all(**stream);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, tar);
  EXPECT_TRUE((*stream)->close(errdefs::Status::Ok()).ok());
}

TEST_F(StreamProcessorTest, EnvironmentHasMediaTypeConfigEnvAndDaemonEnv) {
  ::setenv("CTRD_TEST_DAEMON_VAR", "from-daemon", 1);
  const std::string seen = tmp_.sub("env");
  const std::string path = script(
      "env.sh", "printf '%s|%s|%s' \"$STREAM_PROCESSOR_MEDIATYPE\" \"$K\" \"$CTRD_TEST_DAEMON_VAR\" > " +
                    seen + "\nexec cat");
  ASSERT_TRUE(
      processors_.add({"env", {"x/y"}, std::string(kMediaTypeLayer), path, {}, {"K=V1", "K=V2"}}).ok());
  auto stream = open(sample_tar(), "x/y");
  ASSERT_TRUE(stream.ok()) << stream.status().to_string();
  auto closed = apply_and_close(**stream);
  ASSERT_TRUE(closed.ok()) << closed.to_string();
  EXPECT_EQ(read_file(seen), "x/y|V2|from-daemon");
  ::unsetenv("CTRD_TEST_DAEMON_VAR");
}

TEST_F(StreamProcessorTest, PayloadIsReadableOnFd3) {
  const std::string seen = tmp_.sub("payload");
  const std::string path = script("payload.sh", "cat <&3 > " + seen + "\nexec cat");
  ASSERT_TRUE(processors_.add({"p", {"x/y"}, std::string(kMediaTypeLayer), path, {}, {}}).ok());
  auto stream = open(sample_tar(), "x/y", {{"p", std::string("key\0material", 12)}, {"other", "not mine"}});
  ASSERT_TRUE(stream.ok()) << stream.status().to_string();
  ASSERT_TRUE(apply_and_close(**stream).ok());
  EXPECT_EQ(read_file(seen), std::string("key\0material", 12));
}

TEST_F(StreamProcessorTest, FailingProcessorIsNamedWithStatusAndStderr) {
  const std::string path =
      script("fail.sh", "echo 'cannot decrypt: no key' >&2\necho second line >&2\nexit 3");
  ASSERT_TRUE(
      processors_.add({"com.example.fail", {"x/y"}, std::string(kMediaTypeLayer), path, {}, {}}).ok());
  auto stream = open(sample_tar(), "x/y");
  ASSERT_TRUE(stream.ok()) << stream.status().to_string();
  auto closed = apply_and_close(**stream);
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.code(), errdefs::Code::kUnknown) << closed.to_string();
  EXPECT_NE(closed.message().find("\"com.example.fail\""), std::string::npos) << closed.message();
  EXPECT_NE(closed.message().find("exit status 3"), std::string::npos) << closed.message();
  EXPECT_NE(closed.message().find("cannot decrypt: no key"), std::string::npos) << closed.message();
  EXPECT_EQ(closed.message().find("second line"), std::string::npos) << closed.message();
}

TEST_F(StreamProcessorTest, FailureAfterPartialOutputBlamesProcessor) {
  // Half a tar, then a failure: the consumer's truncation error is its doing.
  const std::string path = script("half.sh", "head -c 700\necho 'bad padding' >&2\nexit 1");
  ASSERT_TRUE(processors_.add({"half", {"x/y"}, std::string(kMediaTypeLayer), path, {}, {}}).ok());
  auto stream = open(sample_tar(), "x/y");
  ASSERT_TRUE(stream.ok());
  auto closed = apply_and_close(**stream);
  ASSERT_FALSE(closed.ok());
  EXPECT_NE(closed.message().find("\"half\""), std::string::npos) << closed.message();
  EXPECT_NE(closed.message().find("exit status 1: bad padding"), std::string::npos) << closed.message();
}

TEST_F(StreamProcessorTest, GarbageOutputIsDataLossNamingProcessor) {
  // Never ends on its own: it must be stopped once the consumer gives up.
  ASSERT_TRUE(
      processors_.add({"com.example.garbage", {"x/y"}, std::string(kMediaTypeLayer), "yes", {}, {}}).ok());
  auto stream = open(sample_tar(), "x/y");
  ASSERT_TRUE(stream.ok()) << stream.status().to_string();
  auto closed = apply_and_close(**stream);
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.code(), errdefs::Code::kDataLoss) << closed.to_string();
  EXPECT_NE(closed.message().find("\"com.example.garbage\""), std::string::npos) << closed.message();
}

TEST_F(StreamProcessorTest, GarbageFromProcessorThatExitsZero) {
  ASSERT_TRUE(
      processors_
          .add({"g", {"x/y"}, std::string(kMediaTypeLayer), "head", {"-c", "3000", "/dev/urandom"}, {}})
          .ok());
  auto stream = open(sample_tar(), "x/y");
  ASSERT_TRUE(stream.ok());
  auto closed = apply_and_close(**stream);
  ASSERT_FALSE(closed.ok());
  EXPECT_NE(closed.message().find("\"g\" (exit status 0)"), std::string::npos) << closed.message();
}

TEST_F(StreamProcessorTest, ReturnedTypeWithoutDecompressorIsRejected) {
  ASSERT_TRUE(processors_.add({"odd", {"x/y"}, "x/unknown", "cat", {}, {}}).ok());
  auto stream = open(sample_tar(), "x/y");
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.status().code(), errdefs::Code::kNotImplemented);
  EXPECT_NE(stream.status().message().find("\"odd\""), std::string::npos) << stream.status().message();
}

TEST_F(StreamProcessorTest, MissingBinaryNamesProcessor) {
  ASSERT_TRUE(
      processors_.add({"gone", {"x/y"}, std::string(kMediaTypeLayer), "/nonexistent/decoder", {}, {}}).ok());
  auto stream = open(sample_tar(), "x/y");
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.status().code(), errdefs::Code::kNotFound);
  EXPECT_NE(stream.status().message().find("\"gone\""), std::string::npos) << stream.status().message();
}

TEST_F(StreamProcessorTest, LoopingChainIsRefused) {
  ASSERT_TRUE(processors_.add({"loop", {"x/y"}, "x/y", "cat", {}, {}}).ok());
  auto stream = open(sample_tar(), "x/y");
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.status().code(), errdefs::Code::kInvalidArgument);
}

TEST_F(StreamProcessorTest, UnknownTypeWithoutProcessorIsNotImplemented) {
  auto stream = open(sample_tar(), "x/y");
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.status().code(), errdefs::Code::kNotImplemented);
}

TEST_F(StreamProcessorTest, KnownCompressionNeedsNoProcessor) {
  const std::string tar = sample_tar();
  auto stream = open(gzip(tar), kMediaTypeLayerGzip);
  ASSERT_TRUE(stream.ok());
  EXPECT_TRUE((*stream)->processor_ids().empty());
  auto got = read_all(**stream);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, tar);
  EXPECT_TRUE((*stream)->close(errdefs::Status::Ok()).ok());
}

TEST_F(StreamProcessorTest, AbandonedStreamKillsProcessorAndItsChildren) {
  const std::string pid_file = tmp_.sub("grandchild");
  // A grandchild in the processor's group, and output that never ends.
  const std::string path = script("spawner.sh", "sleep 1000 &\necho $! > " + pid_file + "\nexec yes");
  ASSERT_TRUE(processors_.add({"spawner", {"x/y"}, std::string(kMediaTypeLayer), path, {}, {}}).ok());
  auto stream = open(sample_tar(), "x/y");
  ASSERT_TRUE(stream.ok());
  char buf[16];
  ASSERT_TRUE((*stream)->read(buf, sizeof buf).ok());  // "y\n" arrives only after the pid file is written
  const pid_t grandchild = std::stoi(read_file(pid_file));
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, grandchild, 0));
  ASSERT_GE(pidfd, 0);
  stream->reset();
  pollfd p{pidfd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 10000), 1) << "the grandchild outlived the abandoned stream";
  ::close(pidfd);
}

TEST(StreamProcessors, RejectsIncompleteSpecs) {
  StreamProcessors processors;
  EXPECT_EQ(processors.add({"a", {"x/y"}, "x/z", "", {}, {}}).code(), errdefs::Code::kInvalidArgument);
  EXPECT_EQ(processors.add({"a", {}, "x/z", "cat", {}, {}}).code(), errdefs::Code::kInvalidArgument);
  auto missing_returns = processors.add({"a", {"x/y"}, "", "cat", {}, {}});
  EXPECT_NE(missing_returns.message().find("stream_processors.a.returns"), std::string::npos);
  EXPECT_FALSE(processors.find("x/y"));
}

TEST(StreamProcessors, FirstAddedWins) {
  StreamProcessors processors;
  ASSERT_TRUE(processors.add({"first", {"x/y", "x/w"}, "x/z", "cat", {}, {}}).ok());
  ASSERT_TRUE(processors.add({"second", {"x/y"}, "x/z", "cat", {}, {}}).ok());
  EXPECT_EQ(processors.find("x/y")->id, "first");
  EXPECT_EQ(processors.find("x/w")->id, "first");
  processors.clear();
  EXPECT_FALSE(processors.find("x/y"));
}

TEST(StreamProcessorConfig, DecodesContainerdShape) {
  auto table = config::parse(R"(
version = 2
[stream_processors."io.containerd.ocicrypt.decoder.v1.tar.gzip"]
  accepts = ["application/vnd.oci.image.layer.v1.tar+gzip+encrypted"]
  returns = "application/vnd.oci.image.layer.v1.tar+gzip"
  path = "ctd-decoder"
  args = ["--decryption-keys-path", "/keys"]
  env = ["K=V"]
  colour = "blue"
)",
                             "test.toml");
  ASSERT_TRUE(table.ok()) << table.status().to_string();
  auto cfg = config::decode(*table);
  ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
  ASSERT_EQ(cfg->server.stream_processors.size(), 1u);
  const auto& sp = cfg->server.stream_processors.at("io.containerd.ocicrypt.decoder.v1.tar.gzip");
  EXPECT_EQ(sp.accepts, std::vector<std::string>{"application/vnd.oci.image.layer.v1.tar+gzip+encrypted"});
  EXPECT_EQ(sp.returns, "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_EQ(sp.path, "ctd-decoder");
  EXPECT_EQ(sp.args, (std::vector<std::string>{"--decryption-keys-path", "/keys"}));
  EXPECT_EQ(sp.env, std::vector<std::string>{"K=V"});
  ASSERT_EQ(cfg->warnings.size(), 1u);
  EXPECT_NE(cfg->warnings[0].find("colour"), std::string::npos) << cfg->warnings[0];
}

TEST(StreamProcessorConfig, WrongTypeNamesKey) {
  auto table = config::parse("[stream_processors.x]\naccepts = \"not-a-list\"\n", "test.toml");
  ASSERT_TRUE(table.ok());
  auto cfg = config::decode(*table);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().code(), errdefs::Code::kInvalidArgument);
  EXPECT_NE(cfg.status().message().find("stream_processors.x.accepts"), std::string::npos)
      << cfg.status().message();
}

}  // namespace
}  // namespace ctrd::diff
