// The table of box models this build can load (internal to the engine).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "semat/engine/box_model.h"
#include "semat/engine/spec.h"
#include "semat/engine/trimap_model.h"

namespace semat::engine::detail {

using ModelLoader = std::shared_ptr<BoxModel> (*)(const EngineSpec& spec);

struct ModelEntry {
  const char* name;             ///< "sam", "semat", ...
  bool trimaps, alphas;         ///< what its outputs carry besides the mask
  /// Which checkpoint flag names it: a pointer into EngineSpec.
  std::string EngineSpec::*checkpoint;
  const char* flag;             ///< "--sam", "--semat"
  ModelLoader load;             ///< null: not in this build
};

/// Every box model semat knows, in auto-selection priority order; `load` is null for the models
/// this build cannot run (all of them without LibTorch).
const std::vector<ModelEntry>& model_table();

/// The IS-Net ONNX file `semat` uses when --isnet is not given: the installed model, or "" when
/// none is installed or this build cannot run it.
std::string installed_isnet();

/// Builds the "isnet" box model (prior_model.cpp); null when this build has no IS-Net runner.
ModelLoader isnet_loader();
/// Loads the trimap network the spec's alpha stage names ("vitmatte", "diffmatte"); null in builds without
/// LibTorch (trimap_models_available() is false there).
std::shared_ptr<TrimapModel> load_trimap_model(const EngineSpec& spec, const std::string& name);
bool trimap_models_available();

/// Refuses --precision bf16 where it is not native (ConfigError, one line; the CPU's, or the
/// GPU's with --device cuda) and in builds without LibTorch. For engines that load no box model
/// (a model's predictor checks its own device).
void check_precision(const EngineSpec& spec);

/// resolve() with an optional model built elsewhere standing in for the table.
Stages resolve(const EngineSpec& spec, const BoxModel* injected);

}  // namespace semat::engine::detail
