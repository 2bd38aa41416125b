// cri/log_writer through real pipes: the CRI log format the kubelet parses
// (tags, the line size limit, timestamps), streams sharing one file, and
// ReopenContainerLog after the kubelet rotates the file.
#include "cri/log_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.h"

namespace ctrd::cri {
namespace {

using namespace std::chrono_literals;
using ctrd::testing::TempDir;

constexpr auto kWait = 20s;

struct Pipe {
  os::UniqueFd read_end;
  os::UniqueFd write_end;
};

Pipe make_pipe() {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  return {os::UniqueFd(fds[0]), os::UniqueFd(fds[1])};
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    ASSERT_GT(n, 0) << std::strerror(errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

std::chrono::system_clock::time_point at(int64_t unix_seconds, int64_t nanos) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::seconds(unix_seconds) +
                                                                      std::chrono::nanoseconds(nanos)));
}

// 2016-10-06T00:17:09.669794202Z, the example of the CRI log format.
constexpr int64_t kExampleSeconds = 1475713029;
constexpr int64_t kExampleNanos = 669794202;
constexpr std::string_view kExampleTime = "2016-10-06T00:17:09.669794202Z";

StreamLogOptions fixed_clock(int64_t max_line_size = 16384) {
  return {max_line_size, [] { return at(kExampleSeconds, kExampleNanos); }};
}

std::string expected_line(std::string_view stream, char tag, std::string_view content) {
  return std::string(kExampleTime) + " " + std::string(stream) + " " + tag + " " + std::string(content) +
         "\n";
}

// One container log with a writer per stream, fed through pipes.
class LogWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto file = ContainerLogFile::open(dir_.sub("pod/container/0.log"));
    ASSERT_TRUE(file.ok()) << file.status().to_string();
    file_ = *file;
  }

  // Starts a writer for `stream`; returns the pipe's write end.
  os::UniqueFd start(LogStream stream, StreamLogOptions options) {
    Pipe pipe = make_pipe();
    auto writer = StreamLogWriter::start(loop_, std::move(pipe.read_end), stream, file_, std::move(options));
    EXPECT_TRUE(writer.ok()) << writer.status().to_string();
    if (writer.ok()) writers_.push_back(std::move(*writer));
    return std::move(pipe.write_end);
  }

  // Writes `data` to a new stdout writer, closes the pipe and waits for the end.
  std::string log_of(std::string_view data, StreamLogOptions options) {
    os::UniqueFd input = start(LogStream::kStdout, std::move(options));
    write_all(input.get(), data);
    input.reset();
    EXPECT_TRUE(writers_.back()->wait_for_end(kWait));
    return read_file(file_->path());
  }

  TempDir dir_;
  std::shared_ptr<ContainerLogFile> file_;
  std::shared_ptr<LogLoop> loop_ = std::make_shared<LogLoop>();
  std::vector<std::unique_ptr<StreamLogWriter>> writers_;
};

TEST(LogTimestamp, IsGoRfc3339NanoInUtcWithTrailingZerosTrimmed) {
  EXPECT_EQ(format_log_timestamp(at(kExampleSeconds, kExampleNanos)), kExampleTime);
  EXPECT_EQ(format_log_timestamp(at(kExampleSeconds, 669794200)), "2016-10-06T00:17:09.6697942Z");
  EXPECT_EQ(format_log_timestamp(at(kExampleSeconds, 500000000)), "2016-10-06T00:17:09.5Z");
  EXPECT_EQ(format_log_timestamp(at(kExampleSeconds, 1)), "2016-10-06T00:17:09.000000001Z");
  EXPECT_EQ(format_log_timestamp(at(kExampleSeconds, 0)), "2016-10-06T00:17:09Z");
  EXPECT_EQ(format_log_timestamp(at(0, 0)), "1970-01-01T00:00:00Z");
}

TEST_F(LogWriterTest, WritesFullLinesTaggedF) {
  EXPECT_EQ(log_of("hello\nworld\n", fixed_clock()),
            expected_line("stdout", 'F', "hello") + expected_line("stdout", 'F', "world"));
}

TEST_F(LogWriterTest, UsesTheInjectedClockForEachLine) {
  auto next = std::make_shared<int64_t>(0);
  StreamLogOptions options{16384, [next] { return at(kExampleSeconds, (*next)++ * 100); }};
  EXPECT_EQ(log_of("a\nb\n", options),
            "2016-10-06T00:17:09Z stdout F a\n2016-10-06T00:17:09.0000001Z stdout F b\n");
}

