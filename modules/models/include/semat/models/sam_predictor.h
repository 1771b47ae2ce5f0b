// Segment Anything (SAM or HQ-SAM) from C++ without LibTorch in the caller's includes.
//
//   semat::models::SamPredictor sam("sam_vit_b_01ec64.pth");
//   sam.set_image(cv::imread("photo.jpg"));             // runs the image encoder once
//   semat::models::SamPrompt prompt;
//   prompt.box = semat::Box{40, 30, 300, 420};
//   auto result = sam.predict(prompt, /*multimask=*/false);
//   cv::Mat mask = result.mask(result.best());          // CV_8U 0/255 at the image's size
//
// Constructing a predictor changes nothing process-wide: call semat::models::configure_runtime()
// (semat/models/runtime.h) once first to run on every core, as the semat CLI does.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "semat/core/channel_order.h"
#include "semat/core/geometry.h"
#include "semat/io/checkpoint.h"
#include "semat/models/sam_config.h"

namespace semat::models {

/// Prompts in pixels of the original image. Labels: 1 foreground, 0 background.
struct SamPrompt {
  std::vector<cv::Point2f> points;
  std::vector<int> labels;
  std::optional<Box> box;
  cv::Mat mask_input;  ///< optional CV_32F [4g, 4g] low-res logits from an earlier prediction
};

struct SamMasks {
  std::vector<cv::Mat> logits;          ///< CV_32F at the original size, one per mask
  std::vector<cv::Mat> low_res_logits;  ///< CV_32F [4g, 4g] (256 x 256 for the official models)
  std::vector<float> iou;               ///< predicted IoU per mask

  /// Index of the mask with the highest predicted IoU.
  int best() const;
  /// logits[i] > threshold as CV_8U 0/255.
  cv::Mat mask(int i, float threshold = 0.0f) const;
};

struct SamPredictorOptions {
  /// auto (from tensor shapes: tells SAM from HQ-SAM), vit_b, vit_l, vit_h, tiny, or the HQ-SAM
  /// types hq_vit_b, hq_vit_l, hq_vit_h, hq_tiny.
  std::string model_type = "auto";
  std::string device = "auto";      ///< auto (CUDA when available), cpu, cuda
  /// The image encoder's arithmetic: fp32 (the reference), bf16 or auto (bf16 where the device
  /// has native bf16 matrix units); semat/models/precision.h. The decoders stay float32.
  std::string precision = "fp32";
  /// HQ-SAM only (sam-hq's predict(hq_token_only=...)): the HQ token's mask alone, instead of
  /// the default SAM mask + HQ mask logits.
  bool hq_token_only = false;
};

class SamPredictor {
 public:
  using Options = SamPredictorOptions;

  /// Loads a SAM checkpoint (.pth or .safetensors). Throws CheckpointError / IoError.
  explicit SamPredictor(const std::string& checkpoint, const Options& options = {});
  /// Same, from an already loaded checkpoint.
  explicit SamPredictor(const io::Checkpoint& checkpoint, const Options& options = {});
  ~SamPredictor();
  SamPredictor(const SamPredictor&) = delete;
  SamPredictor& operator=(const SamPredictor&) = delete;

  const SamConfig& config() const;
  std::string device() const;
  /// What the image encoder runs in: "fp32" or "bf16".
  std::string precision() const;

  /// `image`: CV_8UC3 in `order` (BGR, OpenCV's, by default; RGB pixels are read as they are,
  /// BGR ones converted first). Resizes the long side to the model size exactly as the official
  /// predictor (Pillow bilinear), normalises, pads, and caches the embedding. Both orders of one
  /// picture give the same network input, hence the same embedding.
  void set_image(const cv::Mat& image, ChannelOrder order = ChannelOrder::kBGR);
  bool has_image() const;
  cv::Size image_size() const;

  /// One prompt (points and/or box and/or mask). multimask: 3 masks, else 1. HQ-SAM always
  /// gives one mask: multimask picks the SAM token with the best predicted IoU to combine with
  /// the HQ token (as sam-hq's predictor).
  /// Throws StateError before set_image, InvalidArgument for prompts outside the image or
  /// labels other than 0/1.
  SamMasks predict(const SamPrompt& prompt, bool multimask) const;
  /// One box per result, decoded in one batch.
  std::vector<SamMasks> predict_boxes(const std::vector<Box>& boxes, bool multimask) const;

  /// input_tensor [1, 3, S, S] (normalised, padded) and image_embeddings [1, C, g, g] of the
  /// current image, plus the resized image (uint8 [h, w, 3] RGB) as "resized_image"; for HQ-SAM
  /// also "interm_embeddings0" [1, g, g, D] (the first global ViT block's output).
  std::vector<io::TensorData> image_tensors() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semat::models
