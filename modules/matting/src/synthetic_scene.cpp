#include "semat/matting/synthetic_scene.h"

#include <cmath>
#include <random>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"

namespace semat::matting {

SceneVariety SceneVariety::varied() {
  SceneVariety v;
  v.centre_x = v.centre_y = {0.35, 0.3};
  v.axis_x = v.axis_y = {0.1, 0.1};
  v.angle = {0, 360};
  v.body_half_width = {0.08, 0.12};
  v.body_length = {0.1, 0.15};
  v.edge_blur = {0.5, 1.5};
  v.strand_count = {3, 5};
  v.strand_angle = {0, 2 * M_PI};
  v.strand_length = {0.12, 0.15};
  v.strand_width = {3, 4};
  v.strand_opacity = {0.5, 0.4};
  for (int ch = 0; ch < 3; ++ch) {
    v.foreground[ch] = {0, 1};
    v.background[ch] = {0, 1};
    v.texture[ch] = {0, 0.3};
  }
  v.texture_phase = {0, 6};
  v.texture_period_x = v.texture_period_y = {4, 8};
  return v;
}

SceneVariety SceneVariety::upright() {
  SceneVariety v;
  v.centre_x = v.centre_y = {0.45, 0.1};
  v.axis_x = {1.0 / 6, 0};
  v.axis_y = {0.2, 0};
  v.angle = {0, 0};
  v.body_half_width = {0.2, 0};
  v.body_length = {1.0 / 3, 0};
  v.edge_blur = {1.5, 0};
  v.strand_count = {5, 0};
  v.strand_angle = {-M_PI / 2 - 0.8, 1.6};  // within 46 degrees of straight up
  v.strand_length = {0.3, 0.1};
  v.strand_width = {5, 0};
  v.strand_opacity = {0.8, 0};
  const double fg[3] = {0.17, 0.22, 0.33}, bg[3] = {1.0, 0.97, 0.89}, tex[3] = {0.12, 0.1, 0.14};
  for (int ch = 0; ch < 3; ++ch) {
    v.foreground[ch] = {fg[ch], 0};
    v.background[ch] = {bg[ch], 0};
    v.texture[ch] = {tex[ch], 0};
  }
  v.texture_phase = {0, 6};
  v.texture_period_x = {7, 0};
  v.texture_period_y = {9, 0};
  return v;
}

// The order of the draws below is part of every scene's definition: the trainer's generated
// data (and so its training results) stay the same only while it does. Where a pair or a colour
// is drawn, the later coordinate or channel comes first; that is the order the trainer's
// scenes were first generated in.
SyntheticScene synthesize_scene(cv::Size size, std::uint64_t seed, const SceneVariety& v) {
  SEMAT_CHECK(size.width >= 8 && size.height >= 8, InvalidArgument,
              "synthetic scene: size " << size.width << " x " << size.height << " is below 8 x 8");
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const auto draw = [&](const Uniform& d) { return d.at(uniform(rng)); };
  const auto draw_int = [&](const Uniform& d) {
    return static_cast<int>(d.base) + static_cast<int>(uniform(rng) * d.spread);
  };
  const int w = size.width, h = size.height;
  const int k = 4;  // drawn at 4x and area-downsampled for anti-aliased edges
  const int W = w * k, H = h * k;

  // Alpha: the body, softened, then the strands on top.
  cv::Mat big = cv::Mat::zeros(H, W, CV_8U);
  const int cy = static_cast<int>(H * draw(v.centre_y));
  const int cx = static_cast<int>(W * draw(v.centre_x));
  const cv::Point c(cx, cy);
  const int ay = static_cast<int>(H * draw(v.axis_y));
  const int ax = static_cast<int>(W * draw(v.axis_x));
  cv::ellipse(big, c, cv::Size(ax, ay), draw(v.angle), 0, 360, 255, cv::FILLED);
  const int bw = static_cast<int>(W * draw(v.body_half_width));
  const int bl = static_cast<int>(H * draw(v.body_length));
  cv::rectangle(big, cv::Point(c.x - bw, c.y), cv::Point(c.x + bw, c.y + bl), 255, cv::FILLED);
  cv::Mat a8, a;
  cv::resize(big, a8, size, 0, 0, cv::INTER_AREA);
  a8.convertTo(a, CV_32F, 1.0 / 255);
  cv::GaussianBlur(a, a, {0, 0}, draw(v.edge_blur));
  cv::Mat strands = cv::Mat::zeros(H, W, CV_8U);
  const int n = draw_int(v.strand_count);
  for (int i = 0; i < n; ++i) {
    const double angle = draw(v.strand_angle);
    const double length = H * draw(v.strand_length);
    const cv::Point end(static_cast<int>(c.x + length * std::cos(angle)),
                        static_cast<int>(c.y + length * std::sin(angle)));
    cv::line(strands, c, end, 255, draw_int(v.strand_width), cv::LINE_AA);
  }
  cv::Mat st8, st;
  cv::resize(strands, st8, size, 0, 0, cv::INTER_AREA);
  st8.convertTo(st, CV_32F, draw(v.strand_opacity) / 255);
  a = cv::max(a, st);
  // Blur tails and 8-bit steps near 0 and 1 become exact 0 and 1: the known regions are exact.
  cv::threshold(a, a, 0.004, 0, cv::THRESH_TOZERO);
  cv::min(a, 1.0, a);
  a.setTo(1.0f, a > 0.996f);

  SyntheticScene s;
  s.alpha = a;
  const auto draw_colour = [&](const Uniform* d) {
    cv::Vec3f colour;
    for (int ch = 2; ch >= 0; --ch) colour[ch] = static_cast<float>(draw(d[ch]));
    return colour;
  };
  const cv::Vec3f f0 = draw_colour(v.foreground);
  const cv::Vec3f b0 = draw_colour(v.background);
  const cv::Vec3f db = draw_colour(v.texture);
  const double phase = draw(v.texture_phase);
  const double px = draw(v.texture_period_x);
  const double py = draw(v.texture_period_y);
  s.foreground.create(h, w, CV_32FC3);
  s.background.create(h, w, CV_32FC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float g = static_cast<float>(x + y) / static_cast<float>(w + h);
      const float t = static_cast<float>(std::sin(x / px + phase) * std::cos(y / py + phase));
      s.foreground.at<cv::Vec3f>(y, x) = f0 * (0.8f + 0.2f * g);
      s.background.at<cv::Vec3f>(y, x) = b0 * 0.7f + t * db;
    }
  cv::Mat a3, composite;
  cv::merge(std::vector<cv::Mat>{a, a, a}, a3);
  composite = s.foreground.mul(a3) + s.background.mul(cv::Scalar::all(1.0) - a3);
  composite.convertTo(s.image, CV_8UC3, 255.0);
  return s;
}

}  // namespace semat::matting
