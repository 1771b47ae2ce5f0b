// Instance matting quality (IMQ, InstMatt CVPR 2022): predicted and GT instance mattes of each
// image are paired by a Hungarian assignment on the IoU of their supports, each true-positive pair
// gets a similarity 1 - min(10 e, 1) per metric, and the dataset score is
// sum(similarity) / (TP + FP/2 + FN/2). Mattes are CV_64FC1 in [0, 1].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace semat::metrics {

/// Minimum-cost assignment of a rows x cols cost matrix (any shape, rows of equal length):
/// min(rows, cols) pairs, returned as the column of each row or -1. O(n^2 m).
std::vector<int> hungarian(const std::vector<std::vector<double>>& cost);

/// |a > 0 & b > 0| / (|a > 0 | b > 0| + 1e-8).
double support_iou(const cv::Mat& a, const cv::Mat& b);

/// Errors of one pair in InstMatt's BatchMetric definitions over M = (pred > 0) | (gt > 0), each
/// a sum over M divided by |M| + 1: MAD and MSE of P - G, Grad (no /1000), Conn with the
/// largest-foreground rule (empty -> Omega empty).
struct InstanceErrors {
  double mad = 0, mse = 0, grad = 0, conn = 0;
};
InstanceErrors instance_errors(const cv::Mat& pred, const cv::Mat& gt);

/// 1 - min(10 e, 1).
double imq_similarity(double error);

/// The matching of one image: every Hungarian pair with its IoU; errors only for the pairs whose
/// IoU reaches the smallest threshold in use (the others can never be true positives).
struct InstanceMatch {
  int n_pred = 0, n_gt = 0;
  struct Pair {
    int pred, gt;
    double iou;
    InstanceErrors errors;
  };
  std::vector<Pair> pairs;
};
/// All mattes must have the same size (InvalidArgument otherwise).
InstanceMatch match_instances(const std::vector<cv::Mat>& preds, const std::vector<cv::Mat>& gts,
                              double min_iou);

/// Dataset-level IMQ at one IoU threshold; the imq_* values and iou are in [0, 1] (papers x100).
struct ImqScores {
  double threshold = 0;
  std::int64_t tp = 0, fp = 0, fn = 0;
  double imq_mad = 0, imq_mse = 0, imq_grad = 0, imq_conn = 0, iou = 0;
};
ImqScores aggregate_imq(const std::vector<InstanceMatch>& images, double threshold);

struct InstanceEvalOptions {
  std::string pred_dir, gt_dir;
  std::vector<double> thresholds{0.5, 0.75};
  /// Count images without a prediction folder as all false negatives and ignore prediction
  /// folders without ground truth, instead of failing with the list of names.
  bool allow_missing = false;
  int threads = 0;  ///< 0 = all cores
};

struct InstanceEvalReport {
  std::vector<ImqScores> scores;  ///< one per threshold
  int images = 0;
  std::int64_t gt_instances = 0, pred_instances = 0;
  std::vector<std::string> missing_predictions, unmatched_predictions;
};

/// HIM2K layout: gt_dir/<image>/<instance>.png and pred_dir/<image>/<instance>.png.
InstanceEvalReport evaluate_instances(const InstanceEvalOptions& options);

}  // namespace semat::metrics
