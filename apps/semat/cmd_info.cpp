// semat info [--arch semat-vit-l|semat-hq-vit-l|semat-sam2-hiera-l|vitmatte-s|sam2-hiera-l|...] [--json]: the
// architecture and its
// trainable parameters per component, counted on the built modules (random weights; no
// checkpoint needed). The HQ-SAM variant's HQ parts are frozen and reported apart; the
// trimap-based matting networks (--arch vitmatte-s / vitmatte-b / diffmatte-*) report all parameters.
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "semat/core/timer.h"
#include "semat/models/sam2_config.h"
#include "semat/models/semat_config.h"
#include "semat/models/vitmatte_config.h"

namespace semat::cli {
namespace {

struct InfoArgs {
  std::string arch = "semat-vit-l";
  bool json = false;
};

std::vector<std::string> arch_names() {
  auto names = models::semat_preset_names();
  for (const auto& n : models::vitmatte_preset_names()) names.push_back(n);
  for (const auto& n : models::diffmatte_preset_names()) names.push_back(n);
  for (const char* n : {"sam2-hiera-t", "sam2-hiera-s", "sam2-hiera-b+", "sam2-hiera-l"}) names.push_back(n);
  return names;
}

// Plain SAM 2 (--arch sam2-hiera-*): the image model semat builds (trunk, neck, prompt encoder,
// mask decoder, no_mem_embed; parameters and buffers, i.e. state-dict entries). The official
// SAM2Base also holds the video-only modules, which semat does not build: reported apart.
void run_sam2_info(const InfoArgs& a) {
  std::string preset = "sam2_hiera_" + a.arch.substr(std::string("sam2-hiera-").size());
  const models::Sam2Config cfg = models::sam2_preset(preset);
  const models::Sam2ParameterCounts c = models::sam2_parameter_counts(cfg);
  const auto& t = cfg.trunk;
  const int64_t video = c.official_full > 0 ? c.official_full - c.image_model : 0;
  if (a.json) {
    nlohmann::json j = {{"arch", a.arch},
                        {"variant", "sam2"},
                        {"backbone",
                         {{"embed_dim", t.embed_dim},
                          {"num_heads", t.num_heads},
                          {"stages", t.stages},
                          {"global_att_blocks", t.global_att_blocks},
                          {"window_spec", t.window_spec},
                          {"img_size", cfg.image_size}}},
                        {"parameters",
                         {{"trunk", c.trunk},
                          {"neck", c.neck},
                          {"prompt_encoder", c.prompt_encoder},
                          {"mask_decoder", c.mask_decoder},
                          {"no_mem_embed", c.no_mem_embed}}},
                        {"all_parameters", c.image_model},
                        {"official_full_model_parameters", c.official_full},
                        {"video_only_parameters_not_built", video}};
    std::cout << j.dump(2) << '\n';
    return;
  }
  std::cout << a.arch << ": SAM 2 image model, Hiera (embed " << t.embed_dim << ", " << t.depth() << " blocks, "
            << t.num_heads << " heads) + FPN neck + prompt encoder + mask decoder\n"
            << "  trunk " << c.trunk << ", neck " << c.neck << ", prompt encoder " << c.prompt_encoder
            << ", mask decoder " << c.mask_decoder << ", no_mem_embed " << c.no_mem_embed << ", all "
            << c.image_model << "\n"
            << "  (the official SAM2Base has " << c.official_full << ": + " << video
            << " in the video-only modules, not built)\n";
}

void run_diffmatte_info(const InfoArgs& a) {
  const models::DiffMatteConfig cfg = models::diffmatte_preset(a.arch);
  const models::DiffMatteParameterCounts c = models::diffmatte_parameter_counts(cfg);
  if (a.json) {
    nlohmann::json j = {{"arch", a.arch},
                        {"backbone",
                         {{"embed_dim", cfg.vit.embed_dim},
                          {"depth", cfg.vit.depth},
                          {"num_heads", cfg.vit.num_heads},
                          {"img_size", cfg.vit.img_size}}},
                        {"decoder",
                         {{"model_channels", cfg.model_channels},
                          {"emb_channels", cfg.emb_channels},
                          {"downsample_in", cfg.downsample_in},
                          {"upsample_in", cfg.upsample_in}}},
                        {"parameters", {{"backbone", c.backbone}, {"decoder", c.decoder}}},
                        {"all_parameters", c.total}};
    std::cout << j.dump(2) << '\n';
    return;
  }
  std::cout << a.arch << ": ViT (embed " << cfg.vit.embed_dim << ", depth " << cfg.vit.depth << ") + DUNet decoder\n"
            << "  backbone " << c.backbone << ", decoder " << c.decoder << ", all " << c.total << "\n";
}

void run_vitmatte_info(const InfoArgs& a) {
  const models::VitMatteConfig cfg = models::vitmatte_preset(a.arch);
  const models::VitMatteParameterCounts c = models::vitmatte_parameter_counts(cfg);
  if (a.json) {
    nlohmann::json j = {{"arch", a.arch},
                        {"backbone",
                         {{"embed_dim", cfg.embed_dim},
                          {"depth", cfg.depth},
                          {"num_heads", cfg.num_heads},
                          {"window_size", cfg.window_size},
                          {"window_block_indexes", cfg.window_block_indexes},
                          {"residual_block_indexes", cfg.residual_block_indexes}}},
                        {"decoder", {{"convstream_out", cfg.convstream_out}, {"fusion_out", cfg.fusion_out}}},
                        {"parameters",
                         {{"backbone", c.backbone}, {"residual_blocks", c.residual}, {"decoder", c.decoder}}},
                        {"all_parameters", c.total}};
    std::cout << j.dump(2) << '\n';
    return;
  }
  std::cout << a.arch << ": ViT (embed " << cfg.embed_dim << ", depth " << cfg.depth << ", " << cfg.num_heads
            << " heads, window " << cfg.window_size << ") + detail capture decoder\n"
            << "  backbone " << c.backbone << " (residual blocks " << c.residual << "), decoder " << c.decoder
            << ", all " << c.total << "\n";
}

void run_info(const InfoArgs& a) {
  if (a.arch.rfind("vitmatte-", 0) == 0) return run_vitmatte_info(a);
  if (a.arch.rfind("diffmatte-", 0) == 0) return run_diffmatte_info(a);
  if (a.arch.rfind("sam2-", 0) == 0) return run_sam2_info(a);
  const models::SematConfig cfg = models::semat_preset(a.arch);
  Timer t;
  const models::SematParameterCounts c = models::semat_parameter_counts(cfg);
  const auto& e = cfg.sam.encoder;
  const auto& h = cfg.sam2_base.trunk;
  if (a.json) {
    const nlohmann::json backbone =
        cfg.sam2 ? nlohmann::json{{"type", "hiera"},
                                  {"embed_dim", h.embed_dim},
                                  {"num_heads", h.num_heads},
                                  {"stages", h.stages},
                                  {"global_att_blocks", h.global_att_blocks},
                                  {"window_spec", h.window_spec},
                                  {"img_size", e.img_size}}
                 : nlohmann::json{{"embed_dim", e.embed_dim},
                                  {"depth", e.depth},
                                  {"num_heads", e.num_heads},
                                  {"global_attn_indexes", e.global_attn_indexes},
                                  {"img_size", e.img_size}};
    nlohmann::json j = {{"arch", a.arch},
                        {"variant", cfg.sam2 ? "sam2" : cfg.sam.hq ? "hq-sam" : "sam"},
                        {"backbone", backbone},
                        {"lora", {{"rank", cfg.lora_rank}, {"alpha", cfg.lora_alpha}}},
                        {"matting_tokens", cfg.matting_tokens},
                        {"trainable_parameters",
                         {{"prompt_enhancement", c.prompt_enhancement},
                          {"lora", c.lora},
                          {"matting_tokens_adapter", c.matting_tokens_adapter},
                          {"matting_decoder", c.matting_decoder},
                          {"total", c.total}}},
                        {"frozen_sam_parameters", c.frozen_sam},
                        {"frozen_hq_parameters", c.frozen_hq},
                        {"all_parameters", c.total + c.frozen_sam + c.frozen_hq}};
    std::cout << j.dump(2) << '\n';
    return;
  }
  auto row = [](const char* name, int64_t n) {
    std::cout << "  " << std::left << std::setw(24) << name << std::right << std::setw(12) << n
              << "  (" << std::fixed << std::setprecision(2) << n / 1e6 << "M)\n";
  };
  if (cfg.sam2)
    std::cout << a.arch << ": SAM 2 Hiera (embed " << h.embed_dim << ", depth " << h.depth() << ", "
              << h.num_heads << " heads)";
  else
    std::cout << a.arch << ": " << (cfg.sam.hq ? "HQ-SAM" : "SAM") << " ViT (embed " << e.embed_dim
              << ", depth " << e.depth << ", " << e.num_heads << " heads)";
  std::cout << ", LoRA rank " << cfg.lora_rank << " alpha " << cfg.lora_alpha
            << ", " << cfg.matting_tokens << " matting tokens\n"
            << "trainable parameters:\n";
  row("prompt_enhancement", c.prompt_enhancement);
  row("lora", c.lora);
  row("matting_tokens_adapter", c.matting_tokens_adapter);
  row("matting_decoder", c.matting_decoder);
  row("total", c.total);
  std::cout << (cfg.sam2 ? "frozen SAM 2 image-model parameters:\n" : "frozen SAM parameters:\n");
  row(cfg.sam2 ? "sam2" : "sam", c.frozen_sam);
  if (cfg.sam.hq) row("hq_sam_parts", c.frozen_hq);
  std::cout << "(counted on the built modules in " << std::setprecision(1) << t.seconds()
            << " s)\n";
}

}  // namespace

void register_info(CLI::App& app) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* cmd = app.add_subcommand("info", "Model architectures and their parameter counts");
  cmd->add_option("--arch", args->arch,
                  "semat-vit-b, semat-vit-l (official SEMat_SAM), semat-vit-h, semat-tiny, "
                  "semat-hq-vit-b, semat-hq-vit-l (official SEMat_HQ-SAM), semat-hq-vit-h, semat-hq-tiny, "
                  "semat-sam2-hiera-t, semat-sam2-hiera-s, semat-sam2-hiera-b+, semat-sam2-hiera-l "
                  "(official SEMat_SAM2), semat-sam2-tiny; "
                  "vitmatte-s, vitmatte-b (official ViTMatte), vitmatte-tiny; diffmatte-vits, "
                  "diffmatte-vitb, diffmatte-vits-1024, diffmatte-tiny; sam2-hiera-t, sam2-hiera-s, "
                  "sam2-hiera-b+, sam2-hiera-l (plain SAM 2 image model)")
      ->check(CLI::IsMember(arch_names()))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->callback([args] { run_info(*args); });
}

}  // namespace semat::cli
