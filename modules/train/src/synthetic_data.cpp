#include "semat/train/synthetic_data.h"

#include <algorithm>
#include <random>

#include <opencv2/imgproc.hpp>

#include "semat/core/hash.h"
#include "semat/matting/synthetic_scene.h"

namespace semat::train {
namespace {

cv::Mat disk(int r) { return cv::getStructuringElement(cv::MORPH_ELLIPSE, {2 * r + 1, 2 * r + 1}); }

}  // namespace

SyntheticDataset::SyntheticDataset(SyntheticDataConfig config, uint64_t seed)
    : config_(config), seed_(seed) {}

Sample SyntheticDataset::get(int64_t index) const {
  const uint64_t scene_index =
      config_.samples > 0 ? static_cast<uint64_t>(index % config_.samples) : static_cast<uint64_t>(index);
  const uint64_t scene_seed = splitmix64(splitmix64(seed_) ^ splitmix64(scene_index * 2 + 1));
  std::mt19937_64 aug_rng(splitmix64(splitmix64(seed_ + 1) ^ splitmix64(static_cast<uint64_t>(index) * 2)));
  const int s = static_cast<int>(config_.size);
  Sample out;
  out.source = "synthetic:" + std::to_string(scene_index);
  matting::SyntheticScene scene =
      matting::synthesize_scene({s, s}, scene_seed, matting::SceneVariety::varied());
  out.image = scene.image;
  out.alpha = scene.alpha;

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
