// cri/log_writer: container logs in the CRI log format, as containerd 1.6's CRI
// plugin writes them for the kubelet (`kubectl logs` reads these files):
//   2016-10-06T00:17:09.669794202Z stdout F a whole line
//   2016-10-06T00:17:09.669794202Z stderr P the first max_container_log_line_size bytes of a long one
// A StreamLogWriter copies one of the container's output streams (the read end
// of its stdout or stderr fifo) into a ContainerLogFile that both streams
// share; ReopenContainerLog is ContainerLogFile::reopen().
//
// Threading: one thread per stream. A container has at most two, they block in
// poll(2) while idle, and a thread keeps each stream's back-pressure separate
// from every other container's without an epoll loop's shared scheduling.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

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
  static errdefs::StatusOr<std::unique_ptr<StreamLogWriter>> start(os::UniqueFd stream, LogStream name,
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
  // without newline as P), then ends and joins the thread. Idempotent.
  void stop();

 private:
  StreamLogWriter(os::UniqueFd stream, os::UniqueFd wake, LogStream name,
                  std::shared_ptr<ContainerLogFile> file, StreamLogOptions options);

  void run();
  // Reads once into pending_ and writes the lines it completes; false when
  // the stream ended or failed.
  bool read_some(size_t& bytes_read);
  // Writes every complete line in pending_, and the leading chunks of an
  // unfinished line once they are known to be over the limit.
  void write_complete_lines();
  // Writes `content` cut at the limit: chunks tagged P, the last `last_tag`.
  void write_content(std::string_view content, char last_tag);
  void write_line(std::string_view content, char tag);
  bool limited() const { return options_.max_line_size > 0; }

  os::UniqueFd stream_;
  os::UniqueFd wake_;  // an eventfd that stop() signals
  const LogStream name_;
  const std::shared_ptr<ContainerLogFile> file_;
  StreamLogOptions options_;

  // Owned by the thread.
  std::string pending_;      // read, not written yet: at most one unfinished line
  size_t scanned_ = 0;       // pending_[0, scanned_) holds no '\n'
  std::string line_buffer_;  // reused for each formatted line
  bool write_failing_ = false;

  std::mutex mutex_;
  std::condition_variable ended_cv_;
  bool ended_ = false;  // guarded by mutex_
  std::once_flag stop_once_;
  std::thread thread_;
};

}  // namespace ctrd::cri
