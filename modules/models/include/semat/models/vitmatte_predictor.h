// ViTMatte (trimap-based matting, hustvl/ViTMatte) from C++ without LibTorch in the caller's
// includes: image + trimap in, alpha out.
//
//   semat::models::VitMattePredictor vitmatte("ViTMatte_S_Com.pth");
//   cv::Mat alpha = vitmatte.predict(cv::imread("photo.jpg"), trimap).alpha;  // CV_32F [0, 1]
//
// The network sees the official input: RGB / 255 normalised with the ImageNet statistics, the
// trimap / 255 as a fourth channel (any grey level passes, not quantised), zero padding by the
// official +32 rule. Its output is returned raw: no "known pixels from the trimap" fix-up (the
// engine applies one). Call semat::models::configure_runtime() first to use every core.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <opencv2/core/mat.hpp>

#include "semat/core/channel_order.h"
#include "semat/io/checkpoint.h"
#include "semat/models/vitmatte_config.h"

namespace semat::models {

struct VitMattePredictorOptions {
  std::string model_type = "auto";  ///< auto (from tensor shapes) or a vitmatte_preset name
  std::string device = "auto";      ///< auto (CUDA when available), cpu, cuda
  /// Largest image (pixels) the network runs on at full resolution; a larger one is shrunk
  /// (INTER_AREA, the trimap nearest) to fit, run, and the alpha resized back bilinearly
  /// (VitMatteAlpha::scale < 1 tells the caller to sharpen it, e.g. closed-form in the band).
  /// Memory grows about linearly with the pixels (global attention runs in query blocks; the
  /// decoder's full-resolution layers dominate): measured peak RSS at 1024 x 1024 on CPU 1.9 GiB
  /// (S) / 2.1 GiB (B) for the whole process, 6.9 GiB for S at the default cap, 2048 x 2048
  /// (B there not measured; expect a little more). Lower it on small machines. 0: no cap.
  int64_t max_pixels = int64_t{2048} * 2048;
};

struct VitMatteAlpha {
  cv::Mat alpha;       ///< CV_32F in [0, 1], the image's size: the network's output
  double scale = 1.0;  ///< the size the network ran at / the image's size (1: full resolution)
};

class VitMattePredictor {
 public:
  using Options = VitMattePredictorOptions;

  /// Loads a ViTMatte checkpoint (.pth as released, {"model": state_dict}, or a bare state dict;
  /// .safetensors) strictly. Throws CheckpointError (naming every wrong tensor, or the family
  /// of a checkpoint that is not ViTMatte) or IoError.
  explicit VitMattePredictor(const std::string& checkpoint, const Options& options = {});
  VitMattePredictor(const io::Checkpoint& checkpoint, const Options& options = {});
  ~VitMattePredictor();
  VitMattePredictor(const VitMattePredictor&) = delete;
  VitMattePredictor& operator=(const VitMattePredictor&) = delete;

  const VitMatteConfig& config() const;
  std::string device() const;

  /// `image`: CV_8UC3 in `order` (BGR by default); `trimap`: CV_8UC1 of its size (0 background,
  /// 255 foreground, anything between unknown; the network sees value / 255). Not thread-safe:
  /// callers serialise.
  VitMatteAlpha predict(const cv::Mat& image, const cv::Mat& trimap, ChannelOrder order = ChannelOrder::kBGR) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct DiffMattePredictorOptions {
  std::string model_type = "auto";  ///< auto (from tensor shapes) or a diffmatte_preset name
  std::string device = "auto";
  int64_t max_pixels = int64_t{2048} * 2048;  ///< as VitMattePredictorOptions::max_pixels
  int steps = 10;                             ///< DDIM steps (the official default, ddim10)
  /// Seed of the starting noise x_T (torch's CPU generator; seed 0 reproduces the fixture's
  /// torch.manual_seed(0)). The official script leaves it unseeded.
  uint64_t seed = 0;
};

/// DiffMatte (YihanHu-2022/DiffMatte): the ViT once, then `steps` decoder passes. The trimap is
/// quantised (> 0.9 -> 1, < 0.1 -> 0, else 0.5) as the official get_data; the output is the
/// official one: clamp to [0, 1], 0 where the trimap is background, the known foreground not
/// forced (the official `trimap == 2` test never matches; the engine forces it).
class DiffMattePredictor {
 public:
  using Options = DiffMattePredictorOptions;
  explicit DiffMattePredictor(const std::string& checkpoint, const Options& options = {});
  DiffMattePredictor(const io::Checkpoint& checkpoint, const Options& options = {});
  ~DiffMattePredictor();
  DiffMattePredictor(const DiffMattePredictor&) = delete;
  DiffMattePredictor& operator=(const DiffMattePredictor&) = delete;

  const DiffMatteConfig& config() const;
  std::string device() const;
  /// As VitMattePredictor::predict. Not thread-safe: callers serialise.
  VitMatteAlpha predict(const cv::Mat& image, const cv::Mat& trimap, ChannelOrder order = ChannelOrder::kBGR) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semat::models
