// Building SAM from a checkpoint: model-type detection from tensor shapes, strict weight loading
// (segment_anything/build_sam.py's role).
#pragma once

#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <c10/core/Device.h>
#include <c10/util/Exception.h>

#include "semat/core/error.h"
#include "semat/io/checkpoint.h"
#include "semat/models/internal/sam/sam.h"
#include "semat/models/sam_config.h"

namespace semat::models::sam {

/// Reads every SAM hyper-parameter the shapes determine (all but the mask decoder's head count,
/// which is taken from `decoder_heads`) and names the matching preset ("custom" if none).
/// HQ-SAM checkpoints (mask_decoder.hf_token / hf_mlp / compress_vit_feat) give hq = true.
/// Throws CheckpointError for SAM 2, Light HQ-SAM, SEMat or non-SAM checkpoints, saying which
/// models are supported.
models::SamConfig infer_sam_config(const io::Checkpoint& ckpt, int64_t decoder_heads = 8);

/// The shape of tensor `name` of `ckpt`, which must exist with `rank` dimensions of 1..2^20
/// each; throws CheckpointError naming the key otherwise. Shape inference reads every size it
/// divides, multiplies or builds modules from through this.
const std::vector<int64_t>& checked_shape(const io::Checkpoint& ckpt, const std::string& name, size_t rank);

/// Runs `fn` (building or loading a model from `source`), turning LibTorch's errors, which carry
/// multi-line backtraces, into one-line CheckpointErrors naming the file: shapes are validated
/// before, so this is the last line of defence for a crafted checkpoint, not the normal path.
template <class Fn>
auto with_checkpoint_errors(const std::string& source, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    msg = msg.substr(0, msg.find('\n'));
    throw CheckpointError("'" + source + "' cannot be loaded: " + msg);
  }
}

/// Throws CheckpointError naming `source` when the sizes cannot make a working SAM (heads that
/// do not divide widths, empty layers, mismatched widths): checked before any module is built.
void validate_sam_config(const models::SamConfig& config, const std::string& source);

/// Names and shapes of every parameter and persistent buffer of `module`, keys prefixed.
std::vector<io::ExpectedTensor> expected_tensors(const torch::nn::Module& module,
                                                 const std::string& prefix = "");

/// Copies the checkpoint's tensors into `module` after checking names and shapes strictly (one
/// CheckpointError lists every missing, unexpected and mis-shaped tensor).
void load_weights(torch::nn::Module& module, const io::Checkpoint& ckpt,
                  const io::TensorCheckOptions& options = {}, const std::string& prefix = "");

/// The model described by `model_type` ("auto" or a preset name) with the checkpoint's weights.
/// `encoder_dtype` other than float32: the image encoder's weights are converted to it as they
/// are loaded (ImageEncoderViTImpl::set_compute_dtype, once, from the checkpoint's bytes).
Sam build_sam(const io::Checkpoint& ckpt, const std::string& model_type = "auto",
              torch::ScalarType encoder_dtype = torch::kFloat);

/// "auto" (CUDA when this LibTorch has a usable device, else CPU), "cpu" or "cuda"; throws
/// ConfigError for anything else or for "cuda" without a device. (Thread count and allocator
/// policy are the program's choice: semat/models/runtime.h.)
torch::Device select_device(const std::string& name);

/// A tensor's data as TensorData (float32 / int / uint8 tensors; copied to the CPU).
io::TensorData to_tensor_data(const std::string& name, const torch::Tensor& t);
torch::Tensor from_tensor_data(const io::TensorData& t);
/// The TensorData's bytes seen as a CPU tensor, without a copy: valid while `t` lives, and to be
/// read only (copy_ from it).
torch::Tensor tensor_view(const io::TensorData& t);

}  // namespace semat::models::sam
