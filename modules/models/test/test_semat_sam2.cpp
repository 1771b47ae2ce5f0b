// SEMat (SAM2 variant, SEMat_SAM2.py) against the official implementation's outputs on the tiny
// random-weight fixture (tests/data/semat_sam2_tiny, copied from the project's shared fixtures).
// Tolerances follow the fixture README: ~1e-4 on logits and mdec.*, ~1e-3 on alpha_logits.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <map>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/io/checkpoint.h"
#include "semat/io/image_io.h"
#include "semat/models/internal/sam/build.h"
#include "semat/models/internal/semat_net/build.h"
#include "semat/models/internal/semat_net/semat_model.h"
#include "semat/models/semat_predictor.h"

namespace semat::models {
namespace {

using semat_net::SematModel;
const std::string kDir = std::string(SEMAT_TEST_DATA) + "/semat_sam2_tiny/";
constexpr int64_t kS = 128;

const io::Checkpoint& reference() {
  static const io::Checkpoint ref = io::load_checkpoint(kDir + "reference_outputs.safetensors");
  return ref;
}
const io::Checkpoint& semat_ckpt() {
  static const io::Checkpoint ck = io::load_checkpoint(kDir + "semat_sam2_tiny.pth");
  return ck;
}

torch::Tensor want(const std::string& name) { return sam::from_tensor_data(reference().at(name)); }

double max_err(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

void expect_close(const torch::Tensor& ours, const torch::Tensor& expected, const std::string& what,
                  double tol = 1e-4) {
  ASSERT_EQ(ours.sizes(), expected.sizes()) << what;
  const double err = max_err(ours, expected);
  EXPECT_LE(err, tol) << what << ": max abs error " << err;
  if (std::getenv("SEMAT_TEST_VERBOSE")) std::cerr << what << ": max abs error " << err << "\n";
}

// Copies the checkpoint tensors under `prefix` into `module` (every parameter and buffer must be
// there): the decoder stages tested on their own, from the stored encoder outputs.
void load_part(torch::nn::Module& module, const std::string& prefix) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.named_parameters(true))
    p.value().copy_(sam::from_tensor_data(semat_ckpt().at(prefix + p.key())));
  for (auto& b : module.named_buffers(true))
    b.value().copy_(sam::from_tensor_data(semat_ckpt().at(prefix + b.key())).to(b.value().dtype()));
}

// The tiny model's decoders with the fixture's weights (no image encoder involved).
SematModel decoders_only() {
  SematModel model(semat_preset("semat-sam2-tiny"));
  load_part(*model->sam2_model, "sam_model.");
  load_part(*model->matting_decoder, "matting_decoder.");
  model->eval();
  return model;
}

torch::Tensor fixture_box() { return want("box").view({1, 4}).to(torch::kFloat); }

semat_net::SematFeatures stored_features() {
  semat_net::SematFeatures f;
  f.embedding = want("image_embed");
  f.high_res0 = want("high_res_feat0");
  f.high_res1 = want("high_res_feat1");
  return f;
}

}  // namespace

TEST(SematSam2Decoder, HighResFeaturesAndImageEmbedFromTheFpnLevels) {
  torch::NoGradGuard no_grad;
  auto model = decoders_only();
  auto& s = *model->sam2_model;
  const auto [h0, h1] = s.sam_mask_decoder->high_res_features(want("neck.fpn0"), want("neck.fpn1"));
  expect_close(h0, want("high_res_feat0"), "high_res_feat0", 1e-5);
  expect_close(h1, want("high_res_feat1"), "high_res_feat1", 1e-5);
  const auto embed = want("neck.fpn2") + s.no_mem_embed.view({1, -1, 1, 1});
  EXPECT_TRUE(torch::equal(embed, want("image_embed"))) << "image_embed = fpn2 + no_mem_embed";
}

