// semat info [--arch semat-vit-l|semat-hq-vit-l|...] [--json]: the architecture and its
// trainable parameters per component, counted on the built modules (random weights; no
// checkpoint needed). The HQ-SAM variant's HQ parts are frozen and reported apart.
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "semat/core/timer.h"
#include "semat/models/semat_config.h"

namespace semat::cli {
namespace {

struct InfoArgs {
  std::string arch = "semat-vit-l";
  bool json = false;
};

void run_info(const InfoArgs& a) {
  const models::SematConfig cfg = models::semat_preset(a.arch);
  Timer t;
  const models::SematParameterCounts c = models::semat_parameter_counts(cfg);
  const auto& e = cfg.sam.encoder;
  if (a.json) {
    nlohmann::json j = {{"arch", a.arch},
                        {"variant", cfg.sam.hq ? "hq-sam" : "sam"},
                        {"backbone",
                         {{"embed_dim", e.embed_dim},
                          {"depth", e.depth},
                          {"num_heads", e.num_heads},
                          {"global_attn_indexes", e.global_attn_indexes},
                          {"img_size", e.img_size}}},
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
  std::cout << a.arch << ": " << (cfg.sam.hq ? "HQ-SAM" : "SAM") << " ViT (embed " << e.embed_dim << ", depth " << e.depth << ", "
            << e.num_heads << " heads), LoRA rank " << cfg.lora_rank << " alpha " << cfg.lora_alpha
            << ", " << cfg.matting_tokens << " matting tokens\n"
            << "trainable parameters:\n";
  row("prompt_enhancement", c.prompt_enhancement);
  row("lora", c.lora);
  row("matting_tokens_adapter", c.matting_tokens_adapter);
  row("matting_decoder", c.matting_decoder);
  row("total", c.total);
  std::cout << "frozen SAM parameters:\n";
  row("sam", c.frozen_sam);
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
                  "semat-hq-vit-b, semat-hq-vit-l (official SEMat_HQ-SAM), semat-hq-vit-h, "
                  "semat-hq-tiny")
      ->check(CLI::IsMember(models::semat_preset_names()))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->callback([args] { run_info(*args); });
}

}  // namespace semat::cli
