// Internals of training_set.cpp shared with augment.cpp (and the tests through the public API
// only): the per-sample generator and the two augmentation pipelines.
#pragma once

#include <cstdint>
#include <random>

#include <opencv2/core/mat.hpp>

#include "semat/core/hash.h"
#include "semat/data/training_set.h"

namespace semat::data::detail {


/// The generator of one sample. std::mt19937_64's output sequence is fixed by the C++ standard,
/// but std:: distributions are not (libstdc++ and libc++ differ), so the helpers below map raw
/// 64-bit outputs themselves: the same (seed, index) gives the same sample with any toolchain.
class Rng {
 public:
  Rng(uint64_t seed, int64_t index);
  uint64_t bits() { return g_(); }
  /// Uniform in [0, 1), 53 random bits.
  double uniform() { return static_cast<double>(g_() >> 11) * 0x1.0p-53; }
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  /// Uniform integer in [lo, hi] (both included); lo when hi <= lo.
  int64_t integer(int64_t lo, int64_t hi);
  bool chance(double p) { return uniform() < p; }

 private:
  std::mt19937_64 g_;
};

/// Maps any grey level to the canonical trimap byte: 0 if < 85, 255 if >= 170, else 128 (the
/// official thresholds; 0/128/255 files decode to themselves).
void canonical_trimap(cv::Mat& t8);

/// COCO-Matting pipeline (8.3): flip, random resize (random interpolation per panel), crop kept
/// on the subject, zero pad, HSV jitter, box. Inputs: BGR image, alpha and trimap bytes of the
/// same size (trimap canonical 0/128/255).
TrainingSample augment_matting(const cv::Mat& bgr, const cv::Mat& alpha8, const cv::Mat& trimap8,
                               const AugmentConfig& cfg, Rng& rng);

/// Puts a second foreground behind the first (resized to its size): colour = fg1 * a1 +
/// fg2 * (1 - a1), alpha = 1 - (1 - a1)(1 - a2). Modifies fg/alpha in place.
void merge_foregrounds(cv::Mat& fg, cv::Mat& alpha8, const cv::Mat& fg2, const cv::Mat& alpha2);

/// The official square resize of a composition foreground and its alpha (same random
/// interpolation for both, drawn from nearest / linear / cubic / Lanczos).
void square_resize(cv::Mat& fg, cv::Mat& alpha8, int side, Rng& rng);

/// Composition pipeline: random affine, trimap by random erosion, crop around an unknown pixel,
/// HSV jitter of the foreground, composite over the background, box.
TrainingSample augment_composition(const cv::Mat& fg, const cv::Mat& alpha8, const cv::Mat& bg,
                                   const AugmentConfig& cfg, Rng& rng);

}  // namespace semat::data::detail
