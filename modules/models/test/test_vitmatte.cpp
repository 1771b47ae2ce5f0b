// ViTMatte against the official implementation's outputs on the tiny random-weight fixture
// (tests/data/vitmatte_tiny, copied from the project's shared fixtures; see its README.md and
// fixture.json): run_one_image.py's preprocessing (PIL RGB / 255, trimap grey / 255 unquantised,
// the +32 padding rule), every stored intermediate, the main and the padding case.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/io/checkpoint.h"
#include "semat/io/image_io.h"
#include "semat/models/internal/sam/build.h"
#include "semat/models/internal/sam/image_encoder.h"
#include "semat/models/internal/vitmatte/build.h"
#include "semat/models/vitmatte_predictor.h"

#include "rgb_view.h"

namespace semat::models {
namespace {

const std::string kDir = std::string(SEMAT_TEST_DATA) + "/vitmatte_tiny/";

const io::Checkpoint& reference() {
  static const io::Checkpoint ref = io::load_checkpoint(kDir + "reference_outputs.safetensors");
  return ref;
}
const io::Checkpoint& tiny_ckpt() {
  static const io::Checkpoint ck = io::load_checkpoint(kDir + "vitmatte_tiny.pth");
  return ck;
}

torch::Tensor want(const std::string& name) { return sam::from_tensor_data(reference().at(name)); }

void expect_close(const torch::Tensor& ours, const torch::Tensor& expected, const std::string& what,
                  double tol = 1e-4) {
  ASSERT_EQ(ours.sizes(), expected.sizes()) << what;
  const double err =
      (ours.to(torch::kDouble) - expected.to(torch::kDouble)).abs().max().item<double>();
  EXPECT_LE(err, tol) << what << ": max abs error " << err;
  if (std::getenv("SEMAT_TEST_VERBOSE")) std::cerr << what << ": max abs error " << err << "\n";
}

// run_one_image.get_data: PIL RGB -> to_tensor; trimap PIL 'L' -> to_tensor (value / 255).
std::pair<torch::Tensor, torch::Tensor> fixture_inputs(const std::string& suffix) {
  cv::Mat rgb;
  cv::cvtColor(io::read_color(kDir + "image" + suffix + ".png"), rgb, cv::COLOR_BGR2RGB);
  const cv::Mat tri = io::read_gray8(kDir + "trimap" + suffix + ".png");
  auto x = torch::from_blob(rgb.data, {1, rgb.rows, rgb.cols, 3}, torch::kByte)
               .permute({0, 3, 1, 2})
               .to(torch::kFloat) /
           255.0;
  auto t = torch::from_blob(tri.data, {1, 1, tri.rows, tri.cols}, torch::kByte).to(torch::kFloat) / 255.0;
  return {x, t};
}

// The fixture's key lists carry a dtype and a group after the shape: keep name and shape.
std::vector<io::ExpectedTensor> official_keys(const std::string& file) {
  std::ifstream in(kDir + file);
  std::ostringstream kept;
  std::string line;
  while (std::getline(in, line)) {
    const size_t tab = line.find('\t');
    kept << (tab == std::string::npos ? line : line.substr(0, line.find('\t', tab + 1))) << "\n";
  }
  return io::parse_key_list(kept.str(), file);
}

// alpha_u8 = (alpha * 255).byte(): within 1 of the reference on at most 0.1 % of the pixels.
void expect_u8_close(const torch::Tensor& alpha, const torch::Tensor& ref_u8, const std::string& what) {
  const auto ours = (alpha.squeeze() * 255).to(torch::kByte).to(torch::kInt);
  const auto diff = (ours - ref_u8.to(torch::kInt)).abs();
  EXPECT_LE(diff.max().item<int>(), 1) << what;
  EXPECT_LE(diff.gt(0).sum().item<int64_t>(), ref_u8.numel() / 1000) << what;
}

torch::Tensor fix_known(const torch::Tensor& alpha, const torch::Tensor& trimap) {
  return torch::where(trimap == 0, torch::zeros_like(alpha),
                      torch::where(trimap == 1, torch::ones_like(alpha), alpha));
}

}  // namespace

TEST(VitMatteBuild, InfersTheTinyPresetFromShapesInBothWrappers) {
  EXPECT_EQ(tiny_ckpt().unwrapped, std::vector<std::string>{"['model']"});
  const VitMatteConfig c = vitmatte::infer_vitmatte_config(tiny_ckpt());
  EXPECT_EQ(c.name, "vitmatte-tiny");
  EXPECT_EQ(c, vitmatte_preset("vitmatte-tiny"));
  // The safetensors copy is the bare state dict (as re-hosted copies are).
  const auto bare = io::load_checkpoint(kDir + "vitmatte_tiny.safetensors");
  EXPECT_TRUE(bare.unwrapped.empty());
  EXPECT_EQ(vitmatte::infer_vitmatte_config(bare).name, "vitmatte-tiny");
  auto a = vitmatte::build_vitmatte(bare);
  auto b = vitmatte::build_vitmatte(tiny_ckpt(), "vitmatte-tiny");
  for (const auto& p : a->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), b->named_parameters()[p.key()])) << p.key();
}

