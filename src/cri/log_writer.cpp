#include "cri/log_writer.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

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

// ---- StreamLogWriter ----

StreamLogWriter::StreamLogWriter(os::UniqueFd stream, os::UniqueFd wake, LogStream name,
                                 std::shared_ptr<ContainerLogFile> file, StreamLogOptions options)
    : stream_(std::move(stream)),
      wake_(std::move(wake)),
      name_(name),
      file_(std::move(file)),
      options_(std::move(options)) {
  if (!options_.clock) options_.clock = [] { return std::chrono::system_clock::now(); };
}

errdefs::StatusOr<std::unique_ptr<StreamLogWriter>> StreamLogWriter::start(
    os::UniqueFd stream, LogStream name, std::shared_ptr<ContainerLogFile> file, StreamLogOptions options) {
  if (!stream.valid()) return errdefs::InvalidArgument("log stream: no file descriptor");
  if (file == nullptr) return errdefs::InvalidArgument("log stream: no log file");
  os::UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return errdefs::FromErrno(errno, "eventfd for log stream");

  std::unique_ptr<StreamLogWriter> writer(
      new StreamLogWriter(std::move(stream), std::move(wake), name, std::move(file), std::move(options)));
  try {
    writer->thread_ = std::thread([w = writer.get()] { w->run(); });
  } catch (const std::system_error& e) {
    return errdefs::ResourceExhausted(std::string("start log stream thread: ") + e.what());
  }
  return writer;
}

StreamLogWriter::~StreamLogWriter() { stop(); }

bool StreamLogWriter::wait_for_end(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return ended_cv_.wait_for(lock, timeout, [this] { return ended_; });
}

void StreamLogWriter::stop() {
  std::call_once(stop_once_, [this] {
    const uint64_t one = 1;
    // The eventfd counter cannot overflow from a single increment, so this
    // write succeeds; the thread may also have ended on its own already.
    [[maybe_unused]] const ssize_t ignored = ::write(wake_.get(), &one, sizeof(one));
    if (thread_.joinable()) thread_.join();
  });
}

void StreamLogWriter::run() {
  line_buffer_.reserve(256);
  bool stopping = false;
  while (!stopping) {
    pollfd fds[2] = {{stream_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log::error("poll container log stream", {{"stream", std::string(log_stream_name(name_))},
                                               {"path", file_->path()},
                                               {"error", std::strerror(errno)}});
      break;
    }
    if (fds[1].revents != 0) {
      // Stop: take what the stream already holds, without waiting for more.
      size_t drained = 0;
      while (drained < kMaxDrainOnStop) {
        pollfd readable = {stream_.get(), POLLIN, 0};
        if (::poll(&readable, 1, 0) <= 0 || readable.revents == 0) break;
        size_t bytes_read = 0;
        if (!read_some(bytes_read) || bytes_read == 0) break;
        drained += bytes_read;
      }
      stopping = true;
    } else if (fds[0].revents != 0) {
      // POLLHUP/POLLERR too: read reports the end or the error.
      size_t bytes_read = 0;
      stopping = !read_some(bytes_read);
    }
  }
  // The stream ended with an unfinished line: containerd writes it tagged P.
  if (!pending_.empty()) write_content(pending_, kTagPartial);
  pending_.clear();
  {
    std::lock_guard lock(mutex_);
    ended_ = true;
  }
  ended_cv_.notify_all();
}

bool StreamLogWriter::read_some(size_t& bytes_read) {
  bytes_read = 0;
  const size_t old_size = pending_.size();
  pending_.resize(old_size + kReadChunk);
  ssize_t n;
  do {
    n = ::read(stream_.get(), pending_.data() + old_size, kReadChunk);
  } while (n < 0 && errno == EINTR);
  pending_.resize(old_size + static_cast<size_t>(n > 0 ? n : 0));
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
  write_complete_lines();
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
