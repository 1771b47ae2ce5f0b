#include "semat/matting/foreground.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"

namespace semat::matting {
namespace {

// One Gauss-Seidel sweep of the per-pixel 2x2 systems
//   [a00 a01; a01 a11] [F; B] = [b0; b1]
// that come from the compositing equation plus a smoothness term towards the four neighbours,
// weighted by regularization + gradient_weight * |alpha_i - alpha_j|.
void sweep(const cv::Mat& img, const cv::Mat& alpha, cv::Mat& F, cv::Mat& B,
           const ForegroundParams& p) {
  const int h = img.rows, w = img.cols;
  for (int y = 0; y < h; ++y) {
    const cv::Vec3f* irow = img.ptr<cv::Vec3f>(y);
    const float* arow = alpha.ptr<float>(y);
    cv::Vec3f* frow = F.ptr<cv::Vec3f>(y);
    cv::Vec3f* brow = B.ptr<cv::Vec3f>(y);
    for (int x = 0; x < w; ++x) {
      const double a0 = arow[x], a1 = 1.0 - a0;
      double a00 = a0 * a0, a01 = a0 * a1, a11 = a1 * a1;
      double b0[3], b1[3];
      for (int c = 0; c < 3; ++c) b0[c] = a0 * irow[x][c], b1[c] = a1 * irow[x][c];
      const int nx[4] = {std::max(x - 1, 0), std::min(x + 1, w - 1), x, x};
      const int ny[4] = {y, y, std::max(y - 1, 0), std::min(y + 1, h - 1)};
      for (int k = 0; k < 4; ++k) {
        const double da =
            p.regularization + p.gradient_weight * std::abs(a0 - alpha.at<float>(ny[k], nx[k]));
        a00 += da, a11 += da;
        const cv::Vec3f& fn = F.at<cv::Vec3f>(ny[k], nx[k]);
        const cv::Vec3f& bn = B.at<cv::Vec3f>(ny[k], nx[k]);
        for (int c = 0; c < 3; ++c) b0[c] += da * fn[c], b1[c] += da * bn[c];
      }
      const double inv_det = 1.0 / (a00 * a11 - a01 * a01);
      const double i00 = inv_det * a11, i01 = -inv_det * a01, i11 = inv_det * a00;
      for (int c = 0; c < 3; ++c) {
        frow[x][c] = static_cast<float>(std::clamp(i00 * b0[c] + i01 * b1[c], 0.0, 1.0));
        brow[x][c] = static_cast<float>(std::clamp(i01 * b0[c] + i11 * b1[c], 0.0, 1.0));
      }
    }
  }
}

}  // namespace

ForegroundResult estimate_foreground(const cv::Mat& image, const cv::Mat& alpha,
                                     const ForegroundParams& p) {
  SEMAT_CHECK(image.type() == CV_8UC3, InvalidArgument, "estimate_foreground: CV_8UC3 image expected");
  SEMAT_CHECK(alpha.type() == CV_32FC1 && alpha.size() == image.size(), InvalidArgument,
              "estimate_foreground: alpha must be CV_32F of the image's size");
  cv::Mat img;
  image.convertTo(img, CV_32FC3, 1.0 / 255.0);
  const int h0 = img.rows, w0 = img.cols;
  const int levels = static_cast<int>(std::ceil(std::log2(std::max(w0, h0))));

  // Coarsest level is 1x1 holding the mean colour for both layers.
  cv::Mat F, B;
  cv::resize(img, F, {1, 1}, 0, 0, cv::INTER_AREA);
  B = F.clone();
  for (int l = 0; l <= levels; ++l) {
    const double t = levels > 0 ? static_cast<double>(l) / levels : 1.0;
    const cv::Size size(static_cast<int>(std::lround(std::pow(w0, t))),
                        static_cast<int>(std::lround(std::pow(h0, t))));
    cv::Mat li, la;
    cv::resize(img, li, size, 0, 0, cv::INTER_NEAREST);
    cv::resize(alpha, la, size, 0, 0, cv::INTER_NEAREST);
    if (F.size() != size) {
      cv::resize(F, F, size, 0, 0, cv::INTER_NEAREST);
      cv::resize(B, B, size, 0, 0, cv::INTER_NEAREST);
    }
    const int iters = std::min(size.width, size.height) <= p.small_size ? p.small_iterations
                                                                          : p.big_iterations;
    for (int i = 0; i < iters; ++i) sweep(li, la, F, B, p);
  }
  return {F, B};
}

}  // namespace semat::matting
