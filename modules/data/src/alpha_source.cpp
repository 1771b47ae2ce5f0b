#include "semat/data/alpha_source.h"

#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/matting/pipeline.h"

namespace semat::data {

ClosedFormSourceOptions::ClosedFormSourceOptions() {
  const matting::MatteOptions defaults;
  solver = defaults.solver;
  mask_prior_weight = defaults.mask_prior_weight;
  mask_prior_sigma = defaults.mask_prior_sigma;
}

namespace {

class ClosedFormSource : public AlphaSource {
 public:
  explicit ClosedFormSource(const ClosedFormSourceOptions& o) : o_(o) {}

  std::string name() const override { return "closed-form"; }

  cv::Mat alpha(const AlphaRequest& r) override {
    const cv::Mat& image = r.image;
    const cv::Mat& trimap = r.trimap;
    const cv::Mat& mask = r.mask;
    SEMAT_CHECK(image.type() == CV_8UC3 && trimap.type() == CV_8UC1 && mask.type() == CV_8UC1 &&
                    trimap.size() == image.size() && mask.size() == image.size(),
                InvalidArgument,
                "closed-form source: BGR image, trimap and mask of one size expected");
    cv::Mat full(image.size(), CV_32F, cv::Scalar(0));
    const cv::Rect bound = cv::boundingRect(trimap);  // non-background pixels
    if (bound.area() == 0) return full;
    const int m = o_.crop_margin;
    const cv::Rect roi =
        cv::Rect(bound.x - m, bound.y - m, bound.width + 2 * m, bound.height + 2 * m) &
        cv::Rect(0, 0, image.cols, image.rows);
    const cv::Mat tri = trimap(roi);
    matting::ClosedFormParams solver = o_.solver;
    cv::Mat prior;
    if (o_.mask_prior_weight > 0) {
      // The prior matting::matte_from_mask uses: the mask blurred by a fraction of omega.
      mask(roi).convertTo(prior, CV_32F, 1.0 / 255);
      cv::threshold(prior, prior, 0, 1.0, cv::THRESH_BINARY);
      cv::GaussianBlur(prior, prior, {0, 0}, std::max(0.5, o_.mask_prior_sigma * r.omega));
      solver.prior_weight = o_.mask_prior_weight;
    }
    const cv::Mat a = matting::closed_form_alpha(image(roi), tri, solver, nullptr, prior);
    a.copyTo(full(roi));
    return full;
  }

 private:
  ClosedFormSourceOptions o_;
};

}  // namespace

std::unique_ptr<AlphaSource> make_closed_form_source(const ClosedFormSourceOptions& options) {
  return std::make_unique<ClosedFormSource>(options);
}

}  // namespace semat::data
