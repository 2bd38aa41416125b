// cri/log_writer: container logs in the CRI log format, as containerd 1.6's CRI
// plugin writes them for the kubelet (`kubectl logs` reads these files):
//   2016-10-06T00:17:09.669794202Z stdout F a whole line
//   2016-10-06T00:17:09.669794202Z stderr P the first max_container_log_line_size bytes of a long one
// A StreamLogWriter copies one of the container's output streams (the read end
// of its stdout or stderr fifo) into a ContainerLogFile that both streams
// share; ReopenContainerLog is ContainerLogFile::reopen().
//
// Threading: one LogLoop thread reads every stream of every container (epoll,
// one read of at most 64 KiB per ready stream per turn, so a chatty container
// cannot starve the others). A thread per stream cost two threads and about
// 0.3 MiB of memory per running container.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "errdefs/errdefs.h"
#include "os/unique_fd.h"

namespace ctrd::cri {

enum class LogStream { kStdout, kStderr };
// "stdout" / "stderr", as the log lines and the kubelet name them.
std::string_view log_stream_name(LogStream stream);

// When a line is written; injectable so tests get fixed timestamps.
using LogClock = std::function<std::chrono::system_clock::time_point()>;

// Go's time.RFC3339Nano in UTC: the fraction loses its trailing zeros and
// disappears with them, "2016-10-06T00:17:09.6697942Z", "2016-10-06T00:17:09Z".
std::string format_log_timestamp(std::chrono::system_clock::time_point time);

// The log file at a container's log path, shared by its stream writers. Each
// line is one write(2) to an O_APPEND descriptor under a mutex, so lines of
// different streams never mix and a reopen never splits one.
class ContainerLogFile {
 public:
  // Creates missing parent directories and the file (mode 0640, as containerd).
  static errdefs::StatusOr<std::shared_ptr<ContainerLogFile>> open(std::string path);

  ContainerLogFile(const ContainerLogFile&) = delete;
  ContainerLogFile& operator=(const ContainerLogFile&) = delete;

  const std::string& path() const { return path_; }

  // Appends `line` (which ends in '\n') whole.
  errdefs::Status append(std::string_view line);

  // Opens the path again and writes there from now on: after the kubelet
  // renames a full file away, new lines go to a fresh file. When the path
  // cannot be opened the old descriptor stays in use and the error returns.
  errdefs::Status reopen();

 private:
  ContainerLogFile(std::string path, os::UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  const std::string path_;
  std::mutex mutex_;
  os::UniqueFd fd_;  // guarded by mutex_
};

class StreamLogWriter;

// The thread that reads the streams, started with the first one. Streams are
// registered by StreamLogWriter::start and leave it when they end or stop.
class LogLoop {
 public:
  LogLoop() = default;
  // stop().
  ~LogLoop();
  LogLoop(const LogLoop&) = delete;
  LogLoop& operator=(const LogLoop&) = delete;

  // Joins the thread. Streams still registered are no longer read; their
  // stop() then drains them on the calling thread. Idempotent.
  void stop();

 private:
  friend class StreamLogWriter;
  errdefs::Status add(StreamLogWriter* writer);
  // Ends `writer` on the loop thread (on the caller's once the loop has
  // stopped) and returns when it has: the loop no longer refers to it.
  void finish(StreamLogWriter* writer);
  void run();
  // Answers finish() requests: each writer ends, then its caller may free it.
  void finish_requests(const std::vector<StreamLogWriter*>& requests, std::span<char> buffer);

