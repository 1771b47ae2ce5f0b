#include "semat/train/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/io/files.h"
#include "semat/io/image_io.h"

namespace semat::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<uint8_t> to_bytes(const std::string& s) { return {s.begin(), s.end()}; }

// Keeps the lines for which keep(line) holds; rewritten atomically so a crash during a resume
// leaves the old log rather than a truncated one.
template <class Keep>
void filter_lines(const std::string& path, Keep keep) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  bool first = true;
  while (std::getline(in, line)) {
    if (!line.empty() && keep(line, first)) kept += line + "\n";
    first = false;
  }
  io::write_file_atomic(path, to_bytes(kept));
}

std::string format_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// Distinct, readable on white: total first (black).
const cv::Scalar kColours[] = {{0, 0, 0},       {200, 80, 0},   {0, 140, 255}, {40, 160, 40},
                               {180, 0, 180},   {0, 0, 200},    {140, 140, 0}, {90, 60, 160},
                               {0, 100, 100},   {120, 120, 120}};

cv::Mat to_bgr_tile(const cv::Mat& m, int tile) {
  cv::Mat u8;
  if (m.type() == CV_8UC3) {
    cv::cvtColor(m, u8, cv::COLOR_RGB2BGR);
  } else {
    cv::Mat f;
    m.convertTo(f, CV_32F);
    f.convertTo(u8, CV_8U, 255.0);
    cv::cvtColor(u8, u8, cv::COLOR_GRAY2BGR);
  }
  cv::Mat out;
  cv::resize(u8, out, {tile, tile}, 0, 0, cv::INTER_AREA);
  return out;
}

}  // namespace

CsvLog::CsvLog(const std::string& path) : path_(path) {
  std::error_code ec;
  header_ = fs::exists(path, ec) && fs::file_size(path, ec) > 0;
  std::ofstream probe(path, std::ios::app);
  if (!probe) throw IoError("cannot write '" + path + "': check the folder's permissions");
}

void CsvLog::append(int64_t iter, const LogRow& row) {
  std::ofstream out(path_, std::ios::app);
  if (!header_) {
    out << "iter";
    for (const auto& kv : row) out << "," << kv.first;
    out << "\n";
    header_ = true;
  }
  out << iter;
  for (const auto& kv : row) out << "," << format_value(kv.second);
  out << "\n";
  out.flush();
  if (!out) throw IoError("cannot append to '" + path_ + "': disk full?");
}

void trim_jsonl_log(const std::string& path, int64_t done) {
  filter_lines(path, [done](const std::string& line, bool) {
    const json j = json::parse(line, nullptr, false);
    return !j.is_discarded() && j.contains("iter") && j["iter"].is_number_integer() &&
           j["iter"].get<int64_t>() <= done;
  });
}

void trim_csv_log(const std::string& path, int64_t done) {
  filter_lines(path, [done](const std::string& line, bool first) {
    if (first) return line.rfind("iter", 0) == 0;  // the header
    char* end = nullptr;
    const long long it = std::strtoll(line.c_str(), &end, 10);
    return end != line.c_str() && *end == ',' && it <= done;
  });
}

std::vector<std::pair<int64_t, LogRow>> read_jsonl_log(const std::string& path) {
  std::vector<std::pair<int64_t, LogRow>> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("iter") || !j["iter"].is_number_integer()) continue;
    LogRow row;
    for (const auto& [k, v] : j.items())
      if (k != "iter" && v.is_number()) row.emplace_back(k, v.get<double>());
    out.emplace_back(j["iter"].get<int64_t>(), std::move(row));
  }
  return out;
}

