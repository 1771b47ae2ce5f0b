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
  cmd->add_option("--prior", s.prior,
                  "box-only coarse mask: isnet (the learned prior: IS-Net fused with the box and a "
                  "colour model), grabcut, or auto (IS-Net when installed by `make models`, else "
                  "GrabCut)")
      ->check(CLI::IsMember({"auto", "isnet", "grabcut"}))
      ->capture_default_str();
  cmd->add_option("--isnet", s.isnet, "IS-Net ONNX file for --prior isnet (default: the installed one)");
  cmd->add_option("--mask", s.mask, "coarse-mask stage: auto, grabcut, given, sam, semat or isnet")
      ->capture_default_str();
  cmd->add_option("--trimap-from", s.trimap,
                  "trimap stage: auto, rule (the paper's mask-to-matte rule) or model")
      ->capture_default_str();
  cmd->add_option("--vitmatte", s.vitmatte,
                  "ViTMatte checkpoint (ViTMatte_{S,B}_{Com,DIS}.pth or .safetensors): the trimap, "
                  "from any mask stage or --trimap, goes through the trained network (--alpha vitmatte)");
  cmd->add_option("--vitmatte-max-pixels", s.vitmatte_max_pixels,
                  "larger images run through ViTMatte / DiffMatte shrunk to this many pixels, then closed-form "
                  "sharpens the band at full resolution (0 = never shrink)")
      ->capture_default_str();
  cmd->add_option("--diffmatte", s.diffmatte,
                  "DiffMatte checkpoint (official ViTS/ViTB .pth): the trimap goes through the diffusion "
                  "matting network (--alpha diffmatte), deterministic (noise seeded with 0)");
  cmd->add_option("--diffmatte-steps", s.diffmatte_steps, "DiffMatte DDIM steps")->capture_default_str();
  cmd->add_option("--alpha", s.alpha, "alpha stage: auto, closed-form, model, refine, vitmatte or diffmatte")
      ->capture_default_str();
  cmd->add_option("--model-type", s.model_type,
                  "model type: auto (from tensor shapes; tells SAM from HQ-SAM); SAM vit_b, vit_l, "
                  "vit_h; HQ-SAM hq_vit_b, hq_vit_l, hq_vit_h; SEMat semat-vit-b, semat-vit-l, "
                  "semat-vit-h, semat-hq-vit-b, semat-hq-vit-l, semat-hq-vit-h")
      ->capture_default_str();
  cmd->add_option("--device", s.device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--precision", s.precision,
                  "image encoders' arithmetic (SAM, SEMat, IS-Net): bf16, fp32, or auto (bf16 where the "
                  "CPU has AMX / AVX512-BF16 or the GPU is Ampere or later); decoders stay fp32")
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "float32", "bfloat16"}))
      ->capture_default_str();
  cmd->add_option("--resize", s.resize,
                  "SEMat's resize to the model frame: cv2 (official demo: reproduces the official "
                  "numbers), pil, torch")
      ->check(CLI::IsMember({"cv2", "opencv", "pil", "torch"}))
      ->capture_default_str();
  cmd->add_option("--batch", s.batch, "SEMat boxes per encoder pass (0 = auto: 4 on CUDA, 1 on CPU)")
      ->capture_default_str();
}

}  // namespace semat::cli
