// What the matting engine does, as data: which implementation each stage uses, the model files
// and their options. Every front end (CLI `matte`, `serve`, `build-dataset`, the trainer's
// held-out evaluation, Python) fills one EngineSpec from the same flags; resolve() checks it
// once and names the stages, and describe() is the one string all of them report.
#pragma once

#include <string>
#include <vector>

#include "semat/matting/learned_prior.h"
#include "semat/matting/pipeline.h"

namespace semat::engine {

struct EngineSpec {
  /// Coarse mask from a box: "auto", "grabcut", "given" (every prompt carries its own mask, as
  /// the dataset builder's fused COCO masks), or a box model's name ("sam", "semat").
  /// auto = the SEMat model when --semat is given, else SAM when --sam is given, else GrabCut.
  std::string mask = "auto";
  /// The box-only coarse mask (no SAM or SEMat checkpoint): "auto", "isnet" (the learned prior,
  /// semat/engine/prior_model.h) or "grabcut". auto = IS-Net when its model is installed (or
  /// given with --isnet) and this build can run it, else GrabCut. isnet/grabcut are the same as
  /// --mask isnet/grabcut; a different --mask contradicts them.
  std::string prior = "auto";
  /// Trimap: "auto", "rule" (the paper's mask-to-matte rule on the coarse mask) or "model" (the
  /// box model's own trimap). auto = model when the mask comes from a model that makes trimaps,
  /// else rule. A trimap carried by a prompt (the user's) always wins.
  std::string trimap = "auto";
  /// Alpha: "auto", "closed-form" (in the trimap's unknown band, with the blurred coarse mask
  /// as a weak prior), "model" (the box model's alpha), "refine" (the model's alpha sharpened
  /// by closed-form in the band at full resolution), "vitmatte" or "diffmatte" (the trimap,
  /// whatever made it, through the trained ViTMatte / DiffMatte network of `vitmatte` /
  /// `diffmatte`). auto = that network when its checkpoint is given, else model when a model
  /// makes alpha, else closed-form.
  std::string alpha = "auto";
  /// Same as alpha = "refine" (the historical flag).
  bool refine = false;

  std::string sam;    ///< SAM checkpoint (.pth / .safetensors); with `semat`, the SAM weights a
                      ///< slim SEMat checkpoint lacks
  std::string semat;  ///< SEMat checkpoint
  std::string isnet;  ///< IS-Net ONNX file; empty: the installed one (`make models`), if any
  /// ViTMatte checkpoint (ViTMatte_{S,B}_{Com,DIS}.pth): the alpha stage "vitmatte". The
  /// network's alpha is kept where the trimap is unknown; known pixels (trimap 0 / 255) are set
  /// to 0 / 1. Images over `vitmatte_max_pixels` run through the network shrunk to that size
  /// and the alpha is then sharpened by closed-form matting in the band at full resolution.
  std::string vitmatte;
  long long vitmatte_max_pixels = 2048LL * 2048;  ///< 0: always full resolution (also DiffMatte's)
  /// DiffMatte checkpoint (the official ViTS / ViTB / ViTS-1024 .pth): the alpha stage "diffmatte",
  /// `diffmatte_steps` DDIM steps from noise seeded with 0 (deterministic; the official script
  /// leaves it unseeded); known pixels forced and large images handled as for ViTMatte.
  std::string diffmatte;
  int diffmatte_steps = 10;
  std::string model_type = "auto";  ///< auto (from tensor shapes) or a preset name
  std::string device = "auto";      ///< auto, cpu or cuda
  /// The image encoders' arithmetic (SAM, SEMat, IS-Net; semat/models/precision.h): "auto" =
  /// bf16 where the device has native bf16 matrix units (AMX / AVX512-BF16 CPUs, GPUs of compute
  /// capability >= 8.0), else fp32; "fp32" (float32, the reference); "bf16" (refused, one
  /// ConfigError line, where not native). Decoders, the matting decoder and closed-form stay fp32.
  std::string precision = "auto";
  std::string resize = "cv2";       ///< SEMat's resize to the model frame: cv2, pil or torch
  int batch = 0;                    ///< SEMat boxes per encoder pass (0 = auto)

  /// GrabCut, trimap rule, closed-form solver, mask prior, foreground colours.
  matting::MatteOptions classical;
  /// The learned prior's fusion, band trimap and closed-form hint weight.
  matting::LearnedPriorParams prior_params;
};

/// The stages an EngineSpec resolves to: "grabcut" | "given" | model name ("isnet" included);
/// "rule" | "model"; "closed-form" | "model" | "refine" | "vitmatte" | "diffmatte". `model` names
/// the box model to load ("" for none).
struct Stages {
  std::string mask, trimap, alpha, model;
};

/// Checks the combination and fills in every "auto". Throws ConfigError naming the flag and the
/// fix for anything that cannot work (a model stage without its checkpoint, --refine without a
/// model alpha, a model type of the wrong family, a model in a build without LibTorch...).
Stages resolve(const EngineSpec& spec);

/// "mask>trimap>alpha", e.g. "grabcut>rule>closed-form", "sam>rule>closed-form",
/// "semat>semat>semat", "semat>semat>semat+refine", "given>rule>closed-form".
std::string describe(const Stages& stages);

/// Names of the box models this build can load (empty without LibTorch).
std::vector<std::string> available_models();

}  // namespace semat::engine
