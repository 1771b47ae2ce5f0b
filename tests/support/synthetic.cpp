#include "support/synthetic.h"

#include <cmath>
#include <random>

#include <opencv2/imgproc.hpp>

#include "semat/matting/trimap.h"

namespace semat::test {

Scene make_scene(int w, int h, unsigned seed, double contrast, int margin) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Scene s;

  // Alpha: a hard shape rendered at 4x and area-downsampled (antialiased edge), then softened.
  const int k = 4;
  cv::Mat big = cv::Mat::zeros(h * k, w * k, CV_8U);
  const cv::Point c(static_cast<int>(w * k * (0.45 + 0.1 * u(rng))),
                    static_cast<int>(h * k * (0.45 + 0.1 * u(rng))));
  cv::ellipse(big, c, cv::Size(w * k / 6, h * k / 5), 0, 0, 360, 255, cv::FILLED);
  cv::rectangle(big, cv::Point(c.x - w * k / 5, c.y + h * k / 10),
                cv::Point(c.x + w * k / 5, c.y + h * k / 3), 255, cv::FILLED);
  cv::Mat a8;
  cv::resize(big, a8, {w, h}, 0, 0, cv::INTER_AREA);
  a8.convertTo(s.alpha, CV_32F, 1.0 / 255);
  cv::GaussianBlur(s.alpha, s.alpha, {0, 0}, 1.5);
  // Thin strands ("hair") leaving the top of the blob.
  cv::Mat strands = cv::Mat::zeros(h * k, w * k, CV_8U);
  for (int i = 0; i < 5; ++i) {
    const double ang = -M_PI / 2 + (u(rng) - 0.5) * 1.6;
    const cv::Point p0(c.x, c.y - h * k / 8);
    const double len = h * k * (0.25 + 0.1 * u(rng));
    const cv::Point p1(static_cast<int>(p0.x + len * std::cos(ang)), static_cast<int>(p0.y + len * std::sin(ang)));
    cv::line(strands, p0, p1, 255, 5, cv::LINE_AA);
  }
  cv::Mat st8, st;
  cv::resize(strands, st8, {w, h}, 0, 0, cv::INTER_AREA);
  st8.convertTo(st, CV_32F, 0.8 / 255);
  s.alpha = cv::max(s.alpha, st);
  cv::threshold(s.alpha, s.alpha, 0.002, 0, cv::THRESH_TOZERO);
  cv::min(s.alpha, 1.0, s.alpha);
  s.alpha.setTo(1.0f, s.alpha > 0.998f);

  // Textured fields that each vary along one colour direction, so every 3x3 window satisfies
  // closed-form matting's colour-line model (F and B on a line each) up to 8-bit rounding.
  s.foreground.create(h, w, CV_32FC3);
  s.background.create(h, w, CV_32FC3);
  const double ph = u(rng) * 6;
  const cv::Vec3f f0(0.15f, 0.2f, 0.3f), df(0.1f, 0.06f, 0.02f);
  const cv::Vec3f b0(0.7f, 0.68f, 0.62f), db(0.12f, 0.1f, 0.14f);
  const cv::Vec3f grey(0.6f, 0.6f, 0.6f);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float g = static_cast<float>(static_cast<double>(x + y) / (w + h));
      const float t = static_cast<float>(std::sin(x / 7.0 + ph) * std::cos(y / 9.0 + ph) +
                                         0.3 * std::sin((x + 2 * y) / 4.0));
      const cv::Vec3f f = f0 + g * df;
      // Blend the foreground towards grey to lower the contrast.
      s.foreground.at<cv::Vec3f>(y, x) = static_cast<float>(contrast) * f + static_cast<float>(1 - contrast) * grey;
      s.background.at<cv::Vec3f>(y, x) = b0 + t * db;
    }
  cv::Mat a3, comp;
  cv::merge(std::vector<cv::Mat>{s.alpha, s.alpha, s.alpha}, a3);
  comp = s.foreground.mul(a3) + s.background.mul(cv::Scalar::all(1.0) - a3);
  comp.convertTo(s.image, CV_8UC3, 255.0);

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
