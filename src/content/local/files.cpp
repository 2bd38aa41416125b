#include "content/local/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace ctrd::content::local {

errdefs::StatusOr<UniqueFd> open_file(const std::string& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errdefs::FromErrno(errno, "open " + path);
  return UniqueFd(fd);
}

errdefs::StatusOr<std::string> read_small_file(const std::string& path) {
  CTRD_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDONLY));
  std::string contents;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errdefs::FromErrno(errno, "read " + path);
    }
    if (n == 0) break;
    contents.append(buf, static_cast<size_t>(n));
  }
  return contents;
}

errdefs::Status write_file_durably(const std::string& path, std::string_view contents) {
  const std::string tmp = path + ".tmp";
  auto write_synced = [&]() -> errdefs::Status {
    CTRD_ASSIGN_OR_RETURN(UniqueFd fd, open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    size_t written = 0;
    CTRD_RETURN_IF_ERROR(write_all_at(fd.get(), contents, 0, written).with_context("write " + tmp));
    if (::fdatasync(fd.get()) != 0) return errdefs::FromErrno(errno, "sync " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      return errdefs::FromErrno(errno, "rename " + tmp + " to " + path);
    }
    return errdefs::Status::Ok();
  };
  errdefs::Status written = write_synced();
  if (!written.ok()) ::unlink(tmp.c_str());
  return written;
}

errdefs::Status sync_directory(const std::string& dir) {
  CTRD_ASSIGN_OR_RETURN(UniqueFd fd, open_file(dir, O_RDONLY | O_DIRECTORY));
  if (::fsync(fd.get()) != 0) return errdefs::FromErrno(errno, "sync directory " + dir);
  return errdefs::Status::Ok();
}

errdefs::Status write_all_at(int fd, std::string_view data, int64_t offset, size_t& written) {
  written = 0;
  while (written < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + written, data.size() - written,
                         static_cast<off_t>(offset + static_cast<int64_t>(written)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errdefs::FromErrno(errno, "pwrite");
    }
    if (n == 0) return errdefs::FromErrno(EIO, "pwrite made no progress");
    written += static_cast<size_t>(n);
  }
  return errdefs::Status::Ok();
}

errdefs::StatusOr<size_t> read_full_at(int fd, char* buf, size_t n, int64_t offset) {
  size_t done = 0;
  while (done < n) {
    ssize_t got = ::pread(fd, buf + done, n - done, static_cast<off_t>(offset + static_cast<int64_t>(done)));
    if (got < 0) {
      if (errno == EINTR) continue;
      return errdefs::FromErrno(errno, "pread");
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

Clock::time_point to_time_point(const struct timespec& ts) {
  auto since_epoch = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(since_epoch));
}

std::string format_timestamp(Clock::time_point t) {
  auto since_epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
  auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  int64_t nanos = (since_epoch - seconds).count();
  time_t secs = static_cast<time_t>(seconds.count());
  struct tm utc {};
  gmtime_r(&secs, &utc);
  char buf[64];
  size_t len = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &utc);
  std::string out(buf, len);
  if (nanos > 0) {
    char frac[32];
    std::snprintf(frac, sizeof(frac), ".%09lld", static_cast<long long>(nanos));
    std::string_view fraction(frac);
    while (fraction.back() == '0') fraction.remove_suffix(1);
    out.append(fraction);
  }
  out.push_back('Z');
  return out;
}

namespace {

// Consumes exactly `digits` decimal digits from the front of `text`.
std::optional<int> take_number(std::string_view& text, size_t digits) {
  if (text.size() < digits) return std::nullopt;
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (ec != std::errc() || end != text.data() + digits) return std::nullopt;
  text.remove_prefix(digits);
  return value;
}

bool take_char(std::string_view& text, char c) {
  if (text.empty() || (text.front() != c && !(c == 'T' && text.front() == 't'))) return false;
  text.remove_prefix(1);
  return true;
}

}  // namespace

std::optional<Clock::time_point> parse_timestamp(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  struct tm parts {};
  auto year = take_number(text, 4);
  if (!year || !take_char(text, '-')) return std::nullopt;
  auto month = take_number(text, 2);
  if (!month || !take_char(text, '-')) return std::nullopt;
  auto day = take_number(text, 2);
  if (!day || !take_char(text, 'T')) return std::nullopt;
  auto hour = take_number(text, 2);
  if (!hour || !take_char(text, ':')) return std::nullopt;
  auto minute = take_number(text, 2);
  if (!minute || !take_char(text, ':')) return std::nullopt;
  auto second = take_number(text, 2);
  if (!second) return std::nullopt;
  if (*month < 1 || *month > 12 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }

  int64_t nanos = 0;
  if (!text.empty() && text.front() == '.') {
    text.remove_prefix(1);
    int64_t scale = 100'000'000;
    size_t digits = 0;
    while (!text.empty() && text.front() >= '0' && text.front() <= '9') {
      nanos += (text.front() - '0') * scale;
      scale /= 10;
      text.remove_prefix(1);
      ++digits;
    }
    if (digits == 0) return std::nullopt;
  }

  int64_t offset_seconds = 0;
  const bool utc = take_char(text, 'Z') || take_char(text, 'z');
  if (!utc) {
    if (text.empty() || (text.front() != '+' && text.front() != '-')) return std::nullopt;
    int sign = text.front() == '+' ? 1 : -1;
    text.remove_prefix(1);
    auto off_hours = take_number(text, 2);
    if (!off_hours || !take_char(text, ':')) return std::nullopt;
    auto off_minutes = take_number(text, 2);
    if (!off_minutes) return std::nullopt;
    offset_seconds = sign * (int64_t{*off_hours} * 3600 + int64_t{*off_minutes} * 60);
  }
  if (!text.empty()) return std::nullopt;

  parts.tm_year = *year - 1900;
  parts.tm_mon = *month - 1;
  parts.tm_mday = *day;
  parts.tm_hour = *hour;
  parts.tm_min = *minute;
  parts.tm_sec = *second;
  time_t secs = timegm(&parts);
  auto since_epoch = std::chrono::seconds(secs - offset_seconds) + std::chrono::nanoseconds(nanos);
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(since_epoch));
}

}  // namespace ctrd::content::local