TEST_F(LogWriterTest, StderrLinesAreNamedStderr) {
  os::UniqueFd input = start(LogStream::kStderr, fixed_clock());
  write_all(input.get(), "oops\n");
  input.reset();
  ASSERT_TRUE(writers_.back()->wait_for_end(kWait));
  EXPECT_EQ(read_file(file_->path()), expected_line("stderr", 'F', "oops"));
}

TEST_F(LogWriterTest, EmptyLinesAndCrlfEndings) {
  EXPECT_EQ(log_of("\n\r\nwin\r\nbare\rcr\n", fixed_clock()),
            expected_line("stdout", 'F', "") + expected_line("stdout", 'F', "") +
                expected_line("stdout", 'F', "win") + expected_line("stdout", 'F', "bare\rcr"));
}

TEST_F(LogWriterTest, SplitsALongLineIntoPartialChunksEndingInFull) {
  const std::string line = std::string(16, 'a') + std::string(16, 'b') + "cccc";
  EXPECT_EQ(log_of(line + "\n", fixed_clock(16)), expected_line("stdout", 'P', std::string(16, 'a')) +
                                                      expected_line("stdout", 'P', std::string(16, 'b')) +
                                                      expected_line("stdout", 'F', "cccc"));
}

TEST_F(LogWriterTest, ALineOfExactlyTheLimitIsOneFullLine) {
  const std::string exact(16, 'x');
  const std::string twice(32, 'y');
  EXPECT_EQ(log_of(exact + "\n" + twice + "\n", fixed_clock(16)),
            expected_line("stdout", 'F', exact) + expected_line("stdout", 'P', std::string(16, 'y')) +
                expected_line("stdout", 'F', std::string(16, 'y')));
}

TEST_F(LogWriterTest, SplitsALineThatArrivesInPiecesAtTheSameBytes) {
  os::UniqueFd input = start(LogStream::kStdout, fixed_clock(16));
  // Each piece is read before the next is written, so the writer sees the
  // unfinished line grow: at 17 bytes the first chunk is known to be partial.
  const std::string first(17, 'a');
  write_all(input.get(), first);
  ASSERT_TRUE(ctrd::testing::poll_until([&] { return !read_file(file_->path()).empty(); }, kWait, 5ms));
  // A line of exactly the limit whose "\r\n" comes in two reads stays one F.
  write_all(input.get(), "bb\n" + std::string(16, 'c') + "\r");
  ASSERT_TRUE(ctrd::testing::poll_until(
      [&] { return read_file(file_->path()).find(" abb\n") != std::string::npos; }, kWait, 5ms));
  write_all(input.get(), "\n");
  input.reset();
  ASSERT_TRUE(writers_.back()->wait_for_end(kWait));
  EXPECT_EQ(read_file(file_->path()), expected_line("stdout", 'P', std::string(16, 'a')) +
                                          expected_line("stdout", 'F', "abb") +
                                          expected_line("stdout", 'F', std::string(16, 'c')));
}

TEST_F(LogWriterTest, NoLimitWhenMaxLineSizeIsNotPositive) {
  const std::string long_line(100000, 'z');
  EXPECT_EQ(log_of(long_line + "\n", fixed_clock(-1)), expected_line("stdout", 'F', long_line));
}

TEST_F(LogWriterTest, ZeroMaxLineSizeAlsoMeansNoLimit) {
  const std::string long_line(20000, 'z');
  EXPECT_EQ(log_of(long_line + "\n", fixed_clock(0)), expected_line("stdout", 'F', long_line));
}

TEST_F(LogWriterTest, ALastLineWithoutNewlineIsPartial) {
  EXPECT_EQ(log_of("done\nno newline\r", fixed_clock()),
            expected_line("stdout", 'F', "done") + expected_line("stdout", 'P', "no newline\r"));
}

TEST_F(LogWriterTest, ALongLastLineWithoutNewlineIsAllPartial) {
  EXPECT_EQ(log_of(std::string(20, 'q'), fixed_clock(16)),
            expected_line("stdout", 'P', std::string(16, 'q')) + expected_line("stdout", 'P', "qqqq"));
}

TEST_F(LogWriterTest, NothingIsWrittenForAnEmptyStream) { EXPECT_EQ(log_of("", fixed_clock()), ""); }

