// Building ViTMatte from a checkpoint: size detection from tensor shapes, strict loading.
#pragma once

#include "semat/io/checkpoint.h"
#include "semat/models/internal/vitmatte/vitmatte.h"
#include "semat/models/vitmatte_config.h"

namespace semat::models::vitmatte {

/// Every hyper-parameter the shapes determine, named after the matching preset ("custom" if
/// none). Throws CheckpointError for checkpoints of other families (SAM, SEMat, DiffMatte, Hugging
/// Face's renamed ViTMatte) saying what is supported.
models::VitMatteConfig infer_vitmatte_config(const io::Checkpoint& ckpt);

/// The model of `model_type` ("auto" or a preset name) with the checkpoint's weights, loaded
/// strictly (one CheckpointError names every missing, unexpected and mis-shaped tensor), eval mode.
VitMatte build_vitmatte(const io::Checkpoint& ckpt, const std::string& model_type = "auto");

}  // namespace semat::models::vitmatte
