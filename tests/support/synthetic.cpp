#include "support/synthetic.h"

#include <algorithm>

#include <opencv2/imgproc.hpp>

#include "semat/matting/synthetic_scene.h"
#include "semat/matting/trimap.h"

namespace semat::test {

Scene make_scene(int w, int h, unsigned seed, int margin) {
  matting::SyntheticScene made =
      matting::synthesize_scene({w, h}, seed, matting::SceneVariety::upright());
  Scene s;
  s.image = made.image;
  s.alpha = made.alpha;
  s.foreground = made.foreground;
  s.background = made.background;
  const cv::Rect r = cv::boundingRect(s.alpha > 0);
  s.box = Box{std::max(0.0, r.x - margin * 1.0), std::max(0.0, r.y - margin * 1.0),
              std::min<double>(w, r.x + r.width + margin), std::min<double>(h, r.y + r.height + margin)};
  return s;
}

cv::Mat true_trimap(const cv::Mat& alpha, int pad) {
  cv::Mat unknown = (alpha > 0) & (alpha < 1);
  if (pad > 0) cv::dilate(unknown, unknown, cv::getStructuringElement(cv::MORPH_RECT, {2 * pad + 1, 2 * pad + 1}));
  cv::Mat t(alpha.size(), CV_8U, cv::Scalar(matting::kBackground));
  t.setTo(matting::kForeground, alpha >= 1);
  t.setTo(matting::kUnknown, unknown);
  return t;
}

double mse(const cv::Mat& a, const cv::Mat& b, const cv::Mat& where) {
  cv::Mat d;
  cv::subtract(a, b, d, cv::noArray(), CV_64F);
  d = d.mul(d);
  if (where.empty()) return cv::mean(d)[0];
  return cv::mean(d, where)[0];
}

double iou_half(const cv::Mat& a, const cv::Mat& b) {
  const cv::Mat ma = a > 0.5, mb = b > 0.5;
  const double inter = cv::countNonZero(ma & mb), uni = cv::countNonZero(ma | mb);
  return uni > 0 ? inter / uni : 1.0;
}

}  // namespace semat::test
