#include "semat/matting/pipeline.h"

#include <algorithm>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"

namespace semat::matting {
cv::Mat mask_prior(const cv::Mat& mask, double omega, double sigma_fraction) {
  cv::Mat prior;
  cv::threshold(mask, prior, 0, 255, cv::THRESH_BINARY);  // any nonzero is subject
  prior.convertTo(prior, CV_32F, 1.0 / 255);
  cv::GaussianBlur(prior, prior, {0, 0}, std::max(0.5, sigma_fraction * omega));
  return prior;
}

void solve_in_trimap(const cv::Mat& image, const cv::Mat& trimap, const cv::Mat& mask,
                     double omega, const MatteOptions& o, MatteResult& r) {
  ClosedFormParams solver = o.solver;
  const bool use_prior = !mask.empty() && o.mask_prior_weight > 0;
  if (use_prior) solver.prior_weight = o.mask_prior_weight;
  cv::Rect roi(0, 0, image.cols, image.rows);
  if (o.crop_margin >= 0) {
    const cv::Rect bound = cv::boundingRect(trimap);  // non-background pixels
    const int m = o.crop_margin;
    roi = bound.area() == 0 ? cv::Rect() : cv::Rect(bound.x - m, bound.y - m, bound.width + 2 * m,
                                                    bound.height + 2 * m) & roi;
  }
  if (roi.area() == 0) {
    r.alpha = cv::Mat(image.size(), CV_32F, cv::Scalar(0));
  } else {
    const cv::Mat prior = use_prior ? mask_prior(mask(roi), omega, o.mask_prior_sigma) : cv::Mat();
    const cv::Mat a = closed_form_alpha(image(roi), trimap(roi), solver, &r.solve, prior);
    if (roi.size() == image.size()) {
      r.alpha = a;
    } else {
      r.alpha = cv::Mat(image.size(), CV_32F, cv::Scalar(0));
      a.copyTo(r.alpha(roi));
    }
  }
  SEMAT_LOG_DEBUG("matting", "closed-form: " << r.solve.unknown << " unknown px, "
                                             << r.solve.iterations << " CG iterations, "
                                             << r.solve.levels << " levels, residual "
                                             << r.solve.relative_residual << ", "
                                             << r.solve.seconds << " s");
  r.foreground = estimate_foreground(image, r.alpha, o.foreground).foreground;
}

cv::Mat refine_in_band(const cv::Mat& image, const cv::Mat& alpha, const cv::Mat& trimap,
                       const MatteOptions& o, SolveStats* stats) {
  const cv::Mat band = trimap == kUnknown;
  if (cv::countNonZero(band) == 0 || cv::countNonZero(trimap == kForeground) == 0 ||
      cv::countNonZero(trimap == kBackground) == 0)
    return alpha;  // nothing to sharpen, or no known colours to sharpen against
  ClosedFormParams params = o.solver;
  params.prior_weight = o.refine_prior_weight;
  const cv::Mat solved = closed_form_alpha(image, trimap, params, stats, alpha);
  cv::Mat out = alpha.clone();
  solved.copyTo(out, band);
  return out;
}

MatteResult matte_from_box(const cv::Mat& image, const Box& box, const MatteOptions& o) {
  Timer t;
  const cv::Mat mask = grabcut_mask(image, box, o.grabcut);
  SEMAT_LOG_DEBUG("matting", "GrabCut mask: " << cv::countNonZero(mask) << " px in " << t.seconds() << " s");
  MatteResult r = matte_from_mask(image, mask, box, o);
  r.seconds = t.seconds();
  return r;
}

MatteResult matte_from_mask(const cv::Mat& image, const cv::Mat& mask, std::optional<Box> box,
                            const MatteOptions& o) {
  SEMAT_CHECK(mask.type() == CV_8UC1 && mask.size() == image.size(), InvalidArgument,
              "matte_from_mask: CV_8U mask of the image's size expected");
  Timer t;
  MatteResult r;
  r.box = box;
  r.mask = mask;
  TrimapResult tr = mask_to_trimap(mask, o.trimap);
  r.trimap = tr.trimap;
  r.omega = tr.omega;
  solve_in_trimap(image, r.trimap, r.mask, r.omega, o, r);
  r.seconds = t.seconds();
  return r;
}

MatteResult matte_from_trimap(const cv::Mat& image, const cv::Mat& trimap, const MatteOptions& o) {
  SEMAT_CHECK(trimap.type() == CV_8UC1 && trimap.size() == image.size(), InvalidArgument,
              "trimap size " << trimap.cols << "x" << trimap.rows << " differs from image size "
                             << image.cols << "x" << image.rows);
  Timer t;
  MatteResult r;
  r.trimap = trimap;
  solve_in_trimap(image, r.trimap, cv::Mat(), 0, o, r);
  r.seconds = t.seconds();
  return r;
}

}  // namespace semat::matting
