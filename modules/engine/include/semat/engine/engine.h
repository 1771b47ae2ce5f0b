// The one matting engine: every matte semat makes goes through it.
//
//   box ──> coarse mask ──> trimap ──> alpha ──> foreground colours
//           grabcut         rule       closed-form
//           sam | semat     model      model | refine
//           given (builder) (a prompt's own trimap always wins)
//
//   semat::engine::EngineSpec spec;            // or filled from the CLI flags
//   spec.sam = "sam_vit_b_01ec64.pth";
//   semat::engine::Engine engine(spec);        // loads the model once
//   auto mattes = engine.run(image, {semat::engine::Prompt::from_box(box)});
//
// Engine is safe to share between threads: classical stages run concurrently, a model serves
// one call at a time. With no model configured nothing of LibTorch is touched.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "semat/core/geometry.h"
#include "semat/engine/box_model.h"
#include "semat/engine/spec.h"
#include "semat/matting/pipeline.h"

namespace semat::engine {

/// One subject to matte. Sizes are the image's.
struct Prompt {
  std::optional<Box> box;  ///< the subject's box (pixels); needed by GrabCut and box models
  cv::Mat mask;            ///< CV_8U, nonzero = subject: a coarse mask made elsewhere
  cv::Mat trimap;          ///< CV_8U 0/128/255: the user's trimap (skips mask and trimap stages)
  /// Prefix of this prompt's errors, e.g. "--box 2" (empty: none).
  std::string label;

  static Prompt from_box(const Box& b, std::string label = "") {
    Prompt p;
    p.box = b;
    p.label = std::move(label);
    return p;
  }
};

class Engine {
 public:
  /// Resolves the spec (ConfigError) and loads its model (CheckpointError / IoError).
  explicit Engine(const EngineSpec& spec);
  /// With a model built elsewhere (the trainer's model under training); its name() must match
  /// the model the spec resolves to.
  Engine(const EngineSpec& spec, std::shared_ptr<BoxModel> model);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineSpec& spec() const;
  const Stages& stages() const;
  /// describe(stages()): reported by `matte --json`, `/v1/info` and the builder's summary.json.
  std::string description() const;
  /// The alpha stage alone: "closed-form", "semat", "semat+refine" (the builder's "backend").
  std::string alpha_name() const;
  bool has_model() const;
  /// The loaded box model's variant (BoxModel::variant(), e.g. "semat-hq-vit-l"); "" without one.
  std::string model_variant() const;
  /// What the loaded box model's encoder runs in ("fp32" or "bf16"; BoxModel::precision());
  /// "fp32" without one (the classical stages are float32/float64).
  std::string precision() const;

  /// One result per prompt, in order. `image`: CV_8UC3 in `order` (BGR, as files decode, by
  /// default; RGB pixels, e.g. a numpy image, are read as they are: the networks see the same
  /// input either way, and each MatteResult::foreground comes out in `order`. The classical
  /// stages may differ by rounding between the two orders: see semat/core/channel_order.h).
  /// Boxes must lie inside the image and given masks/trimaps must have its size
  /// (InvalidArgument otherwise). A box model sees all boxes of the call at once (one encoder
  /// pass for SAM). `image_key`: see BoxModel::predict. Errors of one prompt carry its label.
  std::vector<matting::MatteResult> run(const cv::Mat& image, const std::vector<Prompt>& prompts,
                                        const std::string& image_key = "",
                                        ChannelOrder order = ChannelOrder::kBGR) const;

  /// The stored image behind `image_key` was deleted: drop the model's cache for it.
  void forget(const std::string& image_key) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semat::engine
