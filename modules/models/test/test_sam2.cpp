// SAM 2 (image path) against the official code's outputs on the tiny random-weight fixture
// (tests/data/sam2_tiny, copied from the project's shared fixtures; see its README.md and
// fixture.json): Hiera stages, FPN levels, high-res features, prompt and decoder outputs, and the
// SAM2ImagePredictor cases, for the SAM 2.0 and SAM 2.1 checkpoint layouts.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <fstream>
#include <map>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/io/checkpoint.h"
#include "semat/models/internal/sam/build.h"
#include "semat/io/image_io.h"
#include "semat/models/internal/sam2/build.h"
#include "semat/models/internal/sam2/image_encoder.h"
#include "semat/models/sam2_config.h"
#include "semat/models/sam2_predictor.h"

#include "rgb_view.h"

namespace semat::models {
namespace {

const std::string kDir = std::string(SEMAT_TEST_DATA) + "/sam2_tiny/";

const io::Checkpoint& reference() {
  static const io::Checkpoint ref = io::load_checkpoint(kDir + "reference_outputs.safetensors");
  return ref;
}

torch::Tensor ref_tensor(const std::string& name) { return sam::from_tensor_data(reference().at(name)); }

nlohmann::json fixture() {
  std::ifstream f(kDir + "fixture.json");
  return nlohmann::json::parse(f);
}

void expect_close(const torch::Tensor& ours, const torch::Tensor& ref, const std::string& what, double tol) {
  ASSERT_EQ(ours.sizes(), ref.sizes()) << what;
  const double err = (ours.to(torch::kFloat) - ref.to(torch::kFloat)).abs().max().item<double>();
  EXPECT_LE(err, tol) << what << ": max abs error " << err;
}

torch::Tensor stack_mats(const std::vector<cv::Mat>& mats) {
  std::vector<torch::Tensor> ts;
  for (const auto& m : mats) ts.push_back(torch::from_blob(m.data, {m.rows, m.cols}, torch::kFloat).clone());
  return torch::stack(ts);
}

// Both official layouts hold the same weights (the fixture checked bit-identical outputs).
const std::vector<std::string> kCheckpoints = {"sam2_tiny.pth", "sam2.1_tiny.pth", "sam2_tiny.safetensors"};

Sam2Predictor& predictor(const std::string& file) {
  static std::map<std::string, std::unique_ptr<Sam2Predictor>> cache;
  auto& p = cache[file];
  if (!p) {
    Sam2Predictor::Options o;
    o.device = "cpu";
    p = std::make_unique<Sam2Predictor>(kDir + file, o);
    p->set_image(io::read_color(kDir + "image.png"));
  }
  return *p;
}

SamPrompt prompt_of(const std::string& name) {
  const auto j = fixture()["prompts"][name];
  SamPrompt p;
  const auto b = j["box"].get<std::vector<double>>();
  p.box = Box{b[0], b[1], b[2], b[3]};
  if (j.contains("point_coords")) {
    for (const auto& pt : j["point_coords"]) p.points.emplace_back(pt[0].get<float>(), pt[1].get<float>());
    for (const auto& l : j["point_labels"]) p.labels.push_back(l.get<int>());
  }
  return p;
}

}  // namespace

TEST(Sam2Config, TinyPresetBlocksMatchTheFixture) {
  const auto j = fixture()["config"]["trunk"];
  const Sam2Config c = sam2_preset("sam2_tiny");
  EXPECT_EQ(c.trunk.stage_ends(), j["stage_ends"].get<std::vector<int64_t>>());
  EXPECT_EQ(c.trunk.q_pool_blocks(), j["q_pool_blocks"].get<std::vector<int64_t>>());
  const auto blocks = hiera_blocks(c.trunk);
  ASSERT_EQ(blocks.size(), j["blocks"].size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    const auto& b = j["blocks"][i];
    EXPECT_EQ(blocks[i].dim, b["dim"].get<int64_t>()) << i;
    EXPECT_EQ(blocks[i].dim_out, b["dim_out"].get<int64_t>()) << i;
    EXPECT_EQ(blocks[i].heads, b["heads"].get<int64_t>()) << i;
    EXPECT_EQ(blocks[i].window, b["window"].get<int64_t>()) << i;
    EXPECT_EQ(blocks[i].q_pool, b["q_pool"].get<bool>()) << i;
  }
  EXPECT_EQ(c.neck.backbone_channel_list, fixture()["config"]["neck"]["backbone_channel_list"].get<std::vector<int64_t>>());
}

TEST(Sam2Config, HieraLargeFollowsTheSpec) {
  // semat_hq_sam2_arch.md 4.2: windows lag one block, global blocks 23/33/43, stage ends 1/7/43/47.
  const auto c = sam2_preset("sam2_hiera_l");
  EXPECT_EQ(c.trunk.stage_ends(), (std::vector<int64_t>{1, 7, 43, 47}));
  EXPECT_EQ(c.trunk.q_pool_blocks(), (std::vector<int64_t>{2, 8, 44}));
  EXPECT_EQ(c.neck.backbone_channel_list, (std::vector<int64_t>{1152, 576, 288, 144}));
  const auto b = hiera_blocks(c.trunk);
  EXPECT_EQ(b[2].window, 8);
  EXPECT_EQ(b[2].heads, 4);
  EXPECT_EQ(b[8].window, 4);
  EXPECT_EQ(b[9].window, 16);
  EXPECT_EQ(b[23].window, 0);
  EXPECT_EQ(b[44].window, 16);
  EXPECT_EQ(b[44].dim_out, 1152);
  EXPECT_EQ(b[45].window, 8);
}

// The trunk and neck alone, loaded from the checkpoint's image_encoder.* entries.
TEST(Sam2Fixture, HieraStagesAndFpnLevelsMatchTheOfficialCode) {
  torch::NoGradGuard g;
  const Sam2Config c = sam2_preset("sam2_tiny");
  sam2::ImageEncoder enc(c.trunk, c.neck);
  io::TensorCheckOptions o;
  o.only_prefixes = {"image_encoder."};
  sam::load_weights(*enc, io::load_checkpoint(kDir + "sam2_tiny.safetensors"), o, "image_encoder.");
  enc->eval();
  const auto trunk = enc->trunk->forward(ref_tensor("input_tensor"));
  ASSERT_EQ(trunk.size(), 4u);
  for (size_t k = 0; k < 4; ++k)
    expect_close(trunk[k], ref_tensor("trunk.stage" + std::to_string(k)), "trunk.stage" + std::to_string(k), 1e-5);
  const auto fpn = enc->neck->forward(trunk);
  ASSERT_EQ(fpn.size(), 4u);
  for (size_t k = 0; k < 4; ++k)
    expect_close(fpn[k], ref_tensor("neck.fpn" + std::to_string(k)), "neck.fpn" + std::to_string(k), 1e-5);
  const auto out = enc->forward(ref_tensor("input_tensor"));
  EXPECT_EQ(out.backbone_fpn.size(), 3u);  // scalp = 1 drops the coarsest level
  expect_close(out.vision_features, ref_tensor("neck.fpn2"), "vision_features", 1e-5);
}

// The blocked attention path gives the one-shot numbers (rows of a softmax are independent; only
// the GEMM's blocking may round differently).
TEST(Sam2Fixture, BlockedAttentionEqualsTheOneShotPath) {
  torch::NoGradGuard g;
  torch::manual_seed(0);
  const auto q = torch::randn({2, 3, 50, 8}), k = torch::randn({2, 3, 40, 8}), v = torch::randn({2, 3, 40, 8});
  const auto full = sam2::scaled_dot_product_attention(q, k, v);
  const auto want = torch::matmul(torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(8.0), -1), v);
  expect_close(full, want, "sdpa", 1e-6);
  const int64_t saved = sam2::attention_score_budget();
  sam2::set_attention_score_budget(6 * 40 * 7);  // 7 rows a block
  const auto blocked = sam2::scaled_dot_product_attention(q, k, v);
  sam2::set_attention_score_budget(saved);
  expect_close(blocked, full, "blocked sdpa", 1e-6);
}

