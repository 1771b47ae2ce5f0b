// Matting scenes generated on the fly with known alpha, so SEMat can be trained and tested
// without any dataset on disk. A sample depends only on (seed, index): the same run always sees
// the same data, which is what makes a resumed run equal an uninterrupted one.
#pragma once

#include <cstdint>

#include <opencv2/core/mat.hpp>

#include "semat/train/train_config.h"

namespace semat::train {

struct Sample {
  cv::Mat image;   ///< CV_8UC3 RGB, size x size
  cv::Mat alpha;   ///< CV_32F in [0, 1]
  cv::Mat trimap;  ///< CV_32F: 0 background, 0.5 unknown, 1 foreground
  /// x1, y1, x2, y2 in pixels: tight box of alpha > 0 with random jitter, inside the image.
  double box[4] = {0, 0, 0, 0};
};

class SyntheticDataset {
 public:
  SyntheticDataset(SyntheticDataConfig config, uint64_t seed);

  /// Sample number `index` of the run (wraps around config.samples when that is > 0; the
  /// trimap and box jitter are drawn anew per index, the scene is the same).
  Sample get(int64_t index) const;

  const SyntheticDataConfig& config() const { return config_; }

 private:
  SyntheticDataConfig config_;
  uint64_t seed_;
};

}  // namespace semat::train
