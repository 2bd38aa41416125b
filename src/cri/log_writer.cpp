#include "cri/log_writer.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>
#include <vector>

#include "log/log.h"

namespace ctrd::cri {
namespace {

constexpr char kTagFull = 'F';
constexpr char kTagPartial = 'P';
constexpr size_t kReadChunk = 64 * 1024;
// stop() empties the stream of what is already in it, but a writer that never
// pauses must not hold stop() forever.
constexpr size_t kMaxDrainOnStop = 4 * 1024 * 1024;

}  // namespace

std::string_view log_stream_name(LogStream stream) {
  return stream == LogStream::kStderr ? "stderr" : "stdout";
}

std::string format_log_timestamp(std::chrono::system_clock::time_point time) {
  using namespace std::chrono;
  const auto since_epoch = time.time_since_epoch();
  // floor, so that times before the epoch keep a fraction in [0, 1s).
  const auto seconds = floor<std::chrono::seconds>(since_epoch);
  const auto nanos = duration_cast<nanoseconds>(since_epoch - seconds).count();
  const std::time_t whole = static_cast<std::time_t>(seconds.count());
  std::tm utc{};
  gmtime_r(&whole, &utc);

  char text[64];
  int length = std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d", utc.tm_year + 1900,
                             utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
  std::string result(text, static_cast<size_t>(length));
  if (nanos != 0) {
    length = std::snprintf(text, sizeof(text), ".%09lld", static_cast<long long>(nanos));
    std::string_view fraction(text, static_cast<size_t>(length));
    // RFC3339Nano's ".999999999" drops trailing zeros; nanos != 0 keeps a digit.
    while (fraction.back() == '0') fraction.remove_suffix(1);
    result += fraction;
  }
  result += 'Z';
  return result;
}

// ---- ContainerLogFile ----

namespace {

errdefs::StatusOr<os::UniqueFd> open_log_path(const std::string& path) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return errdefs::FromErrno(ec.value(), "create log directory " + parent.string());
  os::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd.valid()) return errdefs::FromErrno(errno, "open container log " + path);
  return fd;
}

}  // namespace

errdefs::StatusOr<std::shared_ptr<ContainerLogFile>> ContainerLogFile::open(std::string path) {
  CTRD_ASSIGN_OR_RETURN(os::UniqueFd fd, open_log_path(path));
  return std::shared_ptr<ContainerLogFile>(new ContainerLogFile(std::move(path), std::move(fd)));
}

errdefs::Status ContainerLogFile::append(std::string_view line) {
  std::lock_guard lock(mutex_);
  while (!line.empty()) {
    // A regular file takes the whole line in one write; the loop only covers
    // a short write (e.g. a full disk) so that the rest is not silently lost.
    const ssize_t written = ::write(fd_.get(), line.data(), line.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return errdefs::FromErrno(errno, "write container log " + path_);
    }
    line.remove_prefix(static_cast<size_t>(written));
  }
  return errdefs::Status::Ok();
}

errdefs::Status ContainerLogFile::reopen() {
  // Opened before taking the lock: a slow open does not stall the writers.
  CTRD_ASSIGN_OR_RETURN(os::UniqueFd fd, open_log_path(path_));
  std::lock_guard lock(mutex_);
  fd_ = std::move(fd);
  return errdefs::Status::Ok();
}

// ---- LogLoop ----

LogLoop::~LogLoop() { stop(); }

errdefs::Status LogLoop::add(StreamLogWriter* writer) {
  std::lock_guard lock(mutex_);
  if (stopping_) return errdefs::Unavailable("log streams: the loop has stopped");
  if (!started_) {
    epoll_ = os::UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_.valid()) return errdefs::FromErrno(errno, "epoll for log streams");
    wake_ = os::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_.valid()) return errdefs::FromErrno(errno, "eventfd for log streams");
    epoll_event wake{.events = EPOLLIN, .data = {.ptr = nullptr}};
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &wake) != 0)
      return errdefs::FromErrno(errno, "epoll_ctl for log streams");
    try {
      thread_ = std::thread([this] { run(); });
    } catch (const std::system_error& e) {
      return errdefs::ResourceExhausted(std::string("start the log stream thread: ") + e.what());
    }
    started_ = running_ = true;
  }
  epoll_event ev{.events = EPOLLIN, .data = {.ptr = writer}};
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, writer->stream_.get(), &ev) != 0)
    return errdefs::FromErrno(errno, "epoll_ctl ADD log stream");
  return errdefs::Status::Ok();
}