TEST(Sam2Build, InfersTheTinyConfigFromShapesForBothLayouts) {
  for (const std::string f : {"sam2_tiny.pth", "sam2.1_tiny.pth"}) {
    const auto ck = io::load_checkpoint(kDir + f);
    EXPECT_TRUE(sam2::is_sam2_checkpoint(ck)) << f;
    const Sam2Config c = sam2::infer_sam2_config(ck);
    EXPECT_EQ(c.name, "sam2_tiny") << f;
    EXPECT_TRUE(c == sam2_preset("sam2_tiny")) << f;
  }
  EXPECT_FALSE(sam2::is_sam2_checkpoint(io::load_checkpoint(std::string(SEMAT_TEST_DATA) + "/sam_tiny/sam_tiny.pth")));
}

// The image model's keys are the official SAM2Base's minus the video-only ones, for every size.
TEST(Sam2Build, ModulesProduceTheOfficialKeysAndShapes) {
  torch::NoGradGuard g;
  for (const std::string name : {"t", "s", "b+", "l"}) {
    const auto expected = io::load_key_list(kDir + "keys_sam2_hiera_" + name + ".txt");
    sam2::Sam2Base model(sam2_preset("sam2_hiera_" + name));
    std::map<std::string, std::vector<int64_t>> a, b;
    for (const auto& e : sam::expected_tensors(*model)) a[e.name] = e.shape;
    size_t video = 0;
    for (const auto& e : expected) {
      if (sam2::is_video_only_key(e.name)) ++video;
      else b[e.name] = e.shape;
    }
    EXPECT_GT(video, 0u) << name;
    EXPECT_EQ(a.size(), b.size()) << name;
    for (const auto& [k, v] : b) {
      auto it = a.find(k);
      ASSERT_NE(it, a.end()) << name << ": missing " << k;
      EXPECT_EQ(it->second, v) << name << ": " << k;
    }
    const auto counts = sam2_parameter_counts(sam2_preset("sam2_hiera_" + name));
    int64_t official_image = 0;
    for (const auto& [k, v] : b) {
      int64_t n = 1;
      for (int64_t d : v) n *= d;
      official_image += n;
    }
    EXPECT_EQ(counts.image_model, official_image) << name;
  }
  // SAM 2.1 adds only video-only entries.
  size_t extra = 0;
  for (const auto& e : io::load_key_list(kDir + "keys_sam2.1_hiera_l.txt")) extra += sam2::is_video_only_key(e.name);
  EXPECT_GT(extra, 0u);
}

