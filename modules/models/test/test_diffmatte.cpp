// DiffMatte against the official implementation's outputs on the tiny random-weight fixture
// (tests/data/diffmatte_tiny; see its README.md): get_data's trimap quantisation, both padded
// inputs, the ViT features, every one of the ten DDIM steps from the fixture's seeded x_T, the
// sample and DifMatte's alpha.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/io/checkpoint.h"
#include "semat/io/image_io.h"
#include "semat/models/internal/diffmatte/diffmatte.h"
#include "semat/models/internal/sam/build.h"
#include "semat/models/vitmatte_predictor.h"

namespace semat::models {
namespace {

const std::string kDir = std::string(SEMAT_TEST_DATA) + "/diffmatte_tiny/";

const io::Checkpoint& reference() {
  static const io::Checkpoint ref = io::load_checkpoint(kDir + "reference_outputs.safetensors");
  return ref;
}
const io::Checkpoint& tiny_ckpt() {
  static const io::Checkpoint ck = io::load_checkpoint(kDir + "diffmatte_tiny.pth");
  return ck;
}
torch::Tensor want(const std::string& name) { return sam::from_tensor_data(reference().at(name)); }

void expect_close(const torch::Tensor& ours, const torch::Tensor& expected, const std::string& what, double tol) {
  ASSERT_EQ(ours.sizes(), expected.sizes()) << what;
  const double err = (ours.to(torch::kDouble) - expected.to(torch::kDouble)).abs().max().item<double>();
  EXPECT_LE(err, tol) << what << ": max abs error " << err;
  if (std::getenv("SEMAT_TEST_VERBOSE")) std::cerr << what << ": max abs error " << err << "\n";
}

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

}  // namespace

TEST(DiffMatteBuild, InfersTheTinyPresetAndTheOfficialLayouts) {
  EXPECT_EQ(diffmatte::infer_diffmatte_config(tiny_ckpt()).name, "diffmatte-tiny");
  for (const auto& [name, file] : std::map<std::string, std::string>{
           {"diffmatte-vits", "keys_diffmatte_vits.txt"},
           {"diffmatte-vitb", "keys_diffmatte_vitb.txt"},
           {"diffmatte-vits-1024", "keys_diffmatte_vits_1024.txt"}}) {
    const auto expected = official_keys(file);
    diffmatte::DiffMatte model(diffmatte_preset(name));
    std::map<std::string, std::vector<int64_t>> ours, theirs;
    for (const auto& e : sam::expected_tensors(*model, "model.")) ours[e.name] = e.shape;
    for (const auto& e : expected) theirs[e.name] = e.shape;
    EXPECT_EQ(ours, theirs) << name;
    io::Checkpoint fake;
    fake.source = file;
    for (const auto& e : expected) {
      io::TensorData t;
      t.name = e.name, t.shape = e.shape;
      fake.tensors.push_back(t);
    }
    EXPECT_EQ(diffmatte::infer_diffmatte_config(fake).name, name);
  }
}

TEST(DiffMatteBuild, ParameterCountsAreTheOfficialModels) {
  EXPECT_EQ(diffmatte_parameter_counts(diffmatte_preset("diffmatte-vits")).total, 29014273);
  EXPECT_EQ(diffmatte_parameter_counts(diffmatte_preset("diffmatte-vits")).decoder, 5268481);
  EXPECT_EQ(diffmatte_parameter_counts(diffmatte_preset("diffmatte-vits-1024")).total, 29047041);
  EXPECT_EQ(diffmatte_parameter_counts(diffmatte_preset("diffmatte-vitb")).total, 101458945);
}

TEST(DiffMatteBuild, StrictLoadingNamesTheWrongTensorAndRefusesViTMatte) {
  io::Checkpoint ck = tiny_ckpt();
  for (auto& t : ck.tensors)
    if (t.name == "model.decoder.up_blks.1.emb_layers.0.bias") t.name = "model.decoder.up_blks.1.emb_layers.1.bias";
  try {
    diffmatte::build_diffmatte(ck);
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("model.decoder.up_blks.1.emb_layers.0.bias"), std::string::npos) << m;
    EXPECT_NE(m.find("model.decoder.up_blks.1.emb_layers.1.bias"), std::string::npos) << m;
  }
  const auto vm = io::load_checkpoint(std::string(SEMAT_TEST_DATA) + "/vitmatte_tiny/vitmatte_tiny.pth");
  try {
    diffmatte::infer_diffmatte_config(vm);
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("ViTMatte"), std::string::npos) << e.what();
  }
}