void LogLoop::finish(StreamLogWriter* writer) {
  bool queued = false;
  {
    std::lock_guard lock(mutex_);
    if (running_) {
      to_finish_.push_back(writer);
      const uint64_t one = 1;
      [[maybe_unused]] const ssize_t ignored = ::write(wake_.get(), &one, sizeof(one));
      queued = true;
    }
  }
  if (queued) {
    std::unique_lock lock(writer->mutex_);
    writer->ended_cv_.wait(lock, [writer] { return writer->finished_; });
    return;
  }
  // No thread reads any more: the stream is this caller's alone.
  std::vector<char> buffer(kReadChunk);
  if (!writer->ended_unlocked_) {
    writer->drain(buffer);
    writer->end();
  }
}

void LogLoop::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    if (!started_) return;
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t ignored = ::write(wake_.get(), &one, sizeof(one));
  }
  if (thread_.joinable()) thread_.join();
}

void LogLoop::run() {
  std::vector<char> buffer(kReadChunk);
  epoll_event events[64];
  while (true) {
    const int n = ::epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0 && errno != EINTR) {
      log::error("epoll_wait on container log streams", {{"error", std::strerror(errno)}});
      break;
    }
    // Streams first: a writer whose finish() is queued stays alive until the
    // request is answered below, so no event here names a freed writer.
    for (int i = 0; i < n; ++i) {
      auto* writer = static_cast<StreamLogWriter*>(events[i].data.ptr);
      if (writer == nullptr) {
        uint64_t count;
        [[maybe_unused]] const ssize_t ignored = ::read(wake_.get(), &count, sizeof(count));
        continue;
      }
      if (writer->ended_unlocked_) continue;
      size_t bytes_read = 0;
      if (!writer->read_some(buffer, bytes_read)) {
        (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, writer->stream_.get(), nullptr);
        writer->end();
      }
    }
    std::vector<StreamLogWriter*> requests;
    bool stopping;
    {
      std::lock_guard lock(mutex_);
      requests.swap(to_finish_);
      stopping = stopping_;
      // From here on finish() does the work on its caller's thread.
      if (stopping) running_ = false;
    }
    finish_requests(requests, buffer);
    if (stopping) return;
  }
  std::vector<StreamLogWriter*> requests;
  {
    std::lock_guard lock(mutex_);
    requests.swap(to_finish_);
    running_ = false;
  }
  finish_requests(requests, buffer);
}

void LogLoop::finish_requests(const std::vector<StreamLogWriter*>& requests, std::span<char> buffer) {
  for (StreamLogWriter* writer : requests) {
    if (!writer->ended_unlocked_) {
      (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, writer->stream_.get(), nullptr);
      writer->drain(buffer);
      writer->end();
    }
    {
      std::lock_guard lock(writer->mutex_);
      writer->finished_ = true;
    }
    writer->ended_cv_.notify_all();
  }
}

// ---- StreamLogWriter ----

StreamLogWriter::StreamLogWriter(std::shared_ptr<LogLoop> loop, os::UniqueFd stream, LogStream name,
                                 std::shared_ptr<ContainerLogFile> file, StreamLogOptions options)
    : loop_(std::move(loop)),
      stream_(std::move(stream)),
      name_(name),
      file_(std::move(file)),
      options_(std::move(options)) {
  if (!options_.clock) options_.clock = [] { return std::chrono::system_clock::now(); };
  line_buffer_.reserve(256);
}

errdefs::StatusOr<std::unique_ptr<StreamLogWriter>> StreamLogWriter::start(
    std::shared_ptr<LogLoop> loop, os::UniqueFd stream, LogStream name,
    std::shared_ptr<ContainerLogFile> file, StreamLogOptions options) {
  if (loop == nullptr) return errdefs::InvalidArgument("log stream: no loop");
  if (!stream.valid()) return errdefs::InvalidArgument("log stream: no file descriptor");
  if (file == nullptr) return errdefs::InvalidArgument("log stream: no log file");
  const int flags = ::fcntl(stream.get(), F_GETFL);
  if (flags < 0 || ::fcntl(stream.get(), F_SETFL, flags | O_NONBLOCK) != 0)
    return errdefs::FromErrno(errno, "log stream: set O_NONBLOCK");
  std::unique_ptr<StreamLogWriter> writer(
      new StreamLogWriter(loop, std::move(stream), name, std::move(file), std::move(options)));
  if (auto added = loop->add(writer.get()); !added.ok()) {
    // Never read: nothing to drain, and the loop does not know it.
    std::call_once(writer->stop_once_, [] {});
    return added;
  }
  return writer;
}

StreamLogWriter::~StreamLogWriter() { stop(); }

bool StreamLogWriter::wait_for_end(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return ended_cv_.wait_for(lock, timeout, [this] { return ended_; });
}

void StreamLogWriter::stop() {
  std::call_once(stop_once_, [this] { loop_->finish(this); });
}