TEST(Sam2Fixture, ImageFeaturesMatchTheOfficialPredictor) {
  for (const auto& f : kCheckpoints) {
    SCOPED_TRACE(f);
    std::vector<std::string> seen;
    for (const auto& t : predictor(f).image_tensors()) {
      expect_close(sam::from_tensor_data(t), ref_tensor(t.name), t.name, t.name == "input_tensor" ? 1e-5 : 2e-5);
      seen.push_back(t.name);
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"input_tensor", "image_embed", "high_res_feat0", "high_res_feat1"}));
  }
}

// Prompt encoder and decoder on the reference features (isolates them from the encoder).
TEST(Sam2Fixture, SparseEmbeddingsAndAllDecoderTokensMatch) {
  torch::NoGradGuard g;
  auto model = sam2::build_sam2(io::load_checkpoint(kDir + "sam2_tiny.pth"));
  const auto j = fixture();
  const double S = 128, W = 240, H = 160;
  for (const std::string name : {"box", "box_point"}) {
    SCOPED_TRACE(name);
    const auto pr = j["prompts"][name];
    const auto b = pr["box"].get<std::vector<float>>();
    std::vector<float> xy = {b[0], b[1], b[2], b[3]};
    std::vector<int64_t> labels = {2, 3};
    if (pr.contains("point_coords")) {
      for (const auto& pt : pr["point_coords"]) xy.push_back(pt[0].get<float>()), xy.push_back(pt[1].get<float>());
      for (const auto& l : pr["point_labels"]) labels.push_back(l.get<int64_t>());
    }
    auto coords = torch::tensor(xy, torch::kFloat).view({-1, 2});
    coords.select(1, 0).div_(W);
    coords.select(1, 1).div_(H);
    coords = (coords * S).view({1, -1, 2});
    const auto lab = torch::tensor(labels, torch::kLong).view({1, -1});
    const auto emb = model->sam_prompt_encoder->forward(coords, lab, {}, {});
    expect_close(emb.sparse, ref_tensor(name + ".sparse_embeddings"), "sparse", 1e-5);
    const auto out = model->sam_mask_decoder->predict_masks(
        ref_tensor("image_embed"), model->sam_prompt_encoder->get_dense_pe(), emb.sparse, emb.dense,
        {ref_tensor("high_res_feat0"), ref_tensor("high_res_feat1")});
    expect_close(out.masks, ref_tensor(name + ".dec.masks_all_lowres"), "masks_all_lowres", 1e-4);
    expect_close(out.iou_pred, ref_tensor(name + ".dec.iou_all"), "iou_all", 1e-5);
    expect_close(out.object_score_logits, ref_tensor(name + ".dec.object_score_logits"), "object_score", 1e-5);
    // The pieces a variant with its own upscaling and tokens (SEMat SAM2) builds on.
    ASSERT_EQ(out.image_tokens.sizes(), (std::vector<int64_t>{1, 16, 8, 8}));
    expect_close(model->sam_mask_decoder->upscale(out.image_tokens, {ref_tensor("high_res_feat0"), ref_tensor("high_res_feat1")}),
                 out.upscaled, "upscale(image_tokens)", 0);
  }
}