cv::Mat render_loss_plot(const std::vector<std::pair<int64_t, LogRow>>& log, cv::Size size) {
  cv::Mat img(size, CV_8UC3, cv::Scalar(255, 255, 255));
  const int left = 70, right = 170, top = 20, bottom = 45;
  const cv::Rect area(left, top, size.width - left - right, size.height - top - bottom);
  cv::rectangle(img, area, cv::Scalar(0, 0, 0), 1);
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  if (log.empty()) {
    cv::putText(img, "no iterations logged yet", {area.x + 20, area.y + 40}, font, 0.6, {0, 0, 0}, 1, cv::LINE_AA);
    return img;
  }
  // Series in the order of the first row; positive values only (log scale).
  std::vector<std::string> names;
  for (const auto& kv : log.front().second)
    if (kv.first != "lr" && kv.first != "time") names.push_back(kv.first);
  // The total first (drawn bold): JSON objects come back with their keys sorted.
  const auto total = std::find(names.begin(), names.end(), "loss");
  if (total != names.end()) std::rotate(names.begin(), total, total + 1);
  std::vector<std::vector<cv::Point2d>> series(names.size());
  double ymin = HUGE_VAL, ymax = -HUGE_VAL;
  const double x0 = static_cast<double>(log.front().first), x1 = std::max(x0 + 1, static_cast<double>(log.back().first));
  for (const auto& [it, row] : log)
    for (const auto& [k, v] : row) {
      const auto n = std::find(names.begin(), names.end(), k);
      if (n == names.end() || !(v > 0) || !std::isfinite(v)) continue;
      const double y = std::log10(v);
      series[static_cast<size_t>(n - names.begin())].emplace_back(static_cast<double>(it), y);
      ymin = std::min(ymin, y);
      ymax = std::max(ymax, y);
    }
  if (!(ymax >= ymin)) ymin = -1, ymax = 0;
  ymin = std::floor(ymin), ymax = std::max(ymin + 1, std::ceil(ymax));
  auto px = [&](double x, double y) {
    return cv::Point(area.x + static_cast<int>((x - x0) / (x1 - x0) * (area.width - 1) + 0.5),
                     area.y + static_cast<int>((ymax - y) / (ymax - ymin) * (area.height - 1) + 0.5));
  };
  // Decade grid and labels.
  for (double d = ymin; d <= ymax + 1e-9; d += 1) {
    const cv::Point p = px(x0, d);
    cv::line(img, {area.x, p.y}, {area.x + area.width - 1, p.y}, {225, 225, 225}, 1);
    char buf[16];
    std::snprintf(buf, sizeof buf, "1e%d", static_cast<int>(d));
    cv::putText(img, buf, {8, p.y + 5}, font, 0.45, {0, 0, 0}, 1, cv::LINE_AA);
  }
  for (int t = 0; t <= 4; ++t) {
    const double x = x0 + (x1 - x0) * t / 4.0;
    const cv::Point p = px(x, ymin);
    const std::string s = std::to_string(static_cast<long long>(std::llround(x)));
    cv::putText(img, s, {p.x - 4 * static_cast<int>(s.size()), area.y + area.height + 18}, font, 0.45,
                {0, 0, 0}, 1, cv::LINE_AA);
  }
  cv::putText(img, "iteration", {area.x + area.width / 2 - 35, size.height - 8}, font, 0.5, {0, 0, 0}, 1,
              cv::LINE_AA);
  for (size_t s = 0; s < series.size(); ++s) {
    const auto& pts = series[s];
    const cv::Scalar colour = kColours[s % (sizeof kColours / sizeof kColours[0])];
    const cv::Scalar faint = colour * 0.3 + cv::Scalar(255, 255, 255) * 0.7;
    // Moving average over ~2% of the run (in log space), so trends read through the noise.
    const size_t w = std::max<size_t>(1, pts.size() / 50);
    std::vector<cv::Point> raw, smooth;
    double acc = 0;
    for (size_t i = 0; i < pts.size(); ++i) {
      raw.push_back(px(pts[i].x, pts[i].y));
      acc += pts[i].y;
      if (i >= w) acc -= pts[i - w].y;
      smooth.push_back(px(pts[i].x, acc / static_cast<double>(std::min(i + 1, w))));
    }
    if (w > 1) cv::polylines(img, raw, false, faint, 1, cv::LINE_AA);
    cv::polylines(img, smooth, false, colour, s == 0 ? 2 : 1, cv::LINE_AA);
    const int ly = top + 18 + 20 * static_cast<int>(s);
    cv::line(img, {size.width - right + 10, ly - 4}, {size.width - right + 35, ly - 4}, colour, s == 0 ? 2 : 1);
    cv::putText(img, names[s], {size.width - right + 42, ly}, font, 0.45, {0, 0, 0}, 1, cv::LINE_AA);
  }
  return img;
}

