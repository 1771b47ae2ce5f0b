// Whole-folder evaluation: predictions matched to ground truths by file stem, every image scored
// on its own worker thread, per-image scores and their means returned.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "semat/metrics/protocol.h"

namespace semat::metrics {

/// Reads a matte as CV_64FC1 in [0, 1] holding exactly k / 255 (8-bit files) or k / 65535
/// (16-bit files); colour files are converted to grey. Throws IoError naming the path.
cv::Mat read_alpha(const std::string& path);

/// Image files (png, jpg, jpeg, bmp, tif, tiff, webp; any case) directly inside `dir`, keyed by
/// stem. `flag` names the option in errors. Throws IoError when `dir` is not a folder and
/// DataError when two files share a stem.
std::map<std::string, std::string> list_images(const std::string& dir, const std::string& flag);

/// One ground truth to evaluate. `name` is the matching key: the stem, or "subfolder/stem" for
/// layouts that spread the ground truth over subfolders (SIM).
struct GtItem {
  std::string name, path;
};

/// The ground truths of a flat folder (`flag` names the option in errors; empty folder: DataError).
std::vector<GtItem> gt_items_from_dir(const std::string& dir, const std::string& flag = "--gt");

struct EvalOptions {
  Protocol protocol = Protocol::kSemat;
  std::string pred_dir;
  std::string trimap_dir;  ///< required by (and only used by) protocol dim
  /// Skip ground truths without a prediction (or trimap) and ignore predictions without ground
  /// truth, instead of failing with the list of names.
  bool allow_missing = false;
  int threads = 0;  ///< worker threads; 0 = all cores
};

struct ImageResult {
  std::string name, pred, gt, trimap;
  Scores scores;
};

struct EvalReport {
  Protocol protocol = Protocol::kSemat;
  std::vector<ImageResult> images;  ///< in ground-truth order
  Scores mean;                      ///< arithmetic mean of each score over `images`
  std::vector<std::string> missing_predictions;    ///< skipped: no prediction
  std::vector<std::string> missing_trimaps;        ///< skipped: no trimap (protocol dim)
  std::vector<std::string> unmatched_predictions;  ///< ignored: no ground truth
};

/// Evaluates every item. Missing files are a DataError listing the names unless allow_missing;
/// the first failing image (in item order) is rethrown with its file named.
EvalReport evaluate(const std::vector<GtItem>& items, const EvalOptions& options);

/// Runs fn(i) for i in [0, n) on `threads` workers (0 = all cores). The first exception by index
/// is rethrown after all workers stop; later items are not started once one has failed.
void parallel_for_each(int n, int threads, const std::function<void(int)>& fn);

}  // namespace semat::metrics