TEST(Sam2Predictor, ReproducesTheOfficialPredictorForEveryCase) {
  const auto j = fixture();
  ASSERT_EQ(j["cases"].size(), 4u);
  for (const auto& f : kCheckpoints) {
    for (const auto& c : j["cases"]) {
      const std::string name = c.get<std::string>();
      SCOPED_TRACE(f + " " + name);
      const bool multi = name.find("_multi") != std::string::npos;
      const auto m = predictor(f).predict(prompt_of(name.substr(0, name.rfind('_'))), multi);
      ASSERT_EQ(m.logits.size(), multi ? 3u : 1u);
      expect_close(stack_mats(m.logits), ref_tensor(name + ".mask_logits"), "mask_logits", 1e-4);
      expect_close(stack_mats(m.low_res_logits), ref_tensor(name + ".low_res_logits"), "low_res_logits", 1e-4);
      expect_close(torch::tensor(m.iou), ref_tensor(name + ".iou_predictions"), "iou", 1e-5);
    }
  }
}

// box_single falls back to token 1 (token 0's stability 0.961 < 0.98), box_point_single keeps
// token 0 (0.982): fixture.json facts.
TEST(Sam2Predictor, DynamicMultimaskFallbackFollowsTheFacts) {
  torch::NoGradGuard g;
  auto model = sam2::build_sam2(io::load_checkpoint(kDir + "sam2_tiny.pth"));
  const auto facts = fixture()["facts"];
  for (const std::string name : {"box", "box_point"}) {
    sam2::Sam2DecoderOutput o;
    o.masks = ref_tensor(name + ".dec.masks_all_lowres");
    o.iou_pred = ref_tensor(name + ".dec.iou_all");
    const auto f = facts[name + "_single"];
    const double stab = model->sam_mask_decoder->stability_scores(o.masks.narrow(1, 0, 1)).item<double>();
    EXPECT_NEAR(stab, f["token0_stability_score"].get<double>(), 1e-6) << name;
    const auto [m, iou] = model->sam_mask_decoder->select_masks(o, false);
    const int64_t tok = f["selected_token"].get<int64_t>();
    EXPECT_TRUE(torch::equal(m, o.masks.narrow(1, tok, 1))) << name;
    EXPECT_FLOAT_EQ(iou.item<float>(), o.iou_pred[0][tok].item<float>()) << name;
  }
}

// RGB pixels (a view with padded rows) give the BGR file's masks bit for bit.
TEST(Sam2Predictor, RgbInputGivesTheSameMasks) {
  Sam2Predictor::Options o;
  o.device = "cpu";
  Sam2Predictor p(kDir + "sam2_tiny.pth", o);
  const cv::Mat bgr = io::read_color(kDir + "image.png");
  cv::Mat storage;
  const cv::Mat view = semat::test::rgb_view_with_gaps(bgr, storage);
  ASSERT_FALSE(view.isContinuous());
  SamPrompt pr;
  pr.box = Box{21, 5, 160, 155};
  p.set_image(bgr);
  const SamMasks want = p.predict(pr, true);
  p.set_image(view, ChannelOrder::kRGB);
  const SamMasks got = p.predict(pr, true);
  ASSERT_EQ(got.logits.size(), want.logits.size());
  ASSERT_FALSE(got.logits.empty());
  for (size_t k = 0; k < got.logits.size(); ++k)
    EXPECT_EQ(cv::norm(got.logits[k], want.logits[k], cv::NORM_INF), 0.0) << "mask " << k;
  EXPECT_EQ(got.iou, want.iou);
  p.set_image(view);  // declared BGR: another input, other logits
  EXPECT_GT(cv::norm(p.predict(pr, true).logits[0], want.logits[0], cv::NORM_INF), 0.0);
}

TEST(Sam2Predictor, BatchedBoxesEqualSinglePrompts) {
  auto& p = predictor("sam2_tiny.pth");
  const std::vector<Box> boxes = {Box{21, 5, 160, 155}, Box{60, 40, 200, 150}};
  const auto batch = p.predict_boxes(boxes, false);
  ASSERT_EQ(batch.size(), 2u);
  for (size_t i = 0; i < boxes.size(); ++i) {
    SamPrompt pr;
    pr.box = boxes[i];
    const auto one = p.predict(pr, false);
    expect_close(stack_mats(batch[i].logits), stack_mats(one.logits), "box " + std::to_string(i), 1e-4);
  }
  SamPrompt bad;
  bad.points = {cv::Point2f(10, 10)};
  bad.labels = {2};
  EXPECT_THROW(p.predict(bad, false), InvalidArgument);
}

