#include "log/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>

namespace ctrd::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};

std::string_view level_name(Level level) {
  switch (level) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warning";
    case Level::kError:
      return "error";
    case Level::kFatal:
      return "fatal";
  }
  return "info";
}

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto l = std::make_shared<spdlog::logger>("ctrd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    // Time in UTC, RFC 3339 with nanoseconds, as containerd prints it.
    l->set_pattern("time=\"%Y-%m-%dT%H:%M:%S.%FZ\" %v", spdlog::pattern_time_type::utc);
    l->set_level(spdlog::level::trace);  // filtering is ours
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return *instance;
}

}  // namespace

errdefs::Status set_level(std::string_view level) {
  if (level == "trace")
    g_level = Level::kTrace;
  else if (level == "debug")
    g_level = Level::kDebug;
  else if (level == "info")
    g_level = Level::kInfo;
  else if (level == "warn" || level == "warning")
    g_level = Level::kWarn;
  else if (level == "error")
    g_level = Level::kError;
  else if (level == "fatal" || level == "panic")
    g_level = Level::kFatal;
  else
    return errdefs::InvalidArgument("unknown log level \"" + std::string(level) +
                                    "\" (want trace, debug, info, warn, error or fatal)");
  return errdefs::Status::Ok();
}

bool enabled(Level level) { return level >= g_level.load(std::memory_order_relaxed); }

std::string quote(std::string_view value) {
  bool bare = !value.empty();
  for (unsigned char c : value) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) {
      bare = false;
      break;
    }
  }
  if (bare) return std::string(value);
  std::string out = "\"";
  for (unsigned char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < ' ') {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string format(Level level, std::string_view msg, Fields fields) {
  std::string line = "level=";
  line += level_name(level);
  line += " msg=";
  std::string m = quote(msg);
  if (m.empty() || m.front() != '"') m = "\"" + m + "\"";  // containerd always quotes msg
  line += m;
  for (const auto& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    line += quote(f.value);
  }
  return line;
}

void write(Level level, std::string_view msg, Fields fields) {
  if (!enabled(level)) return;
  logger().info(format(level, msg, fields));
}

}  // namespace ctrd::log