TEST(DiffMatteFixture, TenDdimStepsMatchTheOfficialCode) {
  torch::NoGradGuard no_grad;
  auto model = diffmatte::build_diffmatte(tiny_ckpt());
  cv::Mat rgb;
  cv::cvtColor(io::read_color(kDir + "image.png"), rgb, cv::COLOR_BGR2RGB);
  const cv::Mat tri = io::read_gray8(kDir + "trimap.png");
  const auto x = torch::from_blob(rgb.data, {1, rgb.rows, rgb.cols, 3}, torch::kByte).permute({0, 3, 1, 2}).to(torch::kFloat) / 255.0;
  const auto t = torch::from_blob(tri.data, {1, 1, tri.rows, tri.cols}, torch::kByte).to(torch::kFloat) / 255.0;
  diffmatte::SampleTrace tr;
  const auto sample = model->sample(x, t, want("x_T"), 10, &tr);
  expect_close(tr.input_backbone, want("input_backbone"), "input_backbone", 1e-6);
  expect_close(tr.input_decoder, want("input_decoder"), "input_decoder", 1e-6);
  expect_close(tr.features, want("features"), "features", 5e-5);
  expect_close(tr.timesteps, want("timesteps"), "timesteps", 0);
  for (int i = 0; i < 3; ++i) {
    expect_close(tr.step0.down[i], want("step0.down" + std::to_string(i)), "step0.down" + std::to_string(i), 5e-5);
    expect_close(tr.step0.up[i], want("step0.up" + std::to_string(i)), "step0.up" + std::to_string(i), 5e-5);
  }
  expect_close(tr.step0.mid, want("step0.mid"), "step0.mid", 5e-5);
  auto stacked = [](const std::vector<torch::Tensor>& v) { return torch::stack(v); };
  expect_close(stacked(tr.noised), want("steps.noised"), "steps.noised", 2e-5);
  expect_close(stacked(tr.x_t), want("steps.x_t"), "steps.x_t", 5e-5);
  expect_close(stacked(tr.emb), want("steps.emb"), "steps.emb", 1e-5);
  expect_close(stacked(tr.logits), want("steps.logits"), "steps.logits", 1e-4);
  expect_close(stacked(tr.pred_x0), want("steps.pred_x0"), "steps.pred_x0", 2e-5);
  expect_close(sample, want("sample"), "sample", 2e-5);
  const auto alpha255 = diffmatte::DiffMatteImpl::alpha_from_sample(sample, t)[0][0] * 255;
  expect_close(alpha255, want("alpha_x255"), "alpha_x255", 5e-3);
  const auto u8 = alpha255.round().clamp(0, 255).to(torch::kInt);
  const auto diff = (u8 - want("alpha_u8").to(torch::kInt)).abs();
  EXPECT_LE(diff.max().item<int>(), 1);
  EXPECT_LE(diff.gt(0).sum().item<int64_t>(), u8.numel() / 1000);
}

}  // namespace semat::models

namespace semat::models {

TEST(DiffMattePredictor, SeedZeroReproducesTheFixturesNoiseAndAlpha) {
  DiffMattePredictor::Options o;
  o.device = "cpu";
  DiffMattePredictor p(kDir + "diffmatte_tiny.pth", o);
  EXPECT_EQ(p.config().name, "diffmatte-tiny");
  const cv::Mat image = io::read_color(kDir + "image.png");
  const cv::Mat trimap = io::read_gray8(kDir + "trimap.png");
  const VitMatteAlpha a = p.predict(image, trimap);
  ASSERT_EQ(a.alpha.size(), image.size());
  const auto ours = torch::from_blob(a.alpha.data, {a.alpha.rows, a.alpha.cols}, torch::kFloat) * 255;
  expect_close(ours, want("alpha_x255"), "predictor alpha_x255", 5e-3);
  // Another seed, another start: a different (still valid) alpha.
  o.seed = 1;
  const VitMatteAlpha b = DiffMattePredictor(kDir + "diffmatte_tiny.pth", o).predict(image, trimap);
  EXPECT_GT(cv::norm(a.alpha, b.alpha, cv::NORM_INF), 0);
}

}  // namespace semat::models