TEST(VitMatteBuild, ModulesProduceTheOfficialKeysAndShapesOfSAndB) {
  for (const auto& [name, file] : std::map<std::string, std::string>{
           {"vitmatte-s", "keys_vitmatte_s.txt"}, {"vitmatte-b", "keys_vitmatte_b.txt"}}) {
    const auto expected = official_keys(file);
    ASSERT_EQ(expected.size(), 258u) << file;
    vitmatte::VitMatte model(vitmatte_preset(name));
    std::map<std::string, std::vector<int64_t>> ours, theirs;
    for (const auto& e : sam::expected_tensors(*model)) ours[e.name] = e.shape;
    for (const auto& e : expected) theirs[e.name] = e.shape;
    EXPECT_EQ(ours, theirs) << name;
    // Shape detection names the preset back from the official layout.
    io::Checkpoint fake;
    fake.source = file;
    for (const auto& e : expected) {
      io::TensorData t;
      t.name = e.name, t.shape = e.shape;
      fake.tensors.push_back(t);
    }
    EXPECT_EQ(vitmatte::infer_vitmatte_config(fake).name, name);
  }
}

TEST(VitMatteBuild, ParameterCountsAreTheOfficialModels) {
  EXPECT_EQ(vitmatte_parameter_counts(vitmatte_preset("vitmatte-tiny")).total, 635537);
  const auto s = vitmatte_parameter_counts(vitmatte_preset("vitmatte-s"));
  EXPECT_EQ(s.total, 25814753);
  EXPECT_EQ(s.backbone, 23745792);
  EXPECT_EQ(s.residual, 1923072);
  EXPECT_EQ(s.decoder, 2068961);
  const auto b = vitmatte_parameter_counts(vitmatte_preset("vitmatte-b"));
  EXPECT_EQ(b.total, 96686561);
  EXPECT_EQ(b.residual, 7680000);
  EXPECT_EQ(b.decoder, 2953697);
}

TEST(VitMatteBuild, StrictLoadingNamesTheWrongTensor) {
  io::Checkpoint ck = tiny_ckpt();
  // A mis-shaped tensor.
  for (auto& t : ck.tensors)
    if (t.name == "decoder.fusion_blks.1.conv.bn.running_var") {
      t.shape = {25};
      t.bytes.resize(25 * 4);
    }
  try {
    vitmatte::build_vitmatte(ck);
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("decoder.fusion_blks.1.conv.bn.running_var"), std::string::npos)
        << e.what();
  }
  // A missing and an unexpected tensor.
  ck = tiny_ckpt();
  for (auto& t : ck.tensors)
    if (t.name == "backbone.blocks.3.residual.norm2.bias") t.name = "backbone.blocks.3.residual.norm9.bias";
  try {
    vitmatte::build_vitmatte(ck);
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("backbone.blocks.3.residual.norm2.bias"), std::string::npos) << m;
    EXPECT_NE(m.find("backbone.blocks.3.residual.norm9.bias"), std::string::npos) << m;
  }
}

