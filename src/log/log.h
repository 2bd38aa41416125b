// log: ctrd's logs, in logfmt like containerd's
//   time="2026-01-02T03:04:05.123456789Z" level=info msg="loading plugin" id=io.containerd.content.v1.content
// Written to stderr through spdlog; the level is set from --log-level or [debug] level.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "errdefs/errdefs.h"

namespace ctrd::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kFatal };

struct Field {
  std::string_view key;
  std::string value;
};
using Fields = std::initializer_list<Field>;

// Accepts containerd's names: trace, debug, info, warn/warning, error, fatal, panic.
errdefs::Status set_level(std::string_view level);
bool enabled(Level level);

void write(Level level, std::string_view msg, Fields fields = {});
inline void trace(std::string_view msg, Fields f = {}) { write(Level::kTrace, msg, f); }
inline void debug(std::string_view msg, Fields f = {}) { write(Level::kDebug, msg, f); }
inline void info(std::string_view msg, Fields f = {}) { write(Level::kInfo, msg, f); }
inline void warn(std::string_view msg, Fields f = {}) { write(Level::kWarn, msg, f); }
inline void error(std::string_view msg, Fields f = {}) { write(Level::kError, msg, f); }
inline void fatal(std::string_view msg, Fields f = {}) { write(Level::kFatal, msg, f); }

// One logfmt line (without time): `level=info msg="..." k=v`.
std::string format(Level level, std::string_view msg, Fields fields);
// A logfmt value: bare when it can be, quoted and escaped otherwise.
std::string quote(std::string_view value);

}  // namespace ctrd::log
