// Hyper-parameters of SAM 2's image path (facebookresearch/sam2: Hiera trunk, FPN neck, prompt
// encoder, mask decoder), torch-free, with the official presets (configs/sam2/sam2_hiera_*.yaml;
// the SAM 2.1 configs have the same image path) and the tiny test fixture's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace semat::models {

/// sam2/modeling/backbones/hieradet.py Hiera.
struct HieraConfig {
  int64_t embed_dim = 96;  ///< stage-1 width; doubles (dim_mul) at every stage change
  int64_t num_heads = 1;   ///< stage-1 heads; doubles (head_mul) at every stage change
  std::vector<int64_t> stages = {1, 2, 7, 2};            ///< blocks per stage
  std::vector<int64_t> global_att_blocks = {5, 7, 9};    ///< block indexes with global attention
  std::vector<int64_t> window_spec = {8, 4, 14, 7};      ///< window side per stage
  std::vector<int64_t> window_pos_embed_bkg_spatial_size = {7, 7};  ///< pos_embed [1, D, h, w]
  int64_t q_pool = 3;      ///< number of stage changes that max-pool q (2x2)
  int64_t q_stride = 2;
  double dim_mul = 2.0, head_mul = 2.0;
  double mlp_ratio = 4.0;
  int64_t in_chans = 3;
  /// Patch embedding Conv2d(in_chans -> embed_dim, kernel 7, stride 4, padding 3).
  int64_t patch_kernel = 7, patch_stride = 4, patch_padding = 3;
  /// SEMat (SAM2)'s prompt enhancement: when > 0, a second patch embedding
  /// `bbox_mask_patch_embed` (Conv2d(bbox_mask_in_chans -> embed_dim), same geometry) is built;
  /// the caller adds its output through Hiera::forward's extra_embedding. 0 for plain SAM 2.
  int64_t bbox_mask_in_chans = 0;

  int64_t depth() const;
  /// Index of each stage's last block (its output feeds the neck).
  std::vector<int64_t> stage_ends() const;
  /// Blocks that pool q (the first block of stages 2 .. 1 + q_pool).
  std::vector<int64_t> q_pool_blocks() const;
  /// Output width of each stage, coarsest first (the neck's backbone_channel_list).
  std::vector<int64_t> channel_list() const;
};

/// One MultiScaleBlock as Hiera builds it.
struct HieraBlockSpec {
  int64_t dim, dim_out, heads;
  int64_t window;  ///< 0: global attention. Lags one block: a stage's first block uses the
                   ///< previous stage's window (and pools q to half of it).
  bool q_pool;
};
std::vector<HieraBlockSpec> hiera_blocks(const HieraConfig& cfg);

/// sam2/modeling/backbones/image_encoder.py FpnNeck (kernel 1, nearest top-down, sum fusion).
struct FpnNeckConfig {
  int64_t d_model = 256;
  std::vector<int64_t> backbone_channel_list = {768, 384, 192, 96};  ///< coarsest first
  std::vector<int64_t> fpn_top_down_levels = {2, 3};
  int64_t scalp = 1;  ///< coarsest levels dropped from the encoder's output
};

/// sam2/modeling/sam/mask_decoder.py MaskDecoder as SAM2Base builds it (the transformer's depth,
/// heads and MLP width and the iou head are hard-coded there).
struct Sam2MaskDecoderConfig {
  int64_t transformer_dim = 256;
  int64_t depth = 2;
  int64_t num_heads = 8;
  int64_t mlp_dim = 2048;
  int64_t num_multimask_outputs = 3;
  int64_t iou_head_depth = 3;
  int64_t iou_head_hidden_dim = 256;
  bool iou_prediction_use_sigmoid = true;
  bool pred_obj_scores = true;  ///< obj_score_token first, pred_obj_score_head (MLP of 3)
  bool use_high_res_features = true;  ///< conv_s0 / conv_s1 skips into the upscaling
  /// build_sam2's apply_postprocessing: single-mask output falls back to the best multimask
  /// token when token 0's stability area(l > d) / area(l > -d) is below the threshold.
  bool dynamic_multimask_via_stability = true;
  double dynamic_multimask_stability_delta = 0.05;
  double dynamic_multimask_stability_thresh = 0.98;
};

struct Sam2Config {
  std::string name = "sam2_hiera_t";
  int64_t image_size = 1024;      ///< square model input (SAM 2 squashes the image to it)
  int64_t backbone_stride = 16;   ///< image embedding = image_size / 16 per side
  HieraConfig trunk;
  FpnNeckConfig neck;
  int64_t mask_in_chans = 16;     ///< prompt encoder mask_downscaling width
  Sam2MaskDecoderConfig decoder;
  /// Pixel statistics of the [0, 1] image (SAM2Transforms' Normalize).
  double mean[3] = {0.485, 0.456, 0.406};
  double std[3] = {0.229, 0.224, 0.225};

  int64_t grid() const { return image_size / backbone_stride; }  ///< embedding side
  bool operator==(const Sam2Config& o) const;
};

/// "sam2_hiera_t", "sam2_hiera_s", "sam2_hiera_b+", "sam2_hiera_l" (official SAM 2 / 2.1) and
/// "sam2_tiny" (tests/data/sam2_tiny). Throws ConfigError listing the names for anything else.
Sam2Config sam2_preset(const std::string& name);
std::vector<std::string> sam2_preset_names();

/// Parameters of the built image model (random weights), per part. The official full models
/// (SAM2Base) also carry the video-only modules (memory attention / encoder, object pointers),
/// which semat does not build: `video_only` counts them for the official presets from the
/// official key lists' totals (0 when unknown), so image + video_only = the official count.
struct Sam2ParameterCounts {
  int64_t trunk = 0, neck = 0, prompt_encoder = 0, mask_decoder = 0, no_mem_embed = 0;
  int64_t image_model = 0;  ///< sum of the above
  int64_t official_full = 0;  ///< the official SAM2Base total (SAM 2.0 layout), 0 when unknown
};
Sam2ParameterCounts sam2_parameter_counts(const Sam2Config& cfg);

}  // namespace semat::models
