#include "semat/engine/spec.h"

#include <algorithm>

#include "models.h"
#include "semat/core/error.h"

namespace semat::engine {
namespace {

std::string model_names() {
  std::string s;
  for (const auto& m : detail::model_table()) s += std::string(s.empty() ? "" : ", ") + m.name;
  return s;
}

}  // namespace

std::vector<std::string> available_models() {
  std::vector<std::string> out;
  for (const auto& m : detail::model_table())
    if (m.load) out.push_back(m.name);
  return out;
}

namespace detail {

Stages resolve(const EngineSpec& spec, const BoxModel* injected) {
  // --prior isnet|grabcut is --mask isnet|grabcut for box prompts.
  SEMAT_CHECK(spec.prior == "auto" || spec.prior == "isnet" || spec.prior == "grabcut", ConfigError,
              "--prior " << spec.prior << ": use auto, isnet or grabcut");
  SEMAT_CHECK(spec.precision == "auto" || spec.precision == "fp32" || spec.precision == "bf16" ||
                  spec.precision == "float32" || spec.precision == "bfloat16",
              ConfigError, "--precision " << spec.precision << ": use auto, fp32 or bf16");
  std::string mask = spec.mask;
  if (spec.prior != "auto") {
    SEMAT_CHECK(mask == "auto" || mask == spec.prior, ConfigError,
                "--prior " << spec.prior << " and --mask " << mask << " contradict each other: drop one");
    mask = spec.prior;
  }
  // Candidates: the model table, or the one model handed in (the trainer's, a test's).
  struct Candidate {
    std::string name, flag, checkpoint;
    bool trimaps, alphas, loadable;
  };
  std::vector<Candidate> candidates;
  if (injected) {
    candidates.push_back({injected->name(), "(in memory)", "(in memory)", injected->trimaps(),
                          injected->alphas(), true});
  } else {
    for (const auto& m : model_table()) {
      std::string ckpt = spec.*m.checkpoint;
      // The installed IS-Net stands in for --isnet where the learned prior may be chosen.
      if (std::string(m.name) == "isnet" && ckpt.empty() && m.load && (mask == "auto" || mask == "isnet"))
        ckpt = installed_isnet();
      candidates.push_back({m.name, m.flag, ckpt, m.trimaps, m.alphas, m.load != nullptr});
    }
  }
  auto find = [&](const std::string& name) -> const Candidate* {
    for (const auto& c : candidates)
      if (c.name == name) return &c;
    return nullptr;
  };

  SEMAT_CHECK(spec.batch >= 0, ConfigError, "--batch must be 0 (auto) or positive, got " << spec.batch);
  Stages st;
  std::string alpha = spec.alpha;
  if (spec.refine) {
    SEMAT_CHECK(alpha == "auto" || alpha == "refine", ConfigError,
                "--refine and --alpha " << alpha << " contradict each other: drop one");
    alpha = "refine";
  }
  SEMAT_CHECK(alpha == "auto" || alpha == "closed-form" || alpha == "model" || alpha == "refine" ||
                  alpha == "vitmatte" || alpha == "diffmatte",
              ConfigError,
              "--alpha " << alpha << ": use auto, closed-form, model, refine, vitmatte or diffmatte");
  // The trimap networks: --alpha NET needs its checkpoint, and a checkpoint means that stage.
  struct Net {
    const char* name;
    const std::string& checkpoint;
  };
  for (const Net& n : {Net{"vitmatte", spec.vitmatte}, Net{"diffmatte", spec.diffmatte}}) {
    const std::string flag = std::string("--") + n.name;
    if (alpha == "auto" && !n.checkpoint.empty()) alpha = n.name;
    SEMAT_CHECK(alpha != n.name || !n.checkpoint.empty(), ConfigError,
                "--alpha " << n.name << " needs its checkpoint: " << flag << " CKPT");
    SEMAT_CHECK(n.checkpoint.empty() || alpha == n.name, ConfigError,
                flag << " " << n.checkpoint << " is not used by --alpha " << alpha << ": drop one (" << flag
                     << " means --alpha " << n.name << ")");
    SEMAT_CHECK(alpha != n.name || trimap_models_available(), ConfigError,
                flag << " " << n.checkpoint << " needs a build with the " << n.name
                     << " model (LibTorch), which this semat lacks: install libtorch-dev and rebuild");
  }
  SEMAT_CHECK(spec.vitmatte_max_pixels >= 0, ConfigError,
              "--vitmatte-max-pixels must be 0 (no cap) or positive, got " << spec.vitmatte_max_pixels);
  SEMAT_CHECK(spec.diffmatte_steps >= 1, ConfigError,
              "--diffmatte-steps must be positive, got " << spec.diffmatte_steps);
  SEMAT_CHECK(spec.trimap == "auto" || spec.trimap == "rule" || spec.trimap == "model", ConfigError,
              "--trimap-from " << spec.trimap << ": use auto, rule or model");
  const bool mask_is_model = find(mask) != nullptr;
  SEMAT_CHECK(mask == "auto" || mask == "grabcut" || mask == "given" || mask_is_model,
              ConfigError,
              "--mask " << mask << ": use auto, grabcut, given or a model (" << model_names() << ")");

  // The one box model: named by --mask, else the first whose checkpoint is given (SEMat before
  // SAM: with --semat, --sam only supplies base weights).
  const Candidate* model = mask_is_model ? find(mask) : nullptr;
  if (!model)
    for (const auto& c : candidates)
      if (!c.checkpoint.empty()) {
        model = &c;
        break;
      }
  const bool needs_model_alpha = alpha == "model" || alpha == "refine";
  if (needs_model_alpha)
    SEMAT_CHECK(model && model->alphas, ConfigError,
                (spec.refine ? std::string("--refine sharpens a model's alpha")
                             : "--alpha " + alpha + " takes a model's alpha")
                    << ": give a SEMat checkpoint with --semat");
  if (spec.trimap == "model")
    SEMAT_CHECK(model && model->trimaps, ConfigError,
                "--trimap-from model takes a model's trimap: give a SEMat checkpoint with --semat");
  if (model && model->name == "isnet" && !injected) {
    SEMAT_CHECK(model->loadable, ConfigError,
                "--prior isnet needs a build with the IS-Net runner (LibTorch), which this semat "
                "lacks: use --prior grabcut, or install libtorch-dev and rebuild");
    SEMAT_CHECK(!model->checkpoint.empty(), ConfigError,
                "--prior isnet needs the IS-Net model, which is not installed: run `make models` "
                "(or give --isnet FILE)");
  }
  if (model) {
    SEMAT_CHECK(!model->checkpoint.empty(), ConfigError,
                "--mask " << model->name << " needs its checkpoint: " << model->flag << " CKPT");
    SEMAT_CHECK(model->loadable, ConfigError,
                model->flag << " " << model->checkpoint << " needs a build with the " << model->name
                            << " model (LibTorch), which this semat lacks: install libtorch-dev and "
                               "rebuild");
    st.model = model->name;
  }
  // A checkpoint nothing uses is a mistake worth one line (--sam with --semat is base weights).
  for (const auto& m : model_table()) {
    const std::string& ckpt = spec.*m.checkpoint;
    if (ckpt.empty() || (model && model->name == m.name && !injected)) continue;
    const bool base_weights = model && model->name == "semat" && std::string(m.name) == "sam";
    SEMAT_CHECK(base_weights, ConfigError,
                m.flag << " " << ckpt << " is not used by --mask " << (model ? model->name : mask)
                       << ": drop it or choose --mask " << m.name);
  }

  if (mask == "grabcut" || mask == "given")
    st.mask = mask;
  else  // a model named by --mask, or auto: the model when there is one, else GrabCut
    st.mask = model ? model->name : "grabcut";
  const bool mask_from_model = model && st.mask == model->name;
  st.trimap = spec.trimap != "auto" ? spec.trimap
              : (mask_from_model && model->trimaps) ? "model"
                                                    : "rule";
  st.alpha = alpha != "auto" ? alpha : (model && model->alphas) ? "model" : "closed-form";
  SEMAT_CHECK(!model || mask_from_model || st.trimap == "model" || st.alpha == "model" || st.alpha == "refine",
              ConfigError,
              "--mask " << st.mask << " with " << model->flag << ": the model would not be used; drop one");
  return st;
}

}  // namespace detail

Stages resolve(const EngineSpec& spec) { return detail::resolve(spec, nullptr); }

std::string describe(const Stages& s) {
  std::string trimap = s.trimap == "model" ? s.model : s.trimap;
  std::string alpha = s.alpha == "model"    ? s.model
                      : s.alpha == "refine" ? s.model + "+refine"
                                            : s.alpha;
  return s.mask + ">" + trimap + ">" + alpha;
}

}  // namespace semat::engine