TEST(SematSam2Decoder, BoxPromptIsTwoLabelledPointsAndAPaddingPoint) {
  torch::NoGradGuard no_grad;
  auto model = decoders_only();
  semat_net::SematTrace trace;
  model->decode_sam2(want("images"), fixture_box(), stored_features(), &trace);
  ASSERT_EQ(trace.sparse.sizes(), (std::vector<int64_t>{1, 3, 16}));
  expect_close(trace.sparse, want("prompt.sparse"), "prompt.sparse", 1e-5);
  expect_close(trace.image_pe, want("prompt.image_pe"), "prompt.image_pe", 1e-5);
  // The third token is the padding point: not_a_point_embed exactly.
  EXPECT_TRUE(torch::equal(trace.sparse[0][2],
                           model->sam2_model->sam_prompt_encoder->not_a_point_embed->weight[0]));
}

TEST(SematSam2Decoder, MattingMaskDecoderMatchesTheOfficialCode) {
  torch::NoGradGuard no_grad;
  auto model = decoders_only();
  const auto dec = model->sam2_model->sam_mask_decoder->forward(
      want("image_embed"), want("prompt.image_pe"), want("prompt.sparse"),
      model->sam2_model->sam_prompt_encoder->no_mask_embed->weight.reshape({1, -1, 1, 1}).expand(
          {1, -1, 8, 8}),
      want("high_res_feat0"), want("high_res_feat1"));
  expect_close(dec.masks_all, want("dec.sam2_logits_all_lowres"), "dec.sam2_logits_all_lowres");
  expect_close(dec.masks_sam, want("sam_logits_lowres"), "sam_logits_lowres");
  EXPECT_TRUE(torch::equal(dec.masks_sam, dec.masks_all.narrow(1, 0, 1))) << "token 0 only";
  expect_close(dec.masks_matting, want("matting_logits_lowres"), "matting_logits_lowres");
}

TEST(SematSam2Decoder, MattingDecoderOnSam2FeaturesMatchesTheOfficialCode) {
  torch::NoGradGuard no_grad;
  auto model = decoders_only();
  semat_net::MattingDecoderTrace t;
  const auto logits = model->matting_decoder->forward_sam2(
      want("images"), want("matting_logits"), want("image_embed"), want("high_res_feat0"),
      want("high_res_feat1"), &t);
  expect_close(t.mid_layer0, want("mdec.mid_layer0"), "mdec.mid_layer0");
  expect_close(t.mid_layer1, want("mdec.mid_layer1"), "mdec.mid_layer1");
  expect_close(t.mid_layer2, want("mdec.mid_layer2"), "mdec.mid_layer2");
  expect_close(t.down3, want("mdec.down3"), "mdec.down3");
  expect_close(t.mid, want("mdec.mid"), "mdec.mid");
  expect_close(t.up0, want("mdec.up0"), "mdec.up0", 1e-3);
  expect_close(logits, want("alpha_logits"), "alpha_logits", 1e-3);
  expect_close(torch::sigmoid(logits), want("alpha"), "alpha");
  // The SAM variant's path refuses SAM 2 features' decoder, by name.
  EXPECT_THROW(model->matting_decoder->forward(want("images"), want("matting_logits"), {}), StateError);
}

TEST(SematSam2Decoder, DecodersFromTheStoredEncoderOutputs) {
  torch::NoGradGuard no_grad;
  auto model = decoders_only();
  const auto out = model->decode(want("images"), fixture_box(), stored_features());
  expect_close(out.sam_logits_lowres, want("sam_logits_lowres"), "sam_logits_lowres");
  expect_close(out.matting_logits_lowres, want("matting_logits_lowres"), "matting_logits_lowres");
  expect_close(out.sam_logits, want("sam_logits"), "sam_logits");
  expect_close(out.matting_logits, want("matting_logits"), "matting_logits");
  EXPECT_TRUE(torch::equal(out.matting_logits.argmax(1, true).to(torch::kByte), want("trimap")))
      << "trimap";
  expect_close(out.alpha_logits, want("alpha_logits"), "alpha_logits", 1e-3);
  expect_close(out.alpha, want("alpha"), "alpha");
}

}  // namespace semat::models
