#include "progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "semat/core/log.h"
#include "semat/data/builder.h"

namespace semat::data {

Progress::Progress(ProgressMode mode, std::int64_t total) : total_(total) {
  off_ = mode == ProgressMode::kOff;
  bar_ = mode == ProgressMode::kBar || (mode == ProgressMode::kAuto && ::isatty(STDERR_FILENO));
}

std::string Progress::duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = std::lround(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

std::string Progress::status_locked() const {
  const std::int64_t done = solved_ + resumed_;
  const double secs = timer_.seconds();
  // The rate counts solved instances only: resumed ones cost nothing and would fake the ETA.
  const double rate = secs > 0 ? solved_ / secs : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : -1;
  std::ostringstream os;
  os << done << "/" << total_ << " instances";
  if (total_ > 0) os << " (" << (100 * done / total_) << "%)";
  char r[32];
  std::snprintf(r, sizeof r, "%.2f", rate);
  os << ", " << r << "/s, ETA " << (done >= total_ ? std::string("0s") : duration(eta));
  if (resumed_ > 0) os << ", " << resumed_ << " resumed";
  return os.str();
}

void Progress::draw_locked(bool force) {
  if (off_) return;
  const double now = timer_.seconds();
  const std::int64_t done = solved_ + resumed_;
  if (bar_) {
    if (!force && now - last_draw_ < 0.2) return;
    last_draw_ = now;
    const int width = 30;
    const int fill = total_ > 0 ? static_cast<int>(width * done / total_) : width;
    std::string bar(fill, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r\033[K[%s] %s", bar.c_str(), status_locked().c_str());
    std::fflush(stderr);
    drawn_ = true;
    return;
  }
  const bool tenth = total_ > 0 && (done - last_log_done_) * 10 >= total_;
  if (force || now - last_log_ >= 30 || tenth) {
    last_log_ = now;
    last_log_done_ = done;
    SEMAT_LOG_INFO("data", "progress: " << status_locked());
  }
}

void Progress::add(std::int64_t solved, std::int64_t resumed) {
  std::lock_guard<std::mutex> lock(mutex_);
  solved_ += solved;
  resumed_ += resumed;
  draw_locked(false);
}

void Progress::warn(const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (bar_ && drawn_) std::fprintf(stderr, "\r\033[K");
  SEMAT_LOG_WARN("data", message);
  if (bar_ && drawn_) draw_locked(true);
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  draw_locked(true);
  if (bar_ && drawn_) std::fprintf(stderr, "\n");
}

}  // namespace semat::data
