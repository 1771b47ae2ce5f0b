// Progress of a long build: a redrawn bar with rate and ETA on a terminal, a plain log line every
// 30 s (or 10% of the work) otherwise, so batch logs stay readable.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "semat/core/timer.h"

namespace semat::data {

enum class ProgressMode;

class Progress {
 public:
  /// `total`: instances to account for.
  Progress(ProgressMode mode, std::int64_t total);

  /// `solved` instances were computed now, `resumed` were found done. Thread-safe.
  void add(std::int64_t solved, std::int64_t resumed);
  /// A warning line that does not garble the bar. Thread-safe.
  void warn(const std::string& message);
  /// Final line (the bar is completed and ended with a newline).
  void finish();

  /// "2h05m", "3m07s", "12s".
  static std::string duration(double seconds);

 private:
  void draw_locked(bool force);
  std::string status_locked() const;

  std::mutex mutex_;
  bool bar_ = false, off_ = false, drawn_ = false;
  std::int64_t total_ = 0, solved_ = 0, resumed_ = 0;
  Timer timer_;
  double last_draw_ = -1, last_log_ = 0;
  std::int64_t last_log_done_ = 0;
};

}  // namespace semat::data