TEST_F(LogWriterTest, StopWritesWhatTheStreamAlreadyHolds) {
  os::UniqueFd input = start(LogStream::kStdout, fixed_clock());
  write_all(input.get(), "abc\ndef");
  // The write end stays open: stop() must not wait for the stream to end.
  writers_.back()->stop();
  EXPECT_TRUE(writers_.back()->wait_for_end(0ms));
  EXPECT_EQ(read_file(file_->path()),
            expected_line("stdout", 'F', "abc") + expected_line("stdout", 'P', "def"));
  writers_.back()->stop();  // idempotent
}

TEST_F(LogWriterTest, StdoutAndStderrNeverMixWithinALine) {
  constexpr int kLines = 3000;
  os::UniqueFd out = start(LogStream::kStdout, fixed_clock(64));
  os::UniqueFd err = start(LogStream::kStderr, fixed_clock(64));
  auto produce = [](int fd, char fill) {
    for (int i = 0; i < kLines; ++i) {
      // Lengths vary across the 64-byte limit so that P chunks interleave too.
      write_all(fd, std::to_string(i) + ":" + std::string(static_cast<size_t>(i % 150), fill) + "\n");
    }
  };
  std::thread out_producer(produce, out.get(), 'o');
  std::thread err_producer(produce, err.get(), 'e');
  out_producer.join();
  err_producer.join();
  out.reset();
  err.reset();
  for (auto& writer : writers_) ASSERT_TRUE(writer->wait_for_end(kWait));

  // Reassemble each stream from its chunks: it must be exactly what was sent.
  std::map<std::string, std::string> received;
  std::istringstream log(read_file(file_->path()));
  std::string line;
  const std::string prefix(kExampleTime);
  while (std::getline(log, line)) {
    ASSERT_EQ(line.compare(0, prefix.size() + 1, prefix + " "), 0) << line;
    const std::string stream = line.substr(prefix.size() + 1, 6);
    ASSERT_TRUE(stream == "stdout" || stream == "stderr") << line;
    const char tag = line[prefix.size() + 8];
    ASSERT_TRUE(tag == 'P' || tag == 'F') << line;
    ASSERT_EQ(line[prefix.size() + 9], ' ') << line;
    const std::string content = line.substr(prefix.size() + 10);
    ASSERT_LE(content.size(), 64u) << line;
    const char foreign = stream == "stdout" ? 'e' : 'o';
    ASSERT_EQ(content.find(foreign), std::string::npos) << "mixed line: " << line;
    received[stream] += content;
    if (tag == 'F') received[stream] += '\n';
  }
  for (const auto& [stream, fill] : {std::pair<std::string, char>{"stdout", 'o'}, {"stderr", 'e'}}) {
    std::string sent;
    for (int i = 0; i < kLines; ++i) {
      sent += std::to_string(i) + ":" + std::string(static_cast<size_t>(i % 150), fill) + "\n";
    }
    EXPECT_EQ(received[stream], sent) << stream;
  }
}

TEST_F(LogWriterTest, ReopenAfterRenameSendsNewLinesToANewFile) {
  os::UniqueFd input = start(LogStream::kStdout, fixed_clock());
  write_all(input.get(), "before\n");
  const std::string path = file_->path();
  ASSERT_TRUE(ctrd::testing::poll_until([&] { return !read_file(path).empty(); }, kWait, 5ms));

  // The kubelet's rotation: rename the file away, then ReopenContainerLog.
  const std::string rotated = path + ".20161006-001709";
  std::filesystem::rename(path, rotated);
  ASSERT_TRUE(file_->reopen().ok());
  write_all(input.get(), "after\n");
  input.reset();
  ASSERT_TRUE(writers_.back()->wait_for_end(kWait));

  EXPECT_EQ(read_file(rotated), expected_line("stdout", 'F', "before"));
  EXPECT_EQ(read_file(path), expected_line("stdout", 'F', "after"));
  EXPECT_EQ(std::filesystem::status(path).permissions(), std::filesystem::perms::owner_read |
                                                             std::filesystem::perms::owner_write |
                                                             std::filesystem::perms::group_read);
}

