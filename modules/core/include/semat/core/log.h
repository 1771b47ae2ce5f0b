// A small logging facade: levels, a module tag on every line and a replaceable sink (stderr by
// default). Macros are SEMAT_LOG_*; LOG/CHECK are taken by glog inside Debian's c10.
#pragma once

#include <functional>
#include <sstream>
#include <string>

namespace semat::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

using Sink = std::function<void(Level, const std::string& tag, const std::string& message)>;

/// Messages below this level are dropped. Initialised from SEMAT_LOG_LEVEL (debug|info|warn|error|off).
void set_level(Level level);
Level level();
/// Parses "debug", "info", "warn", "error" or "off"; throws ConfigError otherwise.
Level parse_level(const std::string& name);
/// Replaces the sink; an empty function restores the default (stderr, one line per message).
void set_sink(Sink sink);
void write(Level level, const std::string& tag, const std::string& message);

/// Runs `fn` with the process's stderr (fd 2) sent to a memory file and puts what was written
/// there meanwhile in `captured` (at most 64 KiB), also when `fn` throws (the exception passes
/// on). For C libraries that print their own lines (libpng, libjpeg) so that the caller can fold
/// them into one error. Log lines of other threads wait until `fn` returns (the sink's lock is
/// held), but raw writes to stderr by other threads meanwhile land in `captured` too: hand back
/// what is not yours. `fn` must not log. If fd 2 cannot be redirected, `fn` just runs.
void capture_stderr(const std::function<void()>& fn, std::string& captured);

}  // namespace semat::log

#define SEMAT_LOG_AT(lvl, tag, msg)                                   \
  do {                                                                \
    if (static_cast<int>(lvl) >= static_cast<int>(::semat::log::level())) { \
      ::std::ostringstream semat_log_os_;                             \
      semat_log_os_ << msg;                                           \
      ::semat::log::write(lvl, tag, semat_log_os_.str());             \
    }                                                                 \
  } while (0)
#define SEMAT_LOG_DEBUG(tag, msg) SEMAT_LOG_AT(::semat::log::Level::kDebug, tag, msg)
#define SEMAT_LOG_INFO(tag, msg) SEMAT_LOG_AT(::semat::log::Level::kInfo, tag, msg)
#define SEMAT_LOG_WARN(tag, msg) SEMAT_LOG_AT(::semat::log::Level::kWarn, tag, msg)
#define SEMAT_LOG_ERROR(tag, msg) SEMAT_LOG_AT(::semat::log::Level::kError, tag, msg)
