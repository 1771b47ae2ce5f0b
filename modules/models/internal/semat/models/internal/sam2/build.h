// Building SAM 2 from a checkpoint (sam2/build_sam.py's role): detection by key names, the
// configuration from tensor shapes plus the matching official preset (head counts, global blocks,
// windows and the input size are not in the shapes), strict loading that accepts and ignores the
// video-only entries by name.
#pragma once

#include <string>
#include <vector>

#include "semat/io/checkpoint.h"
#include "semat/models/internal/sam2/sam2_base.h"
#include "semat/models/sam2_config.h"

namespace semat::models::sam2 {

/// True when `ckpt` holds SAM 2 image-model entries under `prefix` (image_encoder.trunk.* or
/// sam_mask_decoder.*), as sam2_hiera_*.pt and sam2.1_hiera_*.pt do.
bool is_sam2_checkpoint(const io::Checkpoint& ckpt, const std::string& prefix = "");

/// Entries of SAM2Base (SAM 2.0 and 2.1) that only the video predictor uses: memory_attention.*,
/// memory_encoder.*, obj_ptr_proj.*, obj_ptr_tpos_proj.*, mask_downsample.*, maskmem_tpos_enc,
/// no_mem_pos_enc, no_obj_ptr, no_obj_embed_spatial (name without the prefix).
bool is_video_only_key(const std::string& name);

/// The configuration the shapes under `prefix` determine, completed from the official preset
/// (or sam2_tiny) with the same trunk shapes. Every size is read through sam::checked_shape
/// (rank and 1..2^20 checked before any arithmetic). Throws CheckpointError naming the tensor,
/// or the shapes when no preset matches (then give the model type).
models::Sam2Config infer_sam2_config(const io::Checkpoint& ckpt, const std::string& prefix = "");

/// Throws CheckpointError naming `source` when the sizes cannot make a working SAM 2.
void validate_sam2_config(const models::Sam2Config& cfg, const std::string& source);

/// Strict loading of `module`'s parameters and buffers from the entries `prefix` + name; the
/// video-only entries (is_video_only_key) present under `prefix` are accepted and skipped, as are
/// entries outside `prefix` when `only_prefix`. One CheckpointError lists every missing,
/// unexpected and mis-shaped tensor.
void load_sam2_weights(torch::nn::Module& module, const io::Checkpoint& ckpt, const std::string& prefix = "",
                       bool only_prefix = false);

/// `model_type`: "auto" (infer_sam2_config) or a preset name (sam2_preset), checked against the
/// shapes by the strict loader. Returns the model in eval mode. `encoder_dtype` kBFloat16: the
/// Hiera trunk's weights are converted while they are copied from the checkpoint
/// (HieraImpl::set_compute_dtype); the neck, prompt encoder and mask decoder stay float32.
Sam2Base build_sam2(const io::Checkpoint& ckpt, const std::string& model_type = "auto",
                    torch::ScalarType encoder_dtype = torch::kFloat);

}  // namespace semat::models::sam2