TEST(VitMatteBuild, RefusesOtherFamiliesAndWrongModelTypes) {
  const auto sam = io::load_checkpoint(std::string(SEMAT_TEST_DATA) + "/sam_tiny/sam_tiny.pth");
  EXPECT_THROW(vitmatte::infer_vitmatte_config(sam), CheckpointError);
  io::Checkpoint diff = tiny_ckpt();
  for (auto& t : diff.tensors) t.name = "model." + t.name;
  try {
    vitmatte::infer_vitmatte_config(diff);
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("DiffMatte"), std::string::npos) << e.what();
  }
  EXPECT_THROW(vitmatte::build_vitmatte(tiny_ckpt(), "vitmatte-s"), CheckpointError);
  EXPECT_THROW(vitmatte::build_vitmatte(tiny_ckpt(), "vitmatte-xl"), ConfigError);
}

TEST(VitMatteFixture, PaddingRuleGrowsBothSides) {
  using M = vitmatte::VitMatteImpl;
  using P = std::pair<int64_t, int64_t>;
  EXPECT_EQ(M::padded_size(256, 256), P(256, 256));
  EXPECT_EQ(M::padded_size(256, 200), P(288, 224));
  EXPECT_EQ(M::padded_size(100, 64), P(128, 96));
}

TEST(VitMatteFixture, MainCaseMatchesEveryStoredTensor) {
  torch::NoGradGuard no_grad;
  auto model = vitmatte::build_vitmatte(tiny_ckpt());
  const auto [rgb, tri] = fixture_inputs("");
  vitmatte::VitMatteTrace tr;
  const auto alpha = model->forward(rgb, tri, &tr);
  expect_close(tr.input, want("input"), "input", 1e-6);
  expect_close(tr.vit.patch_embed, want("backbone.patch_embed"), "backbone.patch_embed");
  expect_close(tr.vit.abs_pos, want("backbone.abs_pos"), "backbone.abs_pos");
  ASSERT_EQ(tr.vit.blocks.size(), 4u);
  for (int i = 0; i < 4; ++i)
    expect_close(tr.vit.blocks[i], want("backbone.block" + std::to_string(i)), "backbone.block" + std::to_string(i));
  for (int i : {1, 3}) {
    const std::string b = "backbone.block" + std::to_string(i);
    expect_close(tr.vit.attn_mlp_out[i], want(b + ".attn_mlp_out"), b + ".attn_mlp_out");
    auto attn = model->backbone->blocks[i]->as<vitmatte::Block>()->attn;
    expect_close(sam::get_rel_pos(16, 16, attn->rel_pos_h), want(b + ".rel_pos_h"), b + ".rel_pos_h", 1e-6);
    expect_close(sam::get_rel_pos(16, 16, attn->rel_pos_w), want(b + ".rel_pos_w"), b + ".rel_pos_w", 1e-6);
  }
  expect_close(tr.features, want("features"), "features");
  expect_close(tr.decoder.details[2], want("decoder.D2"), "decoder.D2");
  expect_close(tr.decoder.details[3], want("decoder.D3"), "decoder.D3");
  for (int i = 0; i < 3; ++i)
    expect_close(tr.decoder.fusion[i], want("decoder.fusion" + std::to_string(i)), "decoder.fusion" + std::to_string(i));
  expect_close(tr.decoder.logits, want("alpha_logits"), "alpha_logits");
  expect_close(alpha, want("alpha"), "alpha", 2e-5);
  expect_close(fix_known(alpha, tri), want("alpha_fixed"), "alpha_fixed", 2e-5);
  expect_u8_close(alpha, want("alpha_u8"), "alpha_u8");
}

