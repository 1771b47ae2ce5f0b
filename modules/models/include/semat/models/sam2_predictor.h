// SAM 2's image predictor (sam2/sam2_image_predictor.py SAM2ImagePredictor) from C++ without
// LibTorch in the caller's includes. Loads the official sam2_hiera_{t,s,b+,l}.pt (SAM 2.0) and
// sam2.1_hiera_*.pt (SAM 2.1) checkpoints, or .safetensors with the same keys; the video-only
// entries are ignored.
//
//   semat::models::Sam2Predictor sam2("sam2_hiera_large.pt");
//   sam2.set_image(cv::imread("photo.jpg"));      // squashes to 1024x1024 and runs the encoder once
//   semat::models::SamPrompt prompt;
//   prompt.box = semat::Box{40, 30, 300, 420};
//   auto result = sam2.predict(prompt, /*multimask=*/false);
//   cv::Mat mask = result.mask(0);               // CV_8U 0/255 at the image's size
//
// Differences from SAM's predictor that this one reproduces: the image is resized to S x S without
// keeping the aspect (antialiased bilinear) and not padded; prompts scale by S/W and S/H; the box
// enters as two points (labels 2, 3) before the user points, plus a padding point; single-mask
// output falls back to the best multimask token when token 0 is unstable; low_res_logits are
// clamped to [-32, 32] while `logits` are upsampled from the unclamped ones.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "semat/core/channel_order.h"
#include "semat/core/geometry.h"
#include "semat/io/checkpoint.h"
#include "semat/models/sam2_config.h"
#include "semat/models/sam_predictor.h"

namespace semat::models {

/// True when the checkpoint holds a SAM 2 image model (image_encoder.trunk.* or
/// sam_mask_decoder.* entries): what `semat segment --sam` and the engine's "sam" row check to
/// pick this predictor over SamPredictor.
bool is_sam2_checkpoint(const io::Checkpoint& checkpoint);

struct Sam2PredictorOptions {
  /// auto (from the checkpoint's shapes), sam2_hiera_t, sam2_hiera_s, sam2_hiera_b+,
  /// sam2_hiera_l or sam2_tiny.
  std::string model_type = "auto";
  std::string device = "auto";  ///< auto (CUDA when available), cpu, cuda
  /// auto, fp32 or bf16 (semat/models/precision.h), as for SAM: auto = bf16 where the hardware
  /// has native bf16 matrix units, else fp32; bf16 without them is refused with one line
  /// (ConfigError). bf16 covers the Hiera trunk only (weights converted once at load); the FPN
  /// neck, the prompt encoder and the mask decoder stay float32.
  std::string precision = "fp32";
};

class Sam2Predictor {
 public:
  using Options = Sam2PredictorOptions;

  /// Throws CheckpointError (one line naming the tensor or the file) / IoError.
  explicit Sam2Predictor(const std::string& checkpoint, const Options& options = {});
  explicit Sam2Predictor(const io::Checkpoint& checkpoint, const Options& options = {});
  ~Sam2Predictor();
  Sam2Predictor(const Sam2Predictor&) = delete;
  Sam2Predictor& operator=(const Sam2Predictor&) = delete;

  const Sam2Config& config() const;
  std::string device() const;
  /// "fp32" or "bf16": what the Hiera trunk runs in (see Sam2PredictorOptions::precision).
  std::string precision() const;

  /// `image`: CV_8UC3 in `order` (as SamPredictor::set_image). Caches image_embed and the two
  /// high-res features.
  void set_image(const cv::Mat& image, ChannelOrder order = ChannelOrder::kBGR);
  bool has_image() const;
  cv::Size image_size() const;

  /// One prompt (box and/or points with labels 0/1, optional mask_input [S/4, S/4] logits).
  /// multimask: tokens 1..3; else one mask (token 0, or the dynamic fallback). Throws StateError
  /// before set_image, InvalidArgument for prompts outside the image or other labels.
  SamMasks predict(const SamPrompt& prompt, bool multimask) const;
  /// One box per result, decoded in one batch.
  std::vector<SamMasks> predict_boxes(const std::vector<Box>& boxes, bool multimask) const;

  /// input_tensor [1, 3, S, S], image_embed [1, D, S/16, S/16], high_res_feat0 [1, D/8, S/4, S/4],
  /// high_res_feat1 [1, D/4, S/8, S/8] of the current image.
  std::vector<io::TensorData> image_tensors() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semat::models
