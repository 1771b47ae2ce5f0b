// Building SEMat from checkpoints: official SEMat checkpoints ({"model": state_dict}, peft LoRA
// names), optionally completed by a plain SAM checkpoint, or a plain SAM checkpoint alone as the
// starting point for training.
#pragma once

#include <string>

#include "semat/io/checkpoint.h"
#include "semat/models/internal/semat_net/semat_model.h"
#include "semat/models/semat_config.h"

namespace semat::models::semat_net {

/// Keys of an official SEMat checkpoint that the official loader ignores at inference: the
/// training-time copy of SAM's mask decoder.
inline const char* kFrozenDecoderPrefix = "sam_model.frozen_mask_decoder.";

/// Entries of an official SEMat_SAM2.pth that belong to SAM 2's video modules (memory
/// attention / encoder, memory position encodings, object pointers, mask downsampler): accepted
/// and ignored by the loader (an explicit list, not a wildcard).
bool is_sam2_video_only_key(const std::string& key);

/// True when the checkpoint holds SEMat keys (sam_model.*, matting_decoder.*, condition_layer.*).
bool is_semat_checkpoint(const io::Checkpoint& ckpt);

/// The SEMat configuration the checkpoint's shapes describe, named after the matching preset
/// ("custom" if none). `sam_base`: a SAM checkpoint supplying the SAM shapes when `ckpt` holds
/// only SEMat's own parts (may be null). HQ-SAM parts (sam_model.mask_decoder.hf_token ...) in
/// the checkpoint or in `sam_base` make it the SEMat_HQ-SAM variant (sam.hq); SAM 2 keys
/// (sam_model.sam_mask_decoder.*, ...trunk.*) the SEMat_SAM2 variant, matched to a preset by the
/// Hiera width, depth and decoder width. Throws CheckpointError for plain SAM / HQ-SAM / SAM 2
/// checkpoints, naming the supported ones.
models::SematConfig infer_semat_config(const io::Checkpoint& ckpt,
                                       const io::Checkpoint* sam_base = nullptr);

/// The official SEMat key of a segment-anything key (image_encoder.blocks.0.attn.qkv.weight ->
/// sam_model.image_encoder.base_model.model.blocks.0.attn.qkv.base_layer.weight).
std::string semat_key_for_sam_key(const std::string& sam_key);

/// Inference model: weights from `ckpt` (and, for keys it lacks, from `sam_base`), checked
/// strictly: every missing, unexpected or mis-shaped tensor is named, except the
/// sam_model.frozen_mask_decoder.* keys the official loader ignores too. `model_type`: "auto" or
/// a preset name.
SematModel build_semat(const io::Checkpoint& ckpt, const io::Checkpoint* sam_base = nullptr,
                       const std::string& model_type = "auto");

/// Training start: SAM weights from a plain SAM checkpoint (also copied into the frozen mask
/// decoder), SEMat's parts initialised as the official code does (PyTorch default inits, LoRA
/// A ~ N(0, 1/r) and B = 0), so the SAM part computes exactly what SAM computed.
SematModel build_semat_from_sam(const io::Checkpoint& sam_ckpt, bool with_frozen_decoder = true);

}  // namespace semat::models::semat_net
