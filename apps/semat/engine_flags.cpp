#include "engine_flags.h"

#include <CLI/CLI.hpp>

namespace semat::cli {

void add_engine_flags(CLI::App* cmd, engine::EngineSpec& s) {
  cmd->add_option("--sam", s.sam,
                  "SAM checkpoint (sam_vit_{b,l,h}_*.pth or .safetensors): its box masks replace "
                  "GrabCut; with --semat, the SAM weights a slim SEMat checkpoint lacks");
  cmd->add_option("--semat", s.semat,
                  "SEMat checkpoint (official SEMat_SAM .pth or .safetensors): the network's mask, "
                  "trimap and alpha replace the classical stages");
  cmd->add_flag("--refine", s.refine,
                "sharpen the model's alpha by closed-form matting against the full-resolution "
                "image inside the trimap's unknown band (same as --alpha refine)");
  cmd->add_option("--mask", s.mask, "coarse-mask stage: auto, grabcut, given, sam or semat")
      ->capture_default_str();
  cmd->add_option("--trimap-from", s.trimap,
                  "trimap stage: auto, rule (the paper's mask-to-matte rule) or model")
      ->capture_default_str();
  cmd->add_option("--alpha", s.alpha, "alpha stage: auto, closed-form, model or refine")
      ->capture_default_str();
  cmd->add_option("--model-type", s.model_type,
                  "model type: auto (from tensor shapes; tells SAM from HQ-SAM); SAM vit_b, vit_l, "
                  "vit_h; HQ-SAM hq_vit_b, hq_vit_l, hq_vit_h; SEMat semat-vit-b, semat-vit-l, "
                  "semat-vit-h, semat-hq-vit-b, semat-hq-vit-l, semat-hq-vit-h")
      ->capture_default_str();
  cmd->add_option("--device", s.device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--resize", s.resize,
                  "SEMat's resize to the model frame: cv2 (official demo: reproduces the official "
                  "numbers), pil, torch")
      ->check(CLI::IsMember({"cv2", "opencv", "pil", "torch"}))
      ->capture_default_str();
  cmd->add_option("--batch", s.batch, "SEMat boxes per encoder pass (0 = auto: 4 on CUDA, 1 on CPU)")
      ->capture_default_str();
}

}  // namespace semat::cli