TEST_F(LogWriterTest, ReopenFailureKeepsWritingToTheOldFile) {
  os::UniqueFd input = start(LogStream::kStdout, fixed_clock());
  const std::string path = file_->path();
  const std::string parent = std::filesystem::path(path).parent_path();
  // The log's directory replaced by a file: the path cannot be opened.
  std::filesystem::rename(parent, parent + ".old");
  { std::ofstream(parent) << "not a directory"; }
  EXPECT_FALSE(file_->reopen().ok());
  write_all(input.get(), "still logged\n");
  input.reset();
  ASSERT_TRUE(writers_.back()->wait_for_end(kWait));
  EXPECT_EQ(read_file(parent + ".old/0.log"), expected_line("stdout", 'F', "still logged"));
}

TEST_F(LogWriterTest, TenMegabytesArriveWithoutLoss) {
  os::UniqueFd input = start(LogStream::kStdout, {16384, {}});
  std::string sent;
  for (size_t i = 0; sent.size() < 10 * 1024 * 1024; ++i) {
    // Short lines, lines just around the limit and lines several times it.
    const size_t length = (i * 7919) % 50000;
    sent += std::string(length, static_cast<char>('a' + i % 26));
    sent += '\n';
  }
  std::thread producer([&] {
    write_all(input.get(), sent);
    input.reset();
  });
  producer.join();
  ASSERT_TRUE(writers_.back()->wait_for_end(60s));

  std::string received;
  std::istringstream log(read_file(file_->path()));
  std::string line;
  size_t lines = 0;
  while (std::getline(log, line)) {
    ++lines;
    // <timestamp> stdout <tag> <content>
    const size_t stream_at = line.find(' ');
    ASSERT_NE(stream_at, std::string::npos);
    ASSERT_EQ(
        line.compare(stream_at, 10, " stdout F ") == 0 || line.compare(stream_at, 10, " stdout P ") == 0,
        true)
        << line.substr(0, 64);
    const std::string_view content = std::string_view(line).substr(stream_at + 10);
    ASSERT_LE(content.size(), 16384u);
    received += content;
    if (line[stream_at + 8] == 'F') received += '\n';
  }
  EXPECT_GT(lines, 0u);
  EXPECT_EQ(received.size(), sent.size());
  EXPECT_TRUE(received == sent);
}

size_t thread_count() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

TEST_F(LogWriterTest, EveryStreamIsReadByTheLoopsOneThread) {
  const size_t before = thread_count();
  std::vector<os::UniqueFd> inputs;
  for (int i = 0; i < 20; ++i) inputs.push_back(start(LogStream::kStdout, fixed_clock()));
  EXPECT_LE(thread_count(), before + 1);
  for (size_t i = 0; i < inputs.size(); ++i) write_all(inputs[i].get(), "line " + std::to_string(i) + "\n");
  inputs.clear();
  for (auto& writer : writers_) EXPECT_TRUE(writer->wait_for_end(kWait));
  const std::string log = read_file(file_->path());
  for (int i = 0; i < 20; ++i)
    EXPECT_NE(log.find(expected_line("stdout", 'F', "line " + std::to_string(i))), std::string::npos) << i;
}

TEST_F(LogWriterTest, AfterTheLoopStoppedStopStillWritesWhatTheStreamHolds) {
  os::UniqueFd input = start(LogStream::kStdout, fixed_clock());
  loop_->stop();
  write_all(input.get(), "held\nunfinished");
  writers_.back()->stop();
  EXPECT_EQ(read_file(file_->path()),
            expected_line("stdout", 'F', "held") + expected_line("stdout", 'P', "unfinished"));
  // A stream added to a stopped loop is refused.
  Pipe pipe = make_pipe();
  EXPECT_EQ(
      StreamLogWriter::start(loop_, std::move(pipe.read_end), LogStream::kStdout, file_).status().code(),
      errdefs::Code::kUnavailable);
}

TEST(StreamLogWriter, StartRejectsAMissingStreamOrFile) {
  TempDir dir;
  auto file = ContainerLogFile::open(dir.sub("0.log"));
  ASSERT_TRUE(file.ok());
  auto loop = std::make_shared<LogLoop>();
  EXPECT_EQ(StreamLogWriter::start(loop, os::UniqueFd(), LogStream::kStdout, *file).status().code(),
            errdefs::Code::kInvalidArgument);
  Pipe pipe = make_pipe();
  EXPECT_EQ(
      StreamLogWriter::start(loop, std::move(pipe.read_end), LogStream::kStdout, nullptr).status().code(),
      errdefs::Code::kInvalidArgument);
}

}  // namespace
}  // namespace ctrd::cri
