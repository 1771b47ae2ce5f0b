#include "semat/matting/pipeline.h"

#include <algorithm>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"

namespace semat::matting {
namespace {

void solve_alpha_and_foreground(const cv::Mat& image, const MatteOptions& o, MatteResult& r) {
  ClosedFormParams solver = o.solver;
  cv::Mat prior;
  if (!r.mask.empty() && o.mask_prior_weight > 0) {
    r.mask.convertTo(prior, CV_32F, 1.0 / 255);
    const double sigma = std::max(0.5, o.mask_prior_sigma * r.omega);
    cv::GaussianBlur(prior, prior, {0, 0}, sigma);
    solver.prior_weight = o.mask_prior_weight;
  }
  r.alpha = closed_form_alpha(image, r.trimap, solver, &r.solve, prior);
  SEMAT_LOG_DEBUG("matting", "closed-form: " << r.solve.unknown << " unknown px, "
                                             << r.solve.iterations << " CG iterations, "
                                             << r.solve.levels << " levels, residual "
                                             << r.solve.relative_residual << ", "
                                             << r.solve.seconds << " s");
  r.foreground = estimate_foreground(image, r.alpha, o.foreground).foreground;
}

}  // namespace

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
  solve_alpha_and_foreground(image, o, r);
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
  solve_alpha_and_foreground(image, o, r);
  r.seconds = t.seconds();
  return r;
}

}  // namespace semat::matting