void write_loss_plot(const std::string& log_path, const std::string& png_path) {
  io::write_file_atomic(png_path, io::encode_png(render_loss_plot(read_jsonl_log(log_path))));
}

cv::Mat render_panel(const std::vector<PanelRow>& rows, int tile) {
  const int label = 24;
  const char* titles[] = {"image + box", "predicted trimap", "predicted alpha", "ground truth"};
  cv::Mat out(label + tile * static_cast<int>(rows.size()), 4 * tile, CV_8UC3, cv::Scalar(255, 255, 255));
  for (int c = 0; c < 4; ++c)
    cv::putText(out, titles[c], {c * tile + 6, 17}, cv::FONT_HERSHEY_SIMPLEX, 0.5, {0, 0, 0}, 1, cv::LINE_AA);
  for (size_t r = 0; r < rows.size(); ++r) {
    const PanelRow& row = rows[r];
    const int y = label + tile * static_cast<int>(r);
    cv::Mat im = to_bgr_tile(row.image, tile);
    const double sx = static_cast<double>(tile) / row.image.cols, sy = static_cast<double>(tile) / row.image.rows;
    cv::rectangle(im, cv::Point(static_cast<int>(row.box[0] * sx), static_cast<int>(row.box[1] * sy)),
                  cv::Point(static_cast<int>(row.box[2] * sx), static_cast<int>(row.box[3] * sy)), {0, 255, 0}, 2);
    const cv::Mat tiles[] = {im, to_bgr_tile(row.trimap, tile), to_bgr_tile(row.alpha, tile),
                             to_bgr_tile(row.alpha_gt, tile)};
    for (int c = 0; c < 4; ++c) tiles[c].copyTo(out(cv::Rect(c * tile, y, tile, tile)));
  }
  return out;
}

TrainProgress::TrainProgress(std::ostream* out, ProgressStyle style, int64_t total, int64_t first, int64_t every)
    : out_(out), style_(out ? style : ProgressStyle::kOff), total_(total), first_(first), every_(every) {}

std::string TrainProgress::duration(double s) {
  char buf[32];
  const long t = static_cast<long>(std::max(0.0, s));
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  return buf;
}

void TrainProgress::update(int64_t done, double loss, double lr) {
  if (style_ == ProgressStyle::kOff) return;
  const double secs = timer_.seconds();
  const bool last = done == total_;
  if (style_ == ProgressStyle::kLog && !(every_ > 0 && (done % every_ == 0 || last))) return;
  // A terminal is redrawn at most 5 times a second: cheap even at many it/s.
  if (style_ == ProgressStyle::kBar && !last && last_draw_ >= 0 && secs - last_draw_ < 0.2) return;
  last_draw_ = secs;
  const double rate = static_cast<double>(done - first_ + 1) / std::max(secs, 1e-9);
  const std::string eta = duration(static_cast<double>(total_ - done) / rate);
  char buf[256];
  if (style_ == ProgressStyle::kBar) {
    const int width = 24;
    const int filled = static_cast<int>(width * done / std::max<int64_t>(total_, 1));
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    std::snprintf(buf, sizeof buf, "\r[%s] %3d%%  iter %lld/%lld  loss %.5f  lr %.3g  %.2f it/s  ETA %s\033[K",
                  bar.c_str(), static_cast<int>(100 * done / std::max<int64_t>(total_, 1)),
                  static_cast<long long>(done), static_cast<long long>(total_), loss, lr, rate, eta.c_str());
    *out_ << buf << std::flush;
    open_ = true;
  } else {
    std::snprintf(buf, sizeof buf, "iter %lld/%lld  loss %.5f  lr %.3g  %.2f it/s  ETA %s\n",
                  static_cast<long long>(done), static_cast<long long>(total_), loss, lr, rate, eta.c_str());
    *out_ << buf << std::flush;
  }
}

void TrainProgress::message(const std::string& line) {
  if (style_ == ProgressStyle::kOff) return;
  if (open_) *out_ << "\r\033[K";
  if (!line.empty()) *out_ << line << "\n";
  *out_ << std::flush;
  last_draw_ = -1;  // redraw the bar at the next update
  open_ = false;
}

void TrainProgress::finish() {
  if (open_) *out_ << "\n" << std::flush;
  open_ = false;
}

}  // namespace semat::train
