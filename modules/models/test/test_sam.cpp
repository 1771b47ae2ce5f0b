// SAM against the official implementation's outputs on the tiny random-weight fixture
// (tests/data/sam_tiny, copied from the project's shared fixtures; see fixture.json).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/io/checkpoint.h"
#include "semat/io/image_io.h"
#include "semat/models/internal/sam/build.h"
#include "semat/models/internal/sam/image_encoder.h"
#include "semat/models/runtime.h"
#include "semat/models/sam_predictor.h"
#include "semat/models/transforms.h"

#include "rgb_view.h"

namespace semat::models {
namespace {

const std::string kDir = std::string(SEMAT_TEST_DATA) + "/sam_tiny/";

const io::Checkpoint& reference() {
  static const io::Checkpoint ref = io::load_checkpoint(kDir + "reference_outputs.safetensors");
  return ref;
}

torch::Tensor ref_tensor(const std::string& name) { return sam::from_tensor_data(reference().at(name)); }

nlohmann::json fixture() {
  std::ifstream f(kDir + "fixture.json");
  return nlohmann::json::parse(f);
}

SamPredictor& predictor() {
  static SamPredictor p(kDir + "sam_tiny.pth", [] {
    SamPredictor::Options o;
    o.model_type = "tiny";
    o.device = "cpu";
    return o;
  }());
  return p;
}

void expect_close(const torch::Tensor& ours, const torch::Tensor& ref, const std::string& what,
                  double tol = 1e-4) {
  ASSERT_EQ(ours.sizes(), ref.sizes()) << what;
  const double err = (ours.to(torch::kFloat) - ref.to(torch::kFloat)).abs().max().item<double>();
  EXPECT_LE(err, tol) << what << ": max abs error " << err;
}

torch::Tensor stack_mats(const std::vector<cv::Mat>& mats) {
  std::vector<torch::Tensor> ts;
  for (const auto& m : mats) ts.push_back(torch::from_blob(m.data, {m.rows, m.cols}, torch::kFloat).clone());
  return torch::stack(ts);
}

}  // namespace

TEST(SamTransforms, PreprocessSizeRoundsLikeTheOfficialCode) {
  EXPECT_EQ(preprocess_size(210, 300, 128), cv::Size(128, 90));
  EXPECT_EQ(preprocess_size(480, 640, 1024), cv::Size(1024, 768));
  EXPECT_EQ(preprocess_size(1000, 1000, 1024), cv::Size(1024, 1024));
}

TEST(SamTransforms, PilResizeIsBitExact) {
  const cv::Mat bgr = io::read_color(kDir + "image.png");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  const cv::Mat ours = pil_resize_bilinear(rgb, {128, 90});
  const auto ref = ref_tensor("resized_image");
  ASSERT_EQ(ref.size(0), 90);
  const auto ours_t = torch::from_blob(ours.data, {90, 128, 3}, torch::kByte);
  EXPECT_TRUE(torch::equal(ours_t, ref)) << "differing bytes: " << (ours_t != ref).sum().item<int64_t>();
}

TEST(SamBuild, InfersTheTinyConfigFromShapes) {
  const auto ck = io::load_checkpoint(kDir + "sam_tiny.pth");
  const SamConfig c = sam::infer_sam_config(ck, /*decoder_heads=*/2);
  const SamConfig tiny = sam_preset("tiny");
  EXPECT_TRUE(c == tiny);
  EXPECT_EQ(c.encoder.global_attn_indexes, std::vector<int64_t>({1}));
  EXPECT_EQ(c.encoder.window_size, 4);
}

TEST(SamBuild, ModulesProduceTheOfficialKeysAndShapes) {
  torch::NoGradGuard g;
  for (const std::string name : {"vit_b", "vit_l", "vit_h"}) {
    // Build on the meta-free CPU path but only compare names and shapes.
    const auto expected = io::load_key_list(kDir + "keys_" + name + ".txt");
    sam::Sam model(sam_preset(name));
    auto ours = sam::expected_tensors(*model);
    std::map<std::string, std::vector<int64_t>> a, b;
    for (const auto& e : ours) a[e.name] = e.shape;
    for (const auto& e : expected) b[e.name] = e.shape;
    EXPECT_EQ(a.size(), b.size()) << name;
    for (const auto& [k, v] : b) {
      auto it = a.find(k);
      ASSERT_NE(it, a.end()) << name << ": missing " << k;
      EXPECT_EQ(it->second, v) << name << ": " << k;
    }
  }
}

TEST(SamBuild, StrictLoadingNamesEveryProblem) {
  auto ck = io::load_checkpoint(kDir + "sam_tiny.safetensors");
  ck.tensors.erase(ck.tensors.begin());  // drop one tensor
  ck.tensors.push_back(ck.tensors.back());
  ck.tensors.back().name = "mask_decoder.extra.weight";
  try {
    sam::build_sam(ck, "tiny");
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
    EXPECT_NE(msg.find("mask_decoder.extra.weight"), std::string::npos) << msg;
  }
  // A vit_b preset against tiny weights: mis-shaped tensors are reported.
  EXPECT_THROW(sam::build_sam(io::load_checkpoint(kDir + "sam_tiny.pth"), "vit_b"), CheckpointError);
}

// build_sam skips the linear layers' random initialisation and, for a bf16 encoder, converts the
// weights while copying them in: every parameter must still come out equal to the checkpoint's
// tensor (nothing left uninitialised), and the bf16 encoder bit-equal to converting afterwards.
TEST(SamBuild, LoadedParametersEqualTheCheckpointInBothPrecisions) {
  torch::NoGradGuard g;
  const auto ck = io::load_checkpoint(kDir + "sam_tiny.safetensors");
  auto fp32 = sam::build_sam(ck, "tiny");
  auto converted_after = sam::build_sam(ck, "tiny");
  converted_after->image_encoder->set_compute_dtype(torch::kBFloat16);
  auto converted_on_load = sam::build_sam(ck, "tiny", torch::kBFloat16);
  const auto after = converted_after->named_parameters(true);
  const auto on_load = converted_on_load->named_parameters(true);
  size_t n = 0, bf16 = 0;
  for (const auto& p : fp32->named_parameters(true)) {
    const auto want = sam::tensor_view(ck.at(p.key()));
    EXPECT_TRUE(torch::equal(p.value(), want)) << p.key();
    ASSERT_TRUE(on_load.contains(p.key())) << p.key();
    const auto& a = after[p.key()];
    const auto& b = on_load[p.key()];
    EXPECT_EQ(a.scalar_type(), b.scalar_type()) << p.key();
    EXPECT_TRUE(torch::equal(a, b)) << p.key();
    bf16 += b.scalar_type() == torch::kBFloat16;
    ++n;
  }
  for (const auto& b : fp32->named_buffers(true)) {
    EXPECT_TRUE(torch::equal(b.value(), sam::tensor_view(ck.at(b.key())))) << b.key();
    ++n;
  }
  EXPECT_EQ(n, ck.tensors.size());
  EXPECT_GT(bf16, 0u);
  EXPECT_EQ(converted_on_load->image_encoder->compute_dtype, torch::kBFloat16);
}

// Issue #14: shape inference trusted ranks and sizes (SIGFPE on a zero rel_pos_h head size,
// SIGSEGV on a 0-d neck weight, a 31-line LibTorch backtrace on an empty patch_embed). Each
// crafted tensor must give one CheckpointError line naming the key, for build_sam with "auto"
// (inference from shapes) and with a preset.
TEST(SamBuild, CraftedShapesAreCleanErrors) {
  const io::Checkpoint good = io::load_checkpoint(kDir + "sam_tiny.safetensors");
  struct Case {
    std::string key;
    std::vector<int64_t> shape;
  };
  const std::vector<Case> cases = {
      {"image_encoder.blocks.0.attn.rel_pos_h", {7, 0}},     // zero head size: embed / 0
      {"image_encoder.blocks.0.attn.rel_pos_h", {7}},        // missing dimension
      {"image_encoder.blocks.1.attn.rel_pos_h", {0, 32}},    // zero positions
      {"image_encoder.blocks.0.attn.rel_pos_h", {7, 48}},    // head size not dividing 64
      {"image_encoder.neck.0.weight", {}},                   // 0-d
      {"image_encoder.patch_embed.proj.weight", {0, 3, 16, 16}},
      {"image_encoder.patch_embed.proj.weight", {64, 3, 0, 0}},
      {"image_encoder.pos_embed", {1, 0, 8, 64}},
      {"mask_decoder.iou_token.weight", {1, 0}},
      {"mask_decoder.mask_tokens.weight", {1, 32}},          // no multimask outputs
      {"mask_decoder.transformer.layers.0.mlp.lin1.weight", {64}},
      {"mask_decoder.iou_prediction_head.layers.0.weight", {0, 32}},
      {"prompt_encoder.mask_downscaling.3.weight", {6, 2, 2, 2}},
  };
  for (const Case& c : cases) {
    io::Checkpoint ck = good;
    bool found = false;
    for (io::TensorData& t : ck.tensors) {
      if (t.name != c.key) continue;
      found = true;
      t.shape = c.shape;
      int64_t n = 1;
      for (int64_t d : c.shape) n *= d;
      t.bytes.assign(static_cast<size_t>(n) * 4, 0);
    }
    ASSERT_TRUE(found) << c.key;
    for (const std::string type : {"auto", "tiny"}) {
      SCOPED_TRACE(c.key + " " + io::shape_to_string(c.shape) + " " + type);
      try {
        sam::build_sam(ck, type);
        ADD_FAILURE() << "no CheckpointError";
      } catch (const CheckpointError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        EXPECT_NE(msg.find(kDir), std::string::npos) << msg;
      }
    }
  }
}

TEST(SamPredictor, ReproducesTheOfficialImageEmbedding) {
  auto& p = predictor();
  p.set_image(io::read_color(kDir + "image.png"));
  std::vector<std::string> compared;
  for (const auto& t : p.image_tensors()) {
    const auto ours = sam::from_tensor_data(t), want = ref_tensor(t.name);
    if (t.name == "resized_image")  // 8-bit PIL resize: bit-exact
      EXPECT_TRUE(torch::equal(ours, want)) << "resized_image differs";
    else
      expect_close(ours, want, t.name);
    compared.push_back(t.name);
  }
  // The loop above would pass vacuously if the predictor stopped reporting its tensors.
  EXPECT_EQ(compared, (std::vector<std::string>{"input_tensor", "image_embeddings", "resized_image"}));
}

TEST(SamPredictor, ReproducesTheOfficialMasksForEveryPrompt) {
  auto& p = predictor();
  p.set_image(io::read_color(kDir + "image.png"));
  const auto prompts = fixture()["prompts"];
  ASSERT_GE(prompts.size(), 1u) << "the fixture lists no prompts";
  for (const auto& [case_name, spec] : prompts.items()) {
    SamPrompt prompt;
    if (spec.contains("box")) {
      const auto b = spec["box"];
      prompt.box = Box{b[0], b[1], b[2], b[3]};
    }
    if (spec.contains("point_coords")) {
      for (const auto& pt : spec["point_coords"]) prompt.points.emplace_back(pt[0].get<float>(), pt[1].get<float>());
      for (const auto& l : spec["point_labels"]) prompt.labels.push_back(l.get<int>());
    }
    for (bool multi : {true, false}) {
      const std::string key = case_name + (multi ? "_multi" : "_single");
      const SamMasks m = p.predict(prompt, multi);
      expect_close(stack_mats(m.low_res_logits), ref_tensor(key + ".low_res_logits"), key + " low_res");
      expect_close(stack_mats(m.logits), ref_tensor(key + ".mask_logits"), key + " mask_logits");
      expect_close(torch::tensor(m.iou), ref_tensor(key + ".iou_predictions"), key + " iou");
    }
  }
}

// The three ways of computing global attention (full maps, blocks of queries, one thread per head
// at inference) agree; 36 x 36 tokens take the per-head path (more than 1024 tokens).
TEST(SamEncoder, GlobalAttentionPathsAgree) {
  torch::manual_seed(3);
  sam::Attention attn(64, 4, 36);
  {
    torch::NoGradGuard g;
    for (auto& p : attn->parameters()) p.normal_(0, 0.2);
  }
  const auto x = torch::randn({2, 36, 36, 64});
  const auto full = attn->forward(x).detach();  // grad mode on: batched, full maps
  const int64_t saved = sam::attention_score_budget();
  sam::set_attention_score_budget(2 * 4 * 1296 * 100);  // 100 query rows per block
  const auto blocked = attn->forward(x).detach();
  sam::set_attention_score_budget(saved);
  torch::Tensor by_head;
  {
    torch::NoGradGuard g;
    by_head = attn->forward(x);
  }
  EXPECT_LT((full - blocked).abs().max().item<double>(), 1e-5);
  EXPECT_LT((full - by_head).abs().max().item<double>(), 1e-5);
}

// bf16 inference folds the windows' relative-position terms into the q k^T product
// (attention_folded_bias). Before, ViT-B's windows took the budgeted path (scores in blocks of
// query rows, the terms added in bf16); small batches took the path that widens the scores to
// float32 for the adds (gradient mode still takes both). The folded sum is rounded to bf16 once,
// after the terms are in: a little less accurate than adding them to float32 scores, more than
// adding them in bf16.
TEST(SamEncoder, Bf16WindowedAttentionStaysNearFloat32) {
  torch::manual_seed(4);
  sam::Attention attn(64, 4, 14);
  {
    torch::NoGradGuard g;
    for (auto& p : attn->parameters()) p.normal_(0, 0.2);
  }
  const auto x = torch::randn({3, 14, 14, 64});  // three 14 x 14 windows
  torch::Tensor ref;
  {
    torch::NoGradGuard g;
    ref = attn->forward(x);
  }
  attn->to(torch::kBFloat16);
  const auto xb = x.to(torch::kBFloat16);
  const auto widened = attn->forward(xb).detach().to(torch::kFloat);  // grad mode: whole maps
  const int64_t saved = sam::attention_score_budget();
  sam::set_attention_score_budget(3 * 4 * 196 * 100);  // 100 query rows per block
  const auto budgeted = attn->forward(xb).detach().to(torch::kFloat);
  sam::set_attention_score_budget(saved);
  torch::Tensor folded;
  {
    torch::NoGradGuard g;
    folded = attn->forward(xb).to(torch::kFloat);
  }
  const auto mean_err = [&](const torch::Tensor& t) { return (t - ref).abs().mean().item<double>(); };
  const double scale = ref.abs().max().item<double>();
  const double max_folded = (folded - ref).abs().max().item<double>();
  const double folded_err = mean_err(folded), widened_err = mean_err(widened), budgeted_err = mean_err(budgeted);
  const std::string errs = "mean abs error folded " + std::to_string(folded_err) + ", widened " +
                           std::to_string(widened_err) + ", budgeted " + std::to_string(budgeted_err) +
                           "; folded max " + std::to_string(max_folded) + " of outputs up to " + std::to_string(scale);
  std::cout << errs << "\n";
  EXPECT_LT(max_folded, 0.03 * scale) << errs;
  EXPECT_LE(folded_err, 1.2 * widened_err) << errs;
  EXPECT_LE(folded_err, budgeted_err) << errs;
}

TEST(SamPredictor, BatchedBoxesEqualOneByOne) {
  auto& p = predictor();
  p.set_image(io::read_color(kDir + "image.png"));
  const std::vector<Box> boxes = {{60, 20, 230, 200}, {10, 10, 120, 150}};
  const auto batched = p.predict_boxes(boxes, false);
  ASSERT_EQ(batched.size(), 2u);
  for (size_t i = 0; i < boxes.size(); ++i) {
    SamPrompt pr;
    pr.box = boxes[i];
    const auto single = p.predict(pr, false);
    EXPECT_LT(cv::norm(single.logits[0], batched[i].logits[0], cv::NORM_INF), 1e-4);
  }
}

// RGB pixels (here a view with padded rows, as a numpy crop hands them over) are read as they
// are: the network's input, the embedding and the masks equal those of the BGR file bit for bit,
// and the caller's pixels are only read. The same view declared BGR gives another input.
TEST(SamPredictor, RgbInputGivesTheSameInputEmbeddingAndMasks) {
  auto& p = predictor();
  const cv::Mat bgr = io::read_color(kDir + "image.png");
  cv::Mat padded;
  const cv::Mat view = semat::test::rgb_view_with_gaps(bgr, padded), before = padded.clone();
  ASSERT_FALSE(view.isContinuous());
  SamPrompt prompt;
  prompt.box = Box{60, 20, 230, 200};

  p.set_image(bgr);
  const auto want_tensors = p.image_tensors();
  const SamMasks want = p.predict(prompt, true);
  p.set_image(view, ChannelOrder::kRGB);
  const auto got_tensors = p.image_tensors();
  const SamMasks got = p.predict(prompt, true);
  EXPECT_EQ(cv::norm(padded, before, cv::NORM_INF), 0.0);
  ASSERT_EQ(got_tensors.size(), want_tensors.size());
  ASSERT_EQ(got_tensors.size(), 3u);  // input_tensor, image_embeddings, resized_image
  for (size_t i = 0; i < got_tensors.size(); ++i) {
    EXPECT_EQ(got_tensors[i].name, want_tensors[i].name);
    EXPECT_TRUE(got_tensors[i].bytes == want_tensors[i].bytes) << got_tensors[i].name << " differs";
  }
  ASSERT_EQ(got.logits.size(), 3u);
  ASSERT_EQ(want.logits.size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(cv::norm(got.logits[k], want.logits[k], cv::NORM_INF), 0.0) << "mask " << k;
    EXPECT_EQ(cv::norm(got.low_res_logits[k], want.low_res_logits[k], cv::NORM_INF), 0.0) << "low-res " << k;
  }
  EXPECT_EQ(got.iou, want.iou);

  p.set_image(view);  // the RGB pixels declared BGR: swapped before the network
  EXPECT_FALSE(p.image_tensors()[0].bytes == want_tensors[0].bytes);
}

TEST(SamPredictor, RejectsBadPrompts) {
  auto& p = predictor();
  p.set_image(io::read_color(kDir + "image.png"));
  SamPrompt outside;
  outside.box = Box{0, 0, 400, 100};
  EXPECT_THROW(p.predict(outside, false), InvalidArgument);
  SamPrompt bad_label;
  bad_label.points = {{10, 10}};
  bad_label.labels = {2};
  EXPECT_THROW(p.predict(bad_label, false), InvalidArgument);
  EXPECT_THROW(p.predict(SamPrompt{}, false), InvalidArgument);
}

// configure_runtime sets exactly the thread count asked for, 0 meaning every logical core.
TEST(Runtime, ConfigureSetsTheThreadCount) {
  const int before = runtime_threads();
  RuntimeOptions o;
  o.keep_large_blocks = false;
  o.threads = 1;
  configure_runtime(o);
  EXPECT_EQ(runtime_threads(), 1);
  o.threads = 0;
  configure_runtime(o);
  EXPECT_EQ(runtime_threads(), static_cast<int>(std::thread::hardware_concurrency()));
  o.threads = -1;  // leaves LibTorch's count alone
  configure_runtime(o);
  EXPECT_EQ(runtime_threads(), static_cast<int>(std::thread::hardware_concurrency()));
  o.threads = before;
  configure_runtime(o);
  EXPECT_EQ(runtime_threads(), before);
}

// OMP_NUM_THREADS (which LibTorch follows itself) wins over SEMAT_THREADS; nonsense is ignored.
TEST(Runtime, EnvironmentChoosesTheThreadCount) {
  struct Saved {
    const char* name;
    std::optional<std::string> value;
  };
  std::vector<Saved> saved;
  for (const char* name : {"OMP_NUM_THREADS", "SEMAT_THREADS"}) {
    const char* v = std::getenv(name);
    saved.push_back({name, v ? std::optional<std::string>(v) : std::nullopt});
    unsetenv(name);
  }
  EXPECT_EQ(runtime_options_from_environment().threads, 0);
  EXPECT_TRUE(runtime_options_from_environment().keep_large_blocks);
  setenv("SEMAT_THREADS", "3", 1);
  EXPECT_EQ(runtime_options_from_environment().threads, 3);
  setenv("SEMAT_THREADS", "many", 1);
  EXPECT_EQ(runtime_options_from_environment().threads, 0);
  setenv("SEMAT_THREADS", "3", 1);
  setenv("OMP_NUM_THREADS", "2", 1);
  EXPECT_EQ(runtime_options_from_environment().threads, -1);
  for (const auto& v : saved) {
    if (v.value)
      setenv(v.name, v.value->c_str(), 1);
    else
      unsetenv(v.name);
  }
}

}  // namespace semat::models
