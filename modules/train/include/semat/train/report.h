// What a training run shows a person while it runs: the per-iteration CSV next to log.jsonl, a
// PNG plot of the losses, visual panels, and a progress bar with ETA. Torch-free (OpenCV only),
// so it is tested without building a model.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "semat/core/timer.h"

namespace semat::train {

/// One iteration's named values ("loss", each component, "lr", "time"), in column order.
using LogRow = std::vector<std::pair<std::string, double>>;

/// Appends rows to log.csv: header "iter,<names>" on a new file, one line per iteration, flushed
/// each time so a crash loses at most the line being written.
class CsvLog {
 public:
  /// Opens `path` for appending (the header is written with the first row when the file is
  /// empty). Throws IoError naming the file.
  explicit CsvLog(const std::string& path);
  void append(int64_t iter, const LogRow& row);

 private:
  std::string path_;
  bool header_ = false;
};

/// Drops the lines of log.jsonl / log.csv that a resumed run at iteration `done` will write
/// again (their iteration is > done), atomically. Missing files are left missing.
void trim_jsonl_log(const std::string& path, int64_t done);
void trim_csv_log(const std::string& path, int64_t done);

/// Reads log.jsonl back: iteration and rows (unparsable lines are skipped).
std::vector<std::pair<int64_t, LogRow>> read_jsonl_log(const std::string& path);

/// The losses against the iteration on a log scale: the total ("loss") bold, each component thin, raw
/// values faint and a moving average on top (noisy per-iteration losses are unreadable
/// otherwise). Keys "lr" and "time" are not plotted. CV_8UC3 BGR of `size`.
cv::Mat render_loss_plot(const std::vector<std::pair<int64_t, LogRow>>& log, cv::Size size = {960, 540});
/// render_loss_plot of the log.jsonl at `log_path`, written atomically as PNG to `png_path`.
void write_loss_plot(const std::string& log_path, const std::string& png_path);

/// One sample of a visual panel. Sizes may differ; every tile is resized to the panel's tile.
struct PanelRow {
  cv::Mat image;      ///< CV_8UC3 RGB
  double box[4];      ///< x1, y1, x2, y2 in the image's pixels
  cv::Mat trimap;     ///< CV_32F predicted trimap, 0 / 0.5 / 1
  cv::Mat alpha;      ///< CV_32F predicted alpha in [0, 1]
  cv::Mat alpha_gt;   ///< CV_32F ground truth in [0, 1]
};
/// image with box | predicted trimap | alpha | ground truth, one row per sample, labelled; CV_8UC3
/// BGR, `tile` pixels per square tile.
cv::Mat render_panel(const std::vector<PanelRow>& rows, int tile = 256);

enum class ProgressStyle { kBar, kLog, kOff };

/// A redrawn bar on a terminal ("[#####.....]  41%  iter 123/300  loss 0.412  1.9 it/s  ETA
/// 0:01:33"), or a plain line every `every` iterations for logs and pipes.
class TrainProgress {
 public:
  TrainProgress(std::ostream* out, ProgressStyle style, int64_t total, int64_t first, int64_t every);
  /// After iteration `done` (1-based) with the total loss and learning rate.
  void update(int64_t done, double loss, double lr);
  /// A line (evaluation result, checkpoint) that does not garble the bar; "" only clears the
  /// bar's line (before something else writes to the terminal).
  void message(const std::string& line);
  /// Ends the bar's line.
  void finish();

  /// "1:02:03".
  static std::string duration(double seconds);

 private:
  std::ostream* out_;
  ProgressStyle style_;
  int64_t total_, first_, every_;
  Timer timer_;
  bool open_ = false;
  double last_draw_ = -1;
};

}  // namespace semat::train
