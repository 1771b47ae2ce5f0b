// SEMat (Semantic-Enhanced Matting, SAM or HQ-SAM ViT backbone) from C++ without LibTorch in
// the caller's includes: box in, alpha matte out.
//
//   semat::models::SematPredictor semat("SEMat_SAM.pth");
//   auto mattes = semat.predict(cv::imread("photo.jpg"), {semat::Box{40, 30, 300, 420}});
//   cv::Mat alpha = mattes[0].alpha;   // CV_32F in [0, 1] at the image's size
//   cv::Mat trimap = mattes[0].trimap; // CV_8U 0/128/255, argmax of the matting-token logits
//
// Constructing a predictor changes nothing process-wide: call semat::models::configure_runtime()
// (semat/models/runtime.h) once first to run on every core, as the semat CLI does.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "semat/core/channel_order.h"
#include "semat/core/geometry.h"
#include "semat/io/checkpoint.h"
#include "semat/models/semat_config.h"

namespace semat::models {

/// How the image is resized to the model's S x S frame (long side S, then zero padding).
enum class SematResize {
  /// cv::resize INTER_LINEAR on the 8-bit image, as the official demo.py: reproduces the
  /// official numbers (and the semat_tiny fixture) exactly. The default.
  kOpenCV,
  /// Pillow bilinear (antialiased when shrinking), as segment-anything's predictor.
  kPil,
  /// Float bilinear without antialiasing (F.interpolate, align_corners=False), as the official
  /// evaluation loader (main.py --eval-only); the network part is identical.
  kTorch,
};

/// "cv2" / "opencv", "pil", "torch"; throws ConfigError otherwise.
SematResize parse_semat_resize(const std::string& name);

struct SematPredictorOptions {
  std::string model_type = "auto";  ///< auto (from tensor shapes) or a semat_preset name
  std::string device = "auto";      ///< auto (CUDA when available), cpu, cuda
  /// The SAM ViT encoder's arithmetic: fp32 (the reference), bf16 or auto
  /// (semat/models/precision.h); bf16 merges LoRA first whatever merge_lora says. The prompt
  /// enhancement, mask decoder and matting decoder stay float32.
  std::string precision = "fp32";
  SematResize resize = SematResize::kOpenCV;
  /// Fold LoRA into the base weights after loading (same result to float rounding, faster).
  bool merge_lora = true;
  /// Boxes per encoder pass (each box enters the encoder, so each costs one ViT pass). 0 = auto:
  /// 4 on CUDA, 1 on CPU, where batching gains nothing (ViT-B, 2 cores: 8.6 s per box in
  /// batches of 4 vs 7.7 s one by one) and needs 3x the memory (5.2 vs 1.6 GB).
  int batch_size = 0;
};

/// One box's result. Sizes are the original image's unless noted.
struct SematMatte {
  Box box;              ///< the box as given (original pixels)
  float box_model[4];   ///< x1, y1, x2, y2 in the S x S frame: int(v * scale + 0.5), clipped
  cv::Mat alpha;        ///< CV_32F in [0, 1]: the cropped model alpha, bilinearly resized
  cv::Mat alpha_model;  ///< CV_32F in [0, 1] at the resized size (new_h x new_w), no padding:
                        ///< what the official code returns
  cv::Mat trimap;       ///< CV_8U 0/128/255: argmax over (bg, unknown, fg) matting logits
  cv::Mat sam_mask;     ///< CV_8U 0/255: SAM-token logits > 0 (HQ variant: the HQ token's)
};

class SematPredictor {
 public:
  using Options = SematPredictorOptions;

  /// Loads an official SEMat checkpoint (.pth or .safetensors). `sam_checkpoint` (optional, may
  /// be empty) supplies the SAM weights a slim SEMat checkpoint lacks. Throws CheckpointError
  /// (also for SAM / HQ-SAM / SAM 2 checkpoints given as SEMat) or IoError.
  explicit SematPredictor(const std::string& semat_checkpoint,
                          const std::string& sam_checkpoint = "", const Options& options = {});
  SematPredictor(const io::Checkpoint& semat_checkpoint, const io::Checkpoint* sam_checkpoint,
                 const Options& options = {});
  ~SematPredictor();
  SematPredictor(const SematPredictor&) = delete;
  SematPredictor& operator=(const SematPredictor&) = delete;

  const SematConfig& config() const;
  std::string device() const;
  /// What the encoder runs in: "fp32" or "bf16".
  std::string precision() const;

  /// `image`: CV_8UC3 in `order` (BGR by default; RGB is read without a conversion copy). One
  /// matte per box (boxes inside the image, in pixels); the boxes are batched through the encoder
  /// `batch_size` at a time, and the box-independent patch embedding is computed once.
  std::vector<SematMatte> predict(const cv::Mat& image, const std::vector<Box>& boxes,
                                  ChannelOrder order = ChannelOrder::kBGR) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semat::models
