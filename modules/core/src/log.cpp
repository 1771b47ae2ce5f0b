#include "semat/core/log.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <mutex>

#include "semat/core/error.h"

namespace semat::log {
namespace {

Level initial_level() {
  const char* env = std::getenv("SEMAT_LOG_LEVEL");
  if (env == nullptr) return Level::kInfo;
  try {
    return parse_level(env);
  } catch (const Error&) {
    return Level::kInfo;
  }
}

std::atomic<int> g_level{static_cast<int>(initial_level())};
std::mutex g_mutex;  // guards g_sink and serialises writes so lines never interleave
Sink g_sink;

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warning";
    case Level::kError: return "error";
    default: return "";
  }
}

}  // namespace

void set_level(Level l) { g_level = static_cast<int>(l); }
Level level() { return static_cast<Level>(g_level.load()); }

Level parse_level(const std::string& name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn" || name == "warning") return Level::kWarn;
  if (name == "error") return Level::kError;
  if (name == "off") return Level::kOff;
  throw ConfigError("unknown log level '" + name + "': use debug, info, warn, error or off");
}

void set_sink(Sink sink) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_sink = std::move(sink);
}

void write(Level l, const std::string& tag, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_sink) {
    g_sink(l, tag, message);
    return;
  }
  std::cerr << "semat";
  if (!tag.empty()) std::cerr << ' ' << tag;
  std::cerr << ": " << level_name(l) << ": " << message << '\n';
}

void capture_stderr(const std::function<void()>& fn, std::string& captured) {
  captured.clear();
  std::lock_guard<std::mutex> lock(g_mutex);
  std::cerr.flush();
  std::fflush(stderr);
  const int file = memfd_create("semat-stderr", MFD_CLOEXEC);
  const int saved = file >= 0 ? ::dup(2) : -1;
  if (saved < 0 || ::dup2(file, 2) < 0) {
    if (saved >= 0) ::close(saved);
    if (file >= 0) ::close(file);
    fn();
    return;
  }
  std::exception_ptr error;
  try {
    fn();
  } catch (...) {
    error = std::current_exception();
  }
  std::cerr.flush();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  const off_t size = ::lseek(file, 0, SEEK_END);
  if (size > 0) {
    captured.resize(static_cast<std::size_t>(std::min<off_t>(size, 64 << 10)));
    const ssize_t n = ::pread(file, captured.data(), captured.size(), 0);
    captured.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  ::close(file);
  if (error) std::rethrow_exception(error);
}

}  // namespace semat::log