TEST(VitMatteFixture, PadCaseMatchesEveryStoredTensor) {
  torch::NoGradGuard no_grad;
  auto model = vitmatte::build_vitmatte(tiny_ckpt());
  const auto [rgb, tri] = fixture_inputs("_pad");
  ASSERT_EQ(rgb.size(2), 256);
  ASSERT_EQ(rgb.size(3), 200);
  vitmatte::VitMatteTrace tr;
  const auto alpha = model->forward(rgb, tri, &tr);
  expect_close(tr.input, want("pad.input"), "pad.input", 1e-6);
  expect_close(tr.vit.abs_pos, want("pad.backbone.abs_pos"), "pad.backbone.abs_pos");
  auto attn = model->backbone->blocks[1]->as<vitmatte::Block>()->attn;
  expect_close(sam::get_rel_pos(18, 18, attn->rel_pos_h), want("pad.backbone.block1.rel_pos_h"), "pad rel_pos_h", 1e-6);
  expect_close(sam::get_rel_pos(14, 14, attn->rel_pos_w), want("pad.backbone.block1.rel_pos_w"), "pad rel_pos_w", 1e-6);
  expect_close(tr.features, want("pad.features"), "pad.features");
  expect_close(tr.decoder.logits, want("pad.alpha_logits"), "pad.alpha_logits");
  expect_close(alpha, want("pad.alpha"), "pad.alpha", 2e-5);
  expect_close(fix_known(alpha, tri), want("pad.alpha_fixed"), "pad.alpha_fixed", 2e-5);
  expect_u8_close(alpha, want("pad.alpha_u8"), "pad.alpha_u8");
}

TEST(VitMattePredictor, FacadeGivesTheOfficialAlphaAndShrinksPastItsCap) {
  VitMattePredictor::Options o;
  o.device = "cpu";
  VitMattePredictor p(kDir + "vitmatte_tiny.pth", o);
  EXPECT_EQ(p.config().name, "vitmatte-tiny");
  const cv::Mat image = io::read_color(kDir + "image_pad.png");
  const cv::Mat trimap = io::read_gray8(kDir + "trimap_pad.png");
  const VitMatteAlpha a = p.predict(image, trimap);
  ASSERT_EQ(a.alpha.type(), CV_32F);
  ASSERT_EQ(a.alpha.size(), image.size());
  EXPECT_EQ(a.scale, 1.0);
  const auto ours = torch::from_blob(a.alpha.data, {1, 1, a.alpha.rows, a.alpha.cols}, torch::kFloat);
  expect_close(ours, want("pad.alpha"), "predictor pad.alpha", 2e-5);

  o.max_pixels = 128 * 100;  // a quarter of the pixels: runs at half size
  VitMattePredictor small(kDir + "vitmatte_tiny.pth", o);
  const VitMatteAlpha s = small.predict(image, trimap);
  EXPECT_NEAR(s.scale, 0.5, 1e-9);
  ASSERT_EQ(s.alpha.size(), image.size());
  double lo, hi;
  cv::minMaxLoc(s.alpha, &lo, &hi);
  EXPECT_GE(lo, 0.0);
  EXPECT_LE(hi, 1.0);
  EXPECT_THROW(p.predict(image, cv::Mat(10, 10, CV_8U)), InvalidArgument);

  // RGB pixels (a view with padded rows) give the BGR file's alpha bit for bit, at full size and
  // shrunk.
  cv::Mat storage;
  const cv::Mat view = semat::test::rgb_view_with_gaps(image, storage);
  ASSERT_FALSE(view.isContinuous());
  EXPECT_EQ(cv::norm(p.predict(view, trimap, ChannelOrder::kRGB).alpha, a.alpha, cv::NORM_INF), 0.0);
  EXPECT_EQ(cv::norm(small.predict(view, trimap, ChannelOrder::kRGB).alpha, s.alpha, cv::NORM_INF), 0.0);
  EXPECT_GT(cv::norm(p.predict(view, trimap).alpha, a.alpha, cv::NORM_INF), 0.0);  // declared BGR
}

}  // namespace semat::models
