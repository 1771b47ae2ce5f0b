#include "semat/metrics/protocol.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/core.hpp>

#include "semat/core/error.h"
#include "semat/metrics/metrics.h"

namespace semat::metrics {
namespace {

constexpr int kLongSide = 1024;

// Source index and weights of one output coordinate, in torch's formula and operation order.
struct Tap {
  int i0, i1;
  double l1;  // weight of i1
};

std::vector<Tap> taps(int in, int out) {
  std::vector<Tap> t(out);
  const double scale = static_cast<double>(in) / out;
  for (int d = 0; d < out; ++d) {
    const double src = std::max((d + 0.5) * scale - 0.5, 0.0);
    const int i0 = std::min(static_cast<int>(src), in - 1);
    t[d].i0 = i0;
    t[d].i1 = i0 + (i0 < in - 1 ? 1 : 0);
    t[d].l1 = src - i0;
  }
  return t;
}

void check_alpha(const cv::Mat& a, const std::string& name, const char* what) {
  SEMAT_CHECK(!a.empty() && a.type() == CV_64FC1, InvalidArgument,
              what << " of '" << name << "' must be a non-empty CV_64FC1 alpha");
}

}  // namespace

const char* protocol_name(Protocol p) { return p == Protocol::kSemat ? "semat" : "dim"; }

Protocol parse_protocol(const std::string& name) {
  if (name == "semat") return Protocol::kSemat;
  if (name == "dim") return Protocol::kDim;
  throw ConfigError("--protocol '" + name + "' is unknown: use semat or dim");
}

cv::Size semat_eval_size(cv::Size s) {
  SEMAT_CHECK(s.width > 0 && s.height > 0, InvalidArgument,
              "semat_eval_size: empty size " << s.width << "x" << s.height);
  const double long_side = std::max(s.width, s.height);
  return {static_cast<int>(s.width * static_cast<double>(kLongSide) / long_side + 0.5),
          static_cast<int>(s.height * static_cast<double>(kLongSide) / long_side + 0.5)};
}

cv::Mat resize_bilinear(const cv::Mat& src, cv::Size size) {
  SEMAT_CHECK(!src.empty() && src.type() == CV_64FC1 && size.width > 0 && size.height > 0,
              InvalidArgument, "resize_bilinear: a CV_64FC1 image and a positive size are expected");
  if (src.size() == size) return src.clone();
  const std::vector<Tap> tx = taps(src.cols, size.width), ty = taps(src.rows, size.height);
  cv::Mat dst(size, CV_64FC1);
  for (int y = 0; y < size.height; ++y) {
    const Tap& v = ty[y];
    const double* r0 = src.ptr<double>(v.i0);
    const double* r1 = src.ptr<double>(v.i1);
    double* out = dst.ptr<double>(y);
    for (int x = 0; x < size.width; ++x) {
      const Tap& u = tx[x];
      // a + t (b - a) instead of torch's (1 - t) a + t b: the same value up to rounding, but
      // exact on flat areas, so a resized 0 or 1 stays 0 or 1 for the Conn thresholds.
      const double top = r0[u.i0] + u.l1 * (r0[u.i1] - r0[u.i0]);
      const double bot = r1[u.i0] + u.l1 * (r1[u.i1] - r1[u.i0]);
      out[x] = top + v.l1 * (bot - top);
    }
  }
  return dst;
}

cv::Mat quantize_alpha(const cv::Mat& alpha) {
  SEMAT_CHECK(alpha.type() == CV_64FC1, InvalidArgument, "quantize_alpha: CV_64FC1 expected");
  cv::Mat out(alpha.size(), CV_64FC1);
  for (int y = 0; y < alpha.rows; ++y) {
    const double* a = alpha.ptr<double>(y);
    double* o = out.ptr<double>(y);
    for (int x = 0; x < alpha.cols; ++x)
      o[x] = std::floor(std::clamp(a[x], 0.0, 1.0) * 255.0 + 0.5) / 255.0;
  }
  return out;
}

Scores score_semat(const cv::Mat& pred, const cv::Mat& gt) {
  check_alpha(pred, "prediction", "the prediction");
  check_alpha(gt, "ground truth", "the ground truth");
  const cv::Size size = semat_eval_size(gt.size());
  const cv::Mat g = gt.size() == size ? gt : resize_bilinear(gt, size);
  const cv::Mat p = quantize_alpha(pred.size() == size ? pred : resize_bilinear(pred, size));
  const cv::Mat all;  // the whole image
  const double n = static_cast<double>(size.area());
  Scores s;
  const double abs_sum = sum_abs_error(p, g, all);
  s.sad = abs_sum / 1000.0;
  s.mse = sum_squared_error(p, g, all) / (n + 1e-8);
  s.mad = abs_sum / (n + 1e-8);
  s.grad = sum_gradient_error(p, g, all, false) / 1000.0;
  s.conn = sum_connectivity_error(p, g, all, ConnRule::kLargestWithBackground) / 1000.0;
  return s;
}

Scores score_dim(const cv::Mat& pred, const cv::Mat& gt, const cv::Mat& trimap, const std::string& name) {
  check_alpha(pred, name, "the prediction");
  check_alpha(gt, name, "the ground truth");
  SEMAT_CHECK(pred.size() == gt.size(), DataError,
              "'" << name << "': prediction is " << pred.cols << "x" << pred.rows << " but the ground truth is "
                  << gt.cols << "x" << gt.rows << "; protocol dim needs the original size (or use --protocol semat)");
  SEMAT_CHECK(trimap.type() == CV_8UC1 && trimap.size() == gt.size(), DataError,
              "'" << name << "': trimap is " << trimap.cols << "x" << trimap.rows << " but the ground truth is "
                  << gt.cols << "x" << gt.rows << "; they must have the same size");
  const cv::Mat region = trimap == 128;
  const std::int64_t n = cv::countNonZero(region);
  SEMAT_CHECK(n > 0, DataError,
              "'" << name << "': the trimap has no unknown pixels (value 128), so protocol dim has "
                     "nothing to evaluate; check the trimap or use --protocol semat");
  Scores s;
  const double abs_sum = sum_abs_error(pred, gt, region);
  s.sad = abs_sum / 1000.0;
  s.mse = sum_squared_error(pred, gt, region) / static_cast<double>(n);
  s.mad = abs_sum / static_cast<double>(n);
  s.grad = sum_gradient_error(pred, gt, region, true) / 1000.0;
  s.conn = sum_connectivity_error(pred, gt, region, ConnRule::kLargestForeground) / 1000.0;
  return s;
}

}  // namespace semat::metrics
