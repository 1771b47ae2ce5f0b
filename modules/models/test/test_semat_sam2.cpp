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
  const auto dec = model->sam2_model->sam_mask_decoder->forward_matting(
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

namespace semat::models {
namespace {

SematModel fixture_model() { return semat_net::build_semat(semat_ckpt()); }

}  // namespace

TEST(SematSam2Build, InfersTheTinyPresetFromShapes) {
  const SematConfig c = semat_net::infer_semat_config(semat_ckpt());
  EXPECT_EQ(c.name, "semat-sam2-tiny");
  EXPECT_TRUE(c.sam2);
  EXPECT_EQ(c, semat_preset("semat-sam2-tiny"));
}

TEST(SematSam2Fixture, EveryEncoderStageMatchesTheOfficialCode) {
  torch::NoGradGuard no_grad;
  auto model = fixture_model();
  const auto images = want("images");
  const auto boxes = fixture_box();
  semat_net::SematTrace trace;
  const auto enc = model->encode(images, boxes, {}, &trace);
  EXPECT_TRUE(torch::equal(trace.box_mask.to(torch::kByte), want("box_mask"))) << "box_mask";
  expect_close(trace.patch_embed, want("trunk.patch_embed"), "trunk.patch_embed", 1e-5);
  expect_close(trace.cond_embed, want("trunk.bbox_embed"), "trunk.bbox_embed", 1e-5);
  auto& trunk = *model->sam2_model->encoder->trunk;
  expect_close(trunk.get_pos_embed(32, 32), want("trunk.pos_embed"), "trunk.pos_embed", 1e-5);
  auto x = trace.patch_embed + trace.cond_embed + trunk.get_pos_embed(32, 32);
  for (size_t i = 0; i < trunk.blocks->size(); ++i) {
    x = trunk.blocks[i]->as<sam2::MultiScaleBlock>()->forward(x);
    expect_close(x, want("trunk.block" + std::to_string(i)), "trunk.block" + std::to_string(i), 1e-4);
  }
  ASSERT_EQ(trace.fpn.size(), 3u);  // level 3 dropped (scalp 1)
  for (int k = 0; k < 3; ++k)
    expect_close(trace.fpn[k], want("neck.fpn" + std::to_string(k)), "neck.fpn" + std::to_string(k));
  expect_close(enc.high_res0, want("high_res_feat0"), "high_res_feat0");
  expect_close(enc.high_res1, want("high_res_feat1"), "high_res_feat1");
  expect_close(enc.embedding, want("image_embed"), "image_embed");
}

TEST(SematSam2Fixture, FullForwardMatchesTheOfficialCode) {
  torch::NoGradGuard no_grad;
  auto model = fixture_model();
  const auto out = model->forward(want("images"), fixture_box());
  expect_close(out.sam_logits, want("sam_logits"), "sam_logits");
  expect_close(out.matting_logits, want("matting_logits"), "matting_logits");
  EXPECT_TRUE(torch::equal(out.matting_logits.argmax(1, true).to(torch::kByte), want("trimap")))
      << "trimap";
  expect_close(out.alpha_logits, want("alpha_logits"), "alpha_logits", 1e-3);
  expect_close(out.alpha, want("alpha"), "alpha");
}

// demo.py end to end through the SEMat predictor: aspect-preserving cv2 resize (451 x 300 ->
// 128 x 85), zero padding, the box in the 128 frame.
TEST(SematSam2Predictor, ReproducesTheOfficialDemoOutput) {
  for (bool merge : {false, true}) {
    SematPredictor::Options o;
    o.device = "cpu";
    o.merge_lora = merge;
    SematPredictor p(kDir + "semat_sam2_tiny.pth", "", o);
    EXPECT_EQ(p.config().name, "semat-sam2-tiny");
    const cv::Mat image = io::read_color(kDir + "image.png");
    ASSERT_EQ(image.size(), cv::Size(451, 300));
    const auto mattes = p.predict(image, {Box{40, 10, 300, 290}});
    ASSERT_EQ(mattes.size(), 1u);
    const auto& m = mattes[0];
    EXPECT_EQ(m.box_model[0], 11.f);
    EXPECT_EQ(m.box_model[1], 3.f);
    EXPECT_EQ(m.box_model[2], 85.f);
    EXPECT_EQ(m.box_model[3], 82.f);
    ASSERT_EQ(m.alpha_model.size(), cv::Size(128, 85));
    const auto ours = torch::from_blob(m.alpha_model.data, {85, 128}, torch::kFloat);
    const std::string tag = merge ? " (merged LoRA)" : "";
    expect_close(ours, want("alpha_crop"), "alpha_crop" + tag);
    const auto u8 = (ours * 255).to(torch::kByte).to(torch::kInt);
    EXPECT_LE((u8 - want("alpha_u8").to(torch::kInt)).abs().max().item<int>(), 1) << "alpha_u8" + tag;
  }
}

TEST(SematSam2Build, StrictLoaderNamesAMissingOrMisShapedTensor) {
  const std::string bad =
      "sam_model.image_encoder.base_model.model.trunk.blocks.1.proj.lora_A.default.weight";
  io::Checkpoint shaped = semat_ckpt();
  io::Checkpoint missing;
  missing.source = "missing";
  bool found = false;
  for (auto& t : shaped.tensors) {
    if (t.name == bad) {
      t.shape[0] /= 2;
      t.bytes.resize(t.bytes.size() / 2);
      found = true;
    } else {
      missing.tensors.push_back(t);
    }
  }
  ASSERT_TRUE(found);
  for (const io::Checkpoint* ck : {&shaped, &missing}) {
    try {
      semat_net::build_semat(*ck);
      ADD_FAILURE() << "expected CheckpointError";
    } catch (const CheckpointError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(bad), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
    }
  }
  // An unknown key is named too; the video-only modules are accepted and ignored.
  io::Checkpoint extra = semat_ckpt();
  io::TensorData t = extra.tensors.front();
  t.name = "sam_model.sam_mask_decoder.not_a_module.weight";
  extra.tensors.push_back(t);
  try {
    semat_net::build_semat(extra);
    ADD_FAILURE() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("not_a_module"), std::string::npos) << e.what();
  }
  int video = 0;
  for (const auto& x : semat_ckpt().tensors) video += x.name.rfind("sam_model.memory_", 0) == 0;
  EXPECT_GT(video, 0) << "the fixture carries video-only modules the loader accepts";
}

TEST(SematSam2Build, ParameterCountsOfTheTinyFixture) {
  // fixture.json param_counts.tiny
  const SematParameterCounts c = fixture_model()->parameter_counts();
  EXPECT_EQ(c.prompt_enhancement, 1576);
  EXPECT_EQ(c.lora, 26736);
  EXPECT_EQ(c.matting_tokens_adapter, 2084);
  EXPECT_EQ(c.matting_decoder, 218215);
  EXPECT_EQ(c.total, 248611);
  // trunk 92240 + neck 1984 + prompt encoder 700 + mask decoder 214969 + no_mem_embed 16 (the
  // video modules, 30209, are not built).
  EXPECT_EQ(c.frozen_sam, 92240 + 1984 + 700 + 214969 + 16);
}

// Table 7 of the paper for SEMat (SAM2), Hiera-L (docs semat_hq_sam2_arch.md section 2.2).
TEST(SematSam2Build, ParameterCountsOfTheOfficialHieraL) {
  const SematParameterCounts c = semat_parameter_counts(semat_preset("semat-sam2-hiera-l"));
  EXPECT_EQ(c.prompt_enhancement, 28368);
  EXPECT_EQ(c.lora, 2668912);
  EXPECT_EQ(c.matting_tokens_adapter, 494144);
  EXPECT_EQ(c.matting_decoder, 14631473);
  EXPECT_EQ(c.total, 17822897);
  // Frozen SAM 2 image path: trunk 212,149,296 + neck 553,984 + prompt encoder 6,220 + mask
  // decoder 4,215,109 + no_mem_embed 256.
  EXPECT_EQ(c.frozen_sam, 212149296 + 553984 + 6220 + 4215109 + 256);
}

TEST(SematSam2Build, KeyNamesFollowTheOfficialHieraLStateDict) {
  torch::NoGradGuard no_grad;
  const SematModel model(semat_preset("semat-sam2-hiera-l"));
  std::map<std::string, std::vector<int64_t>> ours, official;
  for (const auto& e : sam::expected_tensors(*model)) ours[e.name] = e.shape;
  int64_t video = 0;
  for (const auto& e : io::load_key_list(kDir + "keys_semat_sam2_hiera_l.txt")) {
    if (semat_net::is_sam2_video_only_key(e.name)) {
      ++video;
      continue;
    }
    official[e.name] = e.shape;
  }
  EXPECT_EQ(official.size() + video, 1420u);
  EXPECT_EQ(video, 157);
  EXPECT_EQ(ours.size(), official.size());
  for (const auto& [k, v] : official) {
    const auto it = ours.find(k);
    ASSERT_NE(it, ours.end()) << "missing " << k;
    EXPECT_EQ(it->second, v) << k;
  }
}

}  // namespace semat::models