namespace {

io::Checkpoint with_shape(io::Checkpoint ck, const std::string& key, const std::vector<int64_t>& shape) {
  for (auto& t : ck.tensors)
    if (t.name == key) {
      t.shape = shape;
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      t.bytes.assign(static_cast<size_t>(n) * io::dtype_size(t.dtype), 0);
      return ck;
    }
  ADD_FAILURE() << "no " << key;
  return ck;
}

std::string load_error(const io::Checkpoint& ck, const std::string& type = "auto") {
  try {
    sam2::build_sam2(ck, type);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// #14's rule: a malformed checkpoint is one CheckpointError line naming the tensor, never a crash.
TEST(Sam2Build, MalformedCheckpointsAreOneLineErrorsNamingTheTensor) {
  const io::Checkpoint good = io::load_checkpoint(kDir + "sam2_tiny.safetensors");
  struct Case {
    std::string key;
    std::vector<int64_t> shape;
  };
  const std::vector<Case> cases = {
      {"image_encoder.trunk.patch_embed.proj.weight", {0, 3, 7, 7}},
      {"image_encoder.trunk.patch_embed.proj.weight", {8, 3, 7}},
      {"image_encoder.trunk.pos_embed", {1, 8, 0, 7}},
      {"image_encoder.trunk.pos_embed_window", {}},
      {"image_encoder.trunk.blocks.1.attn.qkv.weight", {47, 8}},
      {"image_encoder.trunk.blocks.2.attn.qkv.weight", {48, 0}},
      {"image_encoder.neck.convs.1.conv.weight", {16, 32, 3, 3}},
      {"sam_mask_decoder.iou_token.weight", {1, 0}},
      {"sam_mask_decoder.mask_tokens.weight", {1, 16}},
      {"sam_mask_decoder.transformer.layers.0.mlp.layers.0.weight", {2048}},
      {"sam_prompt_encoder.mask_downscaling.3.weight", {6, 4, 2, 2}},
      {"sam_mask_decoder.conv_s0.weight", {2, 16, 1, 0}},
      {"no_mem_embed", {1, 1, 15}},
  };
  for (const Case& c : cases) {
    const auto ck = with_shape(good, c.key, c.shape);
    for (const std::string type : {"auto", "sam2_tiny"}) {
      SCOPED_TRACE(c.key + " " + io::shape_to_string(c.shape) + " " + type);
      const std::string msg = load_error(ck, type);
      ASSERT_FALSE(msg.empty()) << "no CheckpointError";
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      EXPECT_NE(msg.find(c.key), std::string::npos) << msg;
    }
  }
}

TEST(Sam2Build, StrictLoadingNamesMissingAndUnexpectedButAcceptsVideoEntries) {
  const io::Checkpoint good = io::load_checkpoint(kDir + "sam2.1_tiny.pth");
  size_t video = 0;
  for (const auto& t : good.tensors) video += sam2::is_video_only_key(t.name);
  EXPECT_GE(video, 3u);  // memory modules, no_obj_embed_spatial, obj_ptr_tpos_proj.*
  EXPECT_TRUE(good.find("no_obj_embed_spatial"));
  EXPECT_NO_THROW(sam2::build_sam2(good));

  io::Checkpoint ck = good;
  auto it = std::find_if(ck.tensors.begin(), ck.tensors.end(),
                         [](const io::TensorData& t) { return t.name == "sam_mask_decoder.conv_s1.bias"; });
  ASSERT_NE(it, ck.tensors.end());
  ck.tensors.erase(it);
  auto extra = ck.tensors.back();
  extra.name = "sam_mask_decoder.extra_head.weight";
  ck.tensors.push_back(extra);
  auto near_video = ck.tensors.back();
  near_video.name = "no_obj_ptr_extra";  // not a known video-only entry: refused
  ck.tensors.push_back(near_video);
  for (const std::string type : {"auto", "sam2_tiny"}) {
    const std::string msg = load_error(ck, type);
    EXPECT_NE(msg.find("sam_mask_decoder.conv_s1.bias"), std::string::npos) << msg;
    EXPECT_NE(msg.find("sam_mask_decoder.extra_head.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no_obj_ptr_extra"), std::string::npos) << msg;
  }
  // A preset of another size: mis-shaped tensors.
  const std::string msg = load_error(good, "sam2_hiera_t");
  EXPECT_NE(msg.find("mis-shaped"), std::string::npos) << msg;
  // Not SAM 2 at all.
  EXPECT_NE(load_error(io::load_checkpoint(std::string(SEMAT_TEST_DATA) + "/sam_tiny/sam_tiny.pth")).find("not a SAM 2"),
            std::string::npos);
}

}  // namespace semat::models
