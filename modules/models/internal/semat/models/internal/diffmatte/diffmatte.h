// DiffMatte (YihanHu-2022/DiffMatte, modeling/decoder/DUNet.py, meta_arch/difmodel.py,
// diffusion/uniform_gauss.py ddim_sample): ViTMatte's ViT run once, a time-conditioned U-Net
// decoder run once per DDIM step. Keys as the official checkpoint: model.backbone.*,
// model.decoder.* (the DifMatte wrapper's `model`; the diffusion object has no parameters).
#pragma once

#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include "semat/io/checkpoint.h"
#include "semat/models/internal/vitmatte/detail_capture.h"
#include "semat/models/internal/vitmatte/vit.h"
#include "semat/models/vitmatte_config.h"

namespace semat::models::diffmatte {

/// The residual shortcut of a DUNet block: `downsample.op` (conv3x3 stride 2, no bias) or
/// `upsample.conv` (bilinear x2, align_corners=False, then conv3x3, no bias).
class ShortcutImpl : public torch::nn::Module {
 public:
  ShortcutImpl(int64_t in, int64_t out, bool up);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
  bool up;
};
TORCH_MODULE(Shortcut);

/// DUNet's time-conditioned residual block. Down (stride-2 conv3x3 `conv1`, shortcut
/// `downsample.op` conv3x3 stride 2) or up (`conv1` ConvTranspose 4x4 s2, shortcut `upsample.conv`
/// after a bilinear x2): relu(bn1(conv1 x)) + relu(emb_layers(emb)), bn2(conv2 .), + shortcut, relu.
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t planes, int64_t emb_channels, bool up);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);

  torch::nn::Sequential emb_layers{nullptr};
  torch::nn::Conv2d conv1_down{nullptr}, conv2{nullptr};
  Shortcut shortcut{nullptr};
  torch::nn::ConvTranspose2d conv1_up{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  bool up;
};
TORCH_MODULE(BasicBlock);

struct DecoderTrace {
  std::vector<torch::Tensor> down, up;  ///< block outputs
  torch::Tensor mid, emb;
};

class DUNetImpl : public torch::nn::Module {
 public:
  explicit DUNetImpl(const DiffMatteConfig& cfg);
  /// features [B, C, Hp/16, Wp/16], inputs [B, 7, Hp, Wp], t [B] in [0, 1] -> logits [B, 1, Hp, Wp].
  torch::Tensor forward(const torch::Tensor& features, const torch::Tensor& inputs, const torch::Tensor& t,
                        DecoderTrace* trace = nullptr);

  int64_t model_channels;
  torch::nn::ModuleList down_blks, up_blks;
  torch::nn::Sequential time_embed{nullptr};
  BasicBlock mid_blk{nullptr};
  vitmatte::MattingHead matting_head{nullptr};
};
TORCH_MODULE(DUNet);

/// Sinusoidal embedding of t (unscaled, in [0, 1]): [cos(t f), sin(t f)], f_i = 10000^(-i / half),
/// float32 as the official timestep_embedding. [B, dim].
torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim);

struct SampleTrace {
  torch::Tensor input_backbone, input_decoder, features, timesteps;
  std::vector<torch::Tensor> noised, x_t, emb, logits, pred_x0;  ///< per step (cropped to H x W)
  DecoderTrace step0;
  torch::Tensor sample;
};

class DiffMatteImpl : public torch::nn::Module {
 public:
  explicit DiffMatteImpl(const DiffMatteConfig& cfg);
  /// get_data's quantisation: > 0.9 -> 1, [0.1, 0.9] -> 0.5, < 0.1 -> 0.
  static torch::Tensor quantise_trimap(const torch::Tensor& trimap);
  /// ddim_sample: `rgb` [1, 3, H, W] in [0, 1], `trimap` [1, 1, H, W] in [0, 1] (quantised here),
  /// `x_T` [1, 1, H, W] the starting noise, `steps` DDIM steps over t = 1, 1 - 1/N, ..., 1/N.
  /// Returns `sample` [1, 1, H, W] ((x_0 / scale + 1) / 2, not clamped).
  torch::Tensor sample(const torch::Tensor& rgb, const torch::Tensor& trimap, const torch::Tensor& x_T,
                       int steps, SampleTrace* trace = nullptr);
  /// DifMatte's output: clamp(sample, 0, 1), 0 where the quantised trimap is 0 (the known
  /// foreground is not forced: the official `trimap == 2` test never matches).
  static torch::Tensor alpha_from_sample(const torch::Tensor& sample, const torch::Tensor& trimap);

  DiffMatteConfig cfg;
  vitmatte::ViT backbone{nullptr};
  DUNet decoder{nullptr};
};
TORCH_MODULE(DiffMatte);

/// Shapes -> configuration ("custom" when no preset matches); CheckpointError for non-DiffMatte
/// checkpoints (ViTMatte's is named as such).
models::DiffMatteConfig infer_diffmatte_config(const io::Checkpoint& ckpt);
/// Strict loading of the `model.`-prefixed keys, eval mode.
DiffMatte build_diffmatte(const io::Checkpoint& ckpt, const std::string& model_type = "auto");

}  // namespace semat::models::diffmatte