  std::mutex mutex_;
  bool started_ = false;                     // guarded by mutex_
  bool running_ = false;                     // guarded by mutex_: finish() requests go to the thread
  bool stopping_ = false;                    // guarded by mutex_
  std::vector<StreamLogWriter*> to_finish_;  // guarded by mutex_
  os::UniqueFd epoll_;
  os::UniqueFd wake_;  // an eventfd: stop() and finish() requests
  std::thread thread_;
};

struct StreamLogOptions {
  // max_container_log_line_size: content longer than this is cut into
  // chunks tagged P, the last of a line F. Zero or negative: no limit.
  int64_t max_line_size = 16384;
  // Defaults to the system clock.
  LogClock clock;
};

// Copies one stream into a ContainerLogFile until the stream ends (every
// writer closed it) or stop(). A line without its newline when the stream ends
// is written tagged P, as containerd does; "\r\n" ends a line like "\n".
class StreamLogWriter {
 public:
  // `loop` reads the stream.
  static errdefs::StatusOr<std::unique_ptr<StreamLogWriter>> start(std::shared_ptr<LogLoop> loop,
                                                                   os::UniqueFd stream, LogStream name,
                                                                   std::shared_ptr<ContainerLogFile> file,
                                                                   StreamLogOptions options = {});
  // stop().
  ~StreamLogWriter();

  StreamLogWriter(const StreamLogWriter&) = delete;
  StreamLogWriter& operator=(const StreamLogWriter&) = delete;

  // Whether the stream ended and everything read is in the file, waiting up to
  // `timeout` for it.
  bool wait_for_end(std::chrono::milliseconds timeout);

  // Writes what the stream holds now and what is buffered (a last line
  // without newline as P), then ends. Idempotent.
  void stop();

  // The stream's raw bytes also go to `fd` (an attacher's pipe) from now on,
  // until remove_tee or the stream's end, when it is closed. Written without
  // blocking: what a full pipe cannot take is dropped for that attacher, so a
  // stalled attacher never holds up the log or the container. Returns an id
  // for remove_tee; with the stream already ended, `fd` is closed at once.
  int add_tee(os::UniqueFd fd);
  void remove_tee(int id);

 private:
  friend class LogLoop;
  StreamLogWriter(std::shared_ptr<LogLoop> loop, os::UniqueFd stream, LogStream name,
                  std::shared_ptr<ContainerLogFile> file, StreamLogOptions options);

  // Reads once through `buffer` and writes the lines it completes; false when
  // the stream ended or failed.
  bool read_some(std::span<char> buffer, size_t& bytes_read);
  // Reads what the stream holds now (bounded), without waiting for more.
  void drain(std::span<char> buffer);
  // Writes the unfinished line tagged P and marks the stream ended.
  void end();
  // Writes every complete line in pending_, and the leading chunks of an
  // unfinished line once they are known to be over the limit.
  void write_complete_lines();
  // Writes `content` cut at the limit: chunks tagged P, the last `last_tag`.
  void write_content(std::string_view content, char last_tag);
  void write_line(std::string_view content, char tag);
  bool limited() const { return options_.max_line_size > 0; }

  const std::shared_ptr<LogLoop> loop_;
  os::UniqueFd stream_;
  const LogStream name_;
  const std::shared_ptr<ContainerLogFile> file_;
  StreamLogOptions options_;

  // Used by the loop's thread only (by stop()'s caller once the loop stopped).
  std::string pending_;      // read, not written yet: at most one unfinished line
  size_t scanned_ = 0;       // pending_[0, scanned_) holds no '\n'
  std::string line_buffer_;  // reused for each formatted line
  bool write_failing_ = false;
  bool ended_unlocked_ = false;  // ended_, as the reading thread sees it without the lock

  std::mutex tee_mutex_;
  std::vector<std::pair<int, os::UniqueFd>> tees_;  // guarded by tee_mutex_
  int next_tee_ = 1;                                // guarded by tee_mutex_
  bool ended_unlocked_tee_ = false;                 // guarded by tee_mutex_

  std::mutex mutex_;
  std::condition_variable ended_cv_;
  bool ended_ = false;     // guarded by mutex_
  bool finished_ = false;  // guarded by mutex_: the loop has answered finish()
  std::once_flag stop_once_;
};

}  // namespace ctrd::cri
