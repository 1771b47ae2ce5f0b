#include "semat/metrics/imq.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>

#include <opencv2/core.hpp>

#include "semat/core/error.h"
#include "semat/metrics/evaluate.h"
#include "semat/metrics/metrics.h"

namespace fs = std::filesystem;

namespace semat::metrics {
namespace {

// Shortest-augmenting-path Hungarian with potentials for n <= m (rows <= cols), 1-based inside.
std::vector<int> hungarian_wide(const std::vector<std::vector<double>>& a, int n, int m) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(m + 1, 0);
  std::vector<int> p(m + 1, 0), way(m + 1, 0);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(m + 1, inf);
    std::vector<char> used(m + 1, false);
    do {
      used[j0] = true;
      const int i0 = p[j0];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= m; ++j) {
        if (used[j]) continue;
        const double cur = a[i0 - 1][j - 1] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= m; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  std::vector<int> col_of_row(n, -1);
  for (int j = 1; j <= m; ++j)
    if (p[j]) col_of_row[p[j] - 1] = j - 1;
  return col_of_row;
}

std::vector<std::string> subfolders(const std::string& dir, const std::string& flag) {
  std::error_code ec;
  SEMAT_CHECK(fs::is_directory(dir, ec), IoError, flag << " folder '" << dir << "' does not exist or is not a folder");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory(ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<cv::Mat> read_instances(const std::string& dir, std::vector<std::string>* paths) {
  std::vector<cv::Mat> mattes;
  for (const auto& [stem, path] : list_images(dir, "instance")) {
    mattes.push_back(read_alpha(path));
    paths->push_back(path);
  }
  return mattes;
}

std::string join_names(const std::vector<std::string>& names) {
  std::ostringstream os;
  for (size_t i = 0; i < names.size() && i < 10; ++i) os << (i ? ", " : "") << names[i];
  if (names.size() > 10) os << " (and " << names.size() - 10 << " more)";
  return os.str();
}

}  // namespace

std::vector<int> hungarian(const std::vector<std::vector<double>>& cost) {
  const int n = static_cast<int>(cost.size());
  if (n == 0) return {};
  const int m = static_cast<int>(cost[0].size());
  for (const auto& row : cost)
    SEMAT_CHECK(static_cast<int>(row.size()) == m, InvalidArgument, "hungarian: rows of different lengths");
  if (m == 0) return std::vector<int>(n, -1);
  if (n <= m) return hungarian_wide(cost, n, m);
  std::vector<std::vector<double>> t(m, std::vector<double>(n));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) t[j][i] = cost[i][j];
  const std::vector<int> row_of_col = hungarian_wide(t, m, n);
  std::vector<int> out(n, -1);
  for (int j = 0; j < m; ++j)
    if (row_of_col[j] >= 0) out[row_of_col[j]] = j;
  return out;
}

double support_iou(const cv::Mat& a, const cv::Mat& b) {
  SEMAT_CHECK(a.type() == CV_64FC1 && b.type() == CV_64FC1 && a.size() == b.size(), InvalidArgument,
              "support_iou: two CV_64FC1 mattes of the same size expected");
  std::int64_t inter = 0, uni = 0;
  for (int y = 0; y < a.rows; ++y) {
    const double* pa = a.ptr<double>(y);
    const double* pb = b.ptr<double>(y);
    for (int x = 0; x < a.cols; ++x) {
      const bool sa = pa[x] > 0, sb = pb[x] > 0;
      inter += sa && sb;
      uni += sa || sb;
    }
  }
  return static_cast<double>(inter) / (static_cast<double>(uni) + 1e-8);
}

InstanceErrors instance_errors(const cv::Mat& pred, const cv::Mat& gt) {
  SEMAT_CHECK(pred.type() == CV_64FC1 && gt.type() == CV_64FC1 && pred.size() == gt.size(), InvalidArgument,
              "instance_errors: two CV_64FC1 mattes of the same size expected");
  const cv::Mat region = (pred > 0) | (gt > 0);
  const double denom = static_cast<double>(cv::countNonZero(region)) + 1.0;
  InstanceErrors e;
  e.mad = sum_abs_error(pred, gt, region) / denom;
  e.mse = sum_squared_error(pred, gt, region) / denom;
  e.grad = sum_gradient_error(pred, gt, region, false) / denom;
  e.conn = sum_connectivity_error(pred, gt, region, ConnRule::kLargestForegroundEmptyIsNone) / denom;
  return e;
}

double imq_similarity(double error) { return 1.0 - std::min(10.0 * error, 1.0); }

InstanceMatch match_instances(const std::vector<cv::Mat>& preds, const std::vector<cv::Mat>& gts, double min_iou) {
  InstanceMatch m;
  m.n_pred = static_cast<int>(preds.size());
  m.n_gt = static_cast<int>(gts.size());
  if (preds.empty() || gts.empty()) return m;
  std::vector<std::vector<double>> iou(preds.size(), std::vector<double>(gts.size()));
  std::vector<std::vector<double>> cost = iou;
  for (size_t i = 0; i < preds.size(); ++i)
    for (size_t j = 0; j < gts.size(); ++j) {
      iou[i][j] = support_iou(preds[i], gts[j]);
      cost[i][j] = 1.0 - iou[i][j];
    }
  const std::vector<int> col = hungarian(cost);
  for (size_t i = 0; i < preds.size(); ++i) {
    if (col[i] < 0) continue;
    InstanceMatch::Pair p{static_cast<int>(i), col[i], iou[i][col[i]], {}};
    if (p.iou >= min_iou) p.errors = instance_errors(preds[i], gts[col[i]]);
    m.pairs.push_back(p);
  }
  return m;
}

ImqScores aggregate_imq(const std::vector<InstanceMatch>& images, double threshold) {
  ImqScores s;
  s.threshold = threshold;
  std::int64_t n_pred = 0, n_gt = 0;
  for (const InstanceMatch& m : images) {
    n_pred += m.n_pred;
    n_gt += m.n_gt;
    for (const InstanceMatch::Pair& p : m.pairs) {
      if (p.iou < threshold) continue;
      ++s.tp;
      s.imq_mad += imq_similarity(p.errors.mad);
      s.imq_mse += imq_similarity(p.errors.mse);
      s.imq_grad += imq_similarity(p.errors.grad);
      s.imq_conn += imq_similarity(p.errors.conn);
      s.iou += p.iou;
    }
  }
  s.fp = n_pred - s.tp;
  s.fn = n_gt - s.tp;
  const double denom = s.tp + 0.5 * s.fp + 0.5 * s.fn;
  if (denom > 0) {
    s.imq_mad /= denom;
    s.imq_mse /= denom;
    s.imq_grad /= denom;
    s.imq_conn /= denom;
    s.iou /= denom;
  }
  return s;
}

InstanceEvalReport evaluate_instances(const InstanceEvalOptions& opt) {
  SEMAT_CHECK(!opt.thresholds.empty(), ConfigError, "--iou needs at least one threshold, e.g. --iou 0.5,0.75");
  for (double t : opt.thresholds)
    SEMAT_CHECK(t > 0 && t <= 1, ConfigError, "--iou threshold " << t << " is outside (0, 1]");
  const std::vector<std::string> gt_images = subfolders(opt.gt_dir, "--gt");
  SEMAT_CHECK(!gt_images.empty(), DataError,
              "--gt folder '" << opt.gt_dir << "' has no image folders; the HIM2K layout is "
                                 "GT/<image>/<instance>.png");
  const std::vector<std::string> pred_images = subfolders(opt.pred_dir, "--pred");
  InstanceEvalReport report;
  std::vector<std::string> with_pred;
  for (const std::string& n : gt_images)
    if (std::binary_search(pred_images.begin(), pred_images.end(), n)) with_pred.push_back(n);
    else report.missing_predictions.push_back(n);
  for (const std::string& n : pred_images)
    if (!std::binary_search(gt_images.begin(), gt_images.end(), n)) report.unmatched_predictions.push_back(n);
  if (!opt.allow_missing) {
    SEMAT_CHECK(report.missing_predictions.empty(), DataError,
                report.missing_predictions.size() << " image folder(s) have no prediction folder in '" << opt.pred_dir
                                                  << "': " << join_names(report.missing_predictions)
                                                  << "; add them or pass --allow-missing to count them as misses");
    SEMAT_CHECK(report.unmatched_predictions.empty(), DataError,
                report.unmatched_predictions.size()
                    << " prediction folder(s) in '" << opt.pred_dir << "' have no ground truth: "
                    << join_names(report.unmatched_predictions)
                    << "; check the names or pass --allow-missing to ignore them");
  }

  const double min_iou = *std::min_element(opt.thresholds.begin(), opt.thresholds.end());
  std::vector<InstanceMatch> matches(gt_images.size());
  parallel_for_each(static_cast<int>(gt_images.size()), opt.threads, [&](int i) {
    const std::string& name = gt_images[i];
    std::vector<std::string> gt_paths, pred_paths;
    const std::vector<cv::Mat> gts = read_instances((fs::path(opt.gt_dir) / name).string(), &gt_paths);
    std::vector<cv::Mat> preds;
    if (std::binary_search(pred_images.begin(), pred_images.end(), name))
      preds = read_instances((fs::path(opt.pred_dir) / name).string(), &pred_paths);
    const cv::Size size = gts.empty() ? (preds.empty() ? cv::Size() : preds[0].size()) : gts[0].size();
    for (size_t j = 0; j < gts.size(); ++j)
      SEMAT_CHECK(gts[j].size() == size, DataError,
                  "ground truth '" << gt_paths[j] << "' is " << gts[j].cols << "x" << gts[j].rows << " but '"
                                   << gt_paths[0] << "' is " << size.width << "x" << size.height
                                   << ": the instances of one image must have the same size");
    for (size_t j = 0; j < preds.size(); ++j)
      SEMAT_CHECK(preds[j].size() == size, DataError,
                  "prediction '" << pred_paths[j] << "' is " << preds[j].cols << "x" << preds[j].rows
                                 << " but the image's instances are " << size.width << "x" << size.height
                                 << ": predict at the ground truth's size");
    matches[i] = match_instances(preds, gts, min_iou);
  });

  report.images = static_cast<int>(gt_images.size());
  for (const InstanceMatch& m : matches) {
    report.gt_instances += m.n_gt;
    report.pred_instances += m.n_pred;
  }
  SEMAT_CHECK(report.gt_instances + report.pred_instances > 0, DataError,
              "no instance mattes in '" << opt.gt_dir << "' or '" << opt.pred_dir << "'");
  for (double t : opt.thresholds) report.scores.push_back(aggregate_imq(matches, t));
  return report;
}

}  // namespace semat::metrics
