#include "semat/train/synthetic_data.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "semat/core/hash.h"

namespace semat::train {
namespace {


// A soft-edged body (ellipse + rectangle, random pose) with thin semi-transparent strands, a
// smooth foreground colour over a textured background: hair-like fine structure and a solid
// core, the two regimes SEMat's unknown/known losses care about.
void make_scene(int s, std::mt19937_64& rng, cv::Mat* image, cv::Mat* alpha) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const int k = 4;  // render at 4x and area-downsample for anti-aliased edges
  const int S = s * k;
  cv::Mat big = cv::Mat::zeros(S, S, CV_8U);
  const cv::Point c(static_cast<int>(S * (0.35 + 0.3 * u(rng))), static_cast<int>(S * (0.35 + 0.3 * u(rng))));
  const cv::Size axes(static_cast<int>(S * (0.1 + 0.1 * u(rng))), static_cast<int>(S * (0.1 + 0.1 * u(rng))));
  cv::ellipse(big, c, axes, 360 * u(rng), 0, 360, 255, cv::FILLED);
  const int bw = static_cast<int>(S * (0.08 + 0.12 * u(rng)));
  cv::rectangle(big, cv::Point(c.x - bw, c.y), cv::Point(c.x + bw, c.y + static_cast<int>(S * (0.1 + 0.15 * u(rng)))),
                255, cv::FILLED);
  cv::Mat a8, a;
  cv::resize(big, a8, {s, s}, 0, 0, cv::INTER_AREA);
  a8.convertTo(a, CV_32F, 1.0 / 255);
  cv::GaussianBlur(a, a, {0, 0}, 0.5 + 1.5 * u(rng));
  cv::Mat strands = cv::Mat::zeros(S, S, CV_8U);
  const int n = 3 + static_cast<int>(u(rng) * 5);
  for (int i = 0; i < n; ++i) {
    const double ang = 2 * M_PI * u(rng);
    const double len = S * (0.12 + 0.15 * u(rng));
    const cv::Point p1(static_cast<int>(c.x + len * std::cos(ang)), static_cast<int>(c.y + len * std::sin(ang)));
    cv::line(strands, c, p1, 255, 3 + static_cast<int>(u(rng) * 4), cv::LINE_AA);
  }
  cv::Mat st8, st;
  cv::resize(strands, st8, {s, s}, 0, 0, cv::INTER_AREA);
  st8.convertTo(st, CV_32F, (0.5 + 0.4 * u(rng)) / 255);
  a = cv::max(a, st);
  cv::threshold(a, a, 0.004, 0, cv::THRESH_TOZERO);
  cv::min(a, 1.0, a);
  a.setTo(1.0f, a > 0.996f);
  *alpha = a;

  cv::Mat fg(s, s, CV_32FC3), bg(s, s, CV_32FC3);
  const cv::Vec3f f0(static_cast<float>(u(rng)), static_cast<float>(u(rng)), static_cast<float>(u(rng)));
  const cv::Vec3f b0(static_cast<float>(u(rng)), static_cast<float>(u(rng)), static_cast<float>(u(rng)));
  const cv::Vec3f db(static_cast<float>(0.3 * u(rng)), static_cast<float>(0.3 * u(rng)), static_cast<float>(0.3 * u(rng)));
  const double ph = 6 * u(rng), fx = 4 + 8 * u(rng), fy = 4 + 8 * u(rng);
  for (int y = 0; y < s; ++y)
    for (int x = 0; x < s; ++x) {
      const float g = static_cast<float>(x + y) / static_cast<float>(2 * s);
      const float t = static_cast<float>(std::sin(x / fx + ph) * std::cos(y / fy + ph));
      fg.at<cv::Vec3f>(y, x) = f0 * (0.8f + 0.2f * g);
      bg.at<cv::Vec3f>(y, x) = b0 * 0.7f + t * db;
    }
  cv::Mat a3, comp;
  cv::merge(std::vector<cv::Mat>{a, a, a}, a3);
  comp = fg.mul(a3) + bg.mul(cv::Scalar::all(1.0) - a3);
  comp.convertTo(*image, CV_8UC3, 255.0);
}

cv::Mat disk(int r) { return cv::getStructuringElement(cv::MORPH_ELLIPSE, {2 * r + 1, 2 * r + 1}); }

}  // namespace

SyntheticDataset::SyntheticDataset(SyntheticDataConfig config, uint64_t seed)
    : config_(config), seed_(seed) {}

Sample SyntheticDataset::get(int64_t index) const {
  const uint64_t scene_index =
      config_.samples > 0 ? static_cast<uint64_t>(index % config_.samples) : static_cast<uint64_t>(index);
  std::mt19937_64 scene_rng(splitmix64(splitmix64(seed_) ^ splitmix64(scene_index * 2 + 1)));
  std::mt19937_64 aug_rng(splitmix64(splitmix64(seed_ + 1) ^ splitmix64(static_cast<uint64_t>(index) * 2)));
  const int s = static_cast<int>(config_.size);
  Sample out;
  out.source = "synthetic:" + std::to_string(scene_index);
  make_scene(s, scene_rng, &out.image, &out.alpha);

  // Trimap as matting datasets make them: known foreground = alpha == 1 eroded, known
  // background = alpha == 0 eroded (i.e. alpha > 0 dilated), with random radii.
  std::uniform_int_distribution<int> radius(static_cast<int>(config_.trimap_min_radius),
                                            static_cast<int>(config_.trimap_max_radius));
  cv::Mat fg, any;
  cv::erode(out.alpha >= 1.0f, fg, disk(radius(aug_rng)));
  cv::dilate(out.alpha > 0.0f, any, disk(radius(aug_rng)));
  out.trimap = cv::Mat(s, s, CV_32F, cv::Scalar(0.5f));
  out.trimap.setTo(0.0f, any == 0);
  out.trimap.setTo(1.0f, fg);

  const cv::Rect r = cv::boundingRect(out.alpha > 0.0f);
  std::uniform_real_distribution<double> jitter(-config_.box_jitter, config_.box_jitter);
  const double w = std::max(1, r.width), h = std::max(1, r.height);
  out.box[0] = std::clamp(r.x + jitter(aug_rng) * w, 0.0, s - 1.0);
  out.box[1] = std::clamp(r.y + jitter(aug_rng) * h, 0.0, s - 1.0);
  out.box[2] = std::clamp(r.x + r.width + jitter(aug_rng) * w, out.box[0] + 1, static_cast<double>(s));
  out.box[3] = std::clamp(r.y + r.height + jitter(aug_rng) * h, out.box[1] + 1, static_cast<double>(s));
  return out;
}

}  // namespace semat::train