void StreamLogWriter::drain(std::span<char> buffer) {
  size_t drained = 0;
  while (drained < kMaxDrainOnStop) {
    size_t bytes_read = 0;
    if (!read_some(buffer, bytes_read) || bytes_read == 0) break;
    drained += bytes_read;
  }
}

int StreamLogWriter::add_tee(os::UniqueFd fd) {
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
  std::lock_guard lock(tee_mutex_);
  if (ended_unlocked_tee_) return 0;  // fd closes here: the attacher sees the end
  const int id = next_tee_++;
  tees_.emplace_back(id, std::move(fd));
  return id;
}

void StreamLogWriter::remove_tee(int id) {
  std::lock_guard lock(tee_mutex_);
  std::erase_if(tees_, [id](const auto& tee) { return tee.first == id; });
}

void StreamLogWriter::end() {
  // The stream ended with an unfinished line: containerd writes it tagged P.
  if (!pending_.empty()) write_content(pending_, kTagPartial);
  std::string().swap(pending_);
  {
    std::lock_guard lock(tee_mutex_);
    tees_.clear();
    ended_unlocked_tee_ = true;
  }
  ended_unlocked_ = true;
  {
    std::lock_guard lock(mutex_);
    ended_ = true;
  }
  ended_cv_.notify_all();
}

bool StreamLogWriter::read_some(std::span<char> buffer, size_t& bytes_read) {
  bytes_read = 0;
  ssize_t n;
  do {
    n = ::read(stream_.get(), buffer.data(), buffer.size());
  } while (n < 0 && errno == EINTR);
  if (n == 0) return false;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    // As containerd: a read error ends the stream like EOF.
    log::error("read container log stream", {{"stream", std::string(log_stream_name(name_))},
                                             {"path", file_->path()},
                                             {"error", std::strerror(errno)}});
    return false;
  }
  bytes_read = static_cast<size_t>(n);
  {
    std::lock_guard lock(tee_mutex_);
    for (auto& [id, fd] : tees_) {
      // A full pipe drops the chunk for this attacher; a closed one stays
      // until its attacher removes it.
      [[maybe_unused]] const ssize_t ignored = ::write(fd.get(), buffer.data(), bytes_read);
    }
  }
  pending_.append(buffer.data(), bytes_read);
  write_complete_lines();
  // Only an unfinished line stays: an idle stream keeps no read-sized buffer.
  if (pending_.capacity() > 4096 && pending_.size() <= 4096) pending_.shrink_to_fit();
  return true;
}

void StreamLogWriter::write_complete_lines() {
  std::string_view data = pending_;
  size_t line_start = 0;
  size_t search_from = scanned_;
  while (true) {
    const size_t newline = data.find('\n', search_from);
    if (newline == std::string_view::npos) break;
    std::string_view content = data.substr(line_start, newline - line_start);
    if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
    write_content(content, kTagFull);
    line_start = search_from = newline + 1;
  }
  if (limited()) {
    const auto max = static_cast<size_t>(options_.max_line_size);
    // The unfinished line's content is everything but a trailing '\r', which
    // may yet be the start of "\r\n". A chunk goes out only once the content
    // is known to be longer than the limit, so a line of exactly the limit is
    // a single F, never P followed by an empty F.
    while (true) {
      const std::string_view rest = data.substr(line_start);
      const size_t known_content = !rest.empty() && rest.back() == '\r' ? rest.size() - 1 : rest.size();
      if (known_content <= max) break;
      write_line(rest.substr(0, max), kTagPartial);
      line_start += max;
    }
  }
  pending_.erase(0, line_start);
  scanned_ = pending_.size();
}

void StreamLogWriter::write_content(std::string_view content, char last_tag) {
  if (limited()) {
    const auto max = static_cast<size_t>(options_.max_line_size);
    while (content.size() > max) {
      write_line(content.substr(0, max), kTagPartial);
      content.remove_prefix(max);
    }
  }
  write_line(content, last_tag);
}

void StreamLogWriter::write_line(std::string_view content, char tag) {
  line_buffer_ = format_log_timestamp(options_.clock());
  line_buffer_ += ' ';
  line_buffer_ += log_stream_name(name_);
  line_buffer_ += ' ';
  line_buffer_ += tag;
  line_buffer_ += ' ';
  line_buffer_ += content;
  line_buffer_ += '\n';
  const errdefs::Status status = file_->append(line_buffer_);
  // Like containerd, keep reading on a write error so the container never
  // blocks on a full pipe; report the failure once, not once per line.
  if (!status.ok() && !write_failing_) {
    log::error("write container log", {{"stream", std::string(log_stream_name(name_))},
                                       {"path", file_->path()},
                                       {"error", status.to_string()}});
  }
  write_failing_ = !status.ok();
}

}  // namespace ctrd::cri
