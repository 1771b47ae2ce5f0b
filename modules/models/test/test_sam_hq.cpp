// HQ-SAM against the official sam-hq predictor's outputs on the tiny random-weight fixture
// (tests/data/sam_hq_tiny, copied from the project's shared fixtures; see fixture.json): every
// stored tensor within 1e-4, as for SAM.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "semat/core/error.h"
#include "semat/io/checkpoint.h"
#include "semat/io/image_io.h"
#include "semat/models/internal/sam/build.h"
#include "semat/models/internal/sam/mask_decoder_hq.h"
#include "semat/models/sam_predictor.h"

namespace semat::models {
namespace {

const std::string kDir = std::string(SEMAT_TEST_DATA) + "/sam_hq_tiny/";

const io::Checkpoint& reference() {
  static const io::Checkpoint ref = io::load_checkpoint(kDir + "reference_outputs.safetensors");
  return ref;
}
const io::Checkpoint& hq_ckpt() {
  static const io::Checkpoint ck = io::load_checkpoint(kDir + "sam_hq_tiny.pth");
  return ck;
}

torch::Tensor want(const std::string& name) { return sam::from_tensor_data(reference().at(name)); }

nlohmann::json fixture() {
  std::ifstream f(kDir + "fixture.json");
  return nlohmann::json::parse(f);
}

void expect_close(const torch::Tensor& ours, const torch::Tensor& ref, const std::string& what,
                  double tol = 1e-4) {
  ASSERT_EQ(ours.sizes(), ref.sizes()) << what;
  const double err = (ours.to(torch::kDouble) - ref.to(torch::kDouble)).abs().max().item<double>();
  EXPECT_LE(err, tol) << what << ": max abs error " << err;
}

torch::Tensor stack_mats(const std::vector<cv::Mat>& mats) {
  std::vector<torch::Tensor> ts;
  for (const auto& m : mats) ts.push_back(torch::from_blob(m.data, {m.rows, m.cols}, torch::kFloat).clone());
  return torch::stack(ts);
}

// The tiny decoder's head count (2) is not in the shapes: auto would take the official 8, so the
// parity tests name the preset, as the SAM fixture's tests do.
SamPredictor make_predictor(bool hq_token_only, const std::string& type = "hq_tiny") {
  SamPredictor::Options o;
  o.model_type = type;
  o.device = "cpu";
  o.hq_token_only = hq_token_only;
  return SamPredictor(hq_ckpt(), o);
}

SamPrompt prompt_of(const nlohmann::json& spec) {
  SamPrompt prompt;
  if (spec.contains("box")) {
    const auto b = spec["box"];
    prompt.box = Box{b[0], b[1], b[2], b[3]};
  }
  if (spec.contains("point_coords")) {
    for (const auto& pt : spec["point_coords"]) prompt.points.emplace_back(pt[0].get<float>(), pt[1].get<float>());
    for (const auto& l : spec["point_labels"]) prompt.labels.push_back(l.get<int>());
  }
  return prompt;
}

}  // namespace

TEST(SamHqBuild, AutoTellsHqSamFromSam) {
  const SamConfig c = sam::infer_sam_config(hq_ckpt(), /*decoder_heads=*/2);
  EXPECT_TRUE(c.hq);
  EXPECT_TRUE(c == sam_preset("hq_tiny"));
  EXPECT_FALSE(c == sam_preset("tiny"));  // the same sizes without the HQ parts
  const auto sam_ck = io::load_checkpoint(std::string(SEMAT_TEST_DATA) + "/sam_tiny/sam_tiny.pth");
  EXPECT_FALSE(sam::infer_sam_config(sam_ck, 2).hq);
  auto p = make_predictor(false, "auto");
  EXPECT_TRUE(p.config().hq);
  // A SAM type given for an HQ-SAM checkpoint (and the other way round) is named, not loaded.
  try {
    make_predictor(false, "tiny");
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("HQ-SAM"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sam::build_sam(sam_ck, "hq_tiny"), CheckpointError);
  EXPECT_EQ(make_predictor(false).config().name, "hq_tiny");
}

TEST(SamHqBuild, ModulesProduceTheOfficialKeysAndShapes) {
  torch::NoGradGuard g;
  for (const std::string name : {"vit_b", "vit_l", "vit_h"}) {
    const auto expected = io::load_key_list(kDir + "keys_" + name + ".txt");
    sam::Sam model(sam_preset("hq_" + name));
    std::map<std::string, std::vector<int64_t>> a, b;
    for (const auto& e : sam::expected_tensors(*model)) a[e.name] = e.shape;
    for (const auto& e : expected) b[e.name] = e.shape;
    EXPECT_EQ(a.size(), b.size()) << name;
    for (const auto& [k, v] : b) {
      auto it = a.find(k);
      ASSERT_NE(it, a.end()) << name << ": missing " << k;
      EXPECT_EQ(it->second, v) << name << ": " << k;
    }
  }
}

// The strict loader names a mis-shaped, a missing and an unexpected tensor of an HQ checkpoint.
TEST(SamHqBuild, StrictLoaderNamesAWrongHqTensor) {
  io::Checkpoint ck = hq_ckpt();
  auto find = [&](const std::string& n) {
    for (auto& t : ck.tensors)
      if (t.name == n) return &t;
    return static_cast<io::TensorData*>(nullptr);
  };
  // hf_mlp's last layer with 2 outputs too many (a shape the config can still be read from).
  io::TensorData* w = find("mask_decoder.hf_mlp.layers.2.weight");
  ASSERT_NE(w, nullptr);
  w->shape[0] += 2;
  w->bytes.resize(w->bytes.size() + 2 * w->shape[1] * 4);
  ck.tensors.erase(std::remove_if(ck.tensors.begin(), ck.tensors.end(),
                                  [](const io::TensorData& t) {
                                    return t.name == "mask_decoder.embedding_maskfeature.3.bias";
                                  }),
                   ck.tensors.end());
  try {
    sam::build_sam(ck);
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("mask_decoder.hf_mlp.layers.2.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("mask_decoder.embedding_maskfeature.3.bias"), std::string::npos) << msg;
  }
}

TEST(SamHqPredictor, ReproducesTheOfficialImageTensors) {
  auto p = make_predictor(false);
  p.set_image(io::read_color(kDir + "image.png"));
  std::vector<std::string> compared;
  for (const auto& t : p.image_tensors()) {
    const auto ours = sam::from_tensor_data(t), ref = want(t.name);
    if (t.name == "resized_image")
      EXPECT_TRUE(torch::equal(ours, ref)) << "resized_image differs";
    else
      expect_close(ours, ref, t.name);
    compared.push_back(t.name);
  }
  EXPECT_EQ(compared, (std::vector<std::string>{"input_tensor", "image_embeddings",
                                                "interm_embeddings0", "resized_image"}));
}

TEST(SamHqPredictor, ReproducesEveryOfficialCase) {
  const auto fx = fixture();
  const cv::Mat image = io::read_color(kDir + "image.png");
  int cases = 0;
  for (bool hq_only : {false, true}) {
    auto p = make_predictor(hq_only);
    p.set_image(image);
    for (const auto& [name, spec] : fx["prompts"].items()) {
      for (bool multi : {true, false}) {
        const std::string key = name + (multi ? "_multi" : "_single") + (hq_only ? "_hqonly" : "");
        const SamMasks m = p.predict(prompt_of(spec), multi);
        ASSERT_EQ(m.logits.size(), 1u) << key << ": HQ-SAM gives one mask";
        expect_close(stack_mats(m.low_res_logits), want(key + ".low_res_logits"), key + " low_res");
        expect_close(stack_mats(m.logits), want(key + ".mask_logits"), key + " mask_logits");
        expect_close(torch::tensor(m.iou), want(key + ".iou_predictions"), key + " iou");
        ++cases;
      }
    }
  }
  EXPECT_EQ(cases, static_cast<int>(fx["cases"].size()));
}

// The decoder's intermediates: sparse prompt, all token logits, iou head, HQ features and the SAM
// upscaled embedding, from the reference's own encoder outputs.
TEST(SamHqDecoder, EveryIntermediateMatchesTheOfficialCode) {
  torch::NoGradGuard no_grad;
  auto model = sam::build_sam(hq_ckpt(), "hq_tiny");  // 2 decoder heads (not in the shapes)
  ASSERT_FALSE(model->mask_decoder_hq.is_empty());
  const auto emb = want("image_embeddings");
  const auto interm0 = want("interm_embeddings0");
  const auto pe = model->prompt_encoder->get_dense_pe();
  const double scale = 128.0 / 320.0;  // ResizeLongestSide of the 320 x 320 image
  const auto fx = fixture();
  for (const auto& [name, spec] : fx["prompts"].items()) {
    const auto b = spec["box"];
    const auto box = torch::tensor({b[0].get<float>(), b[1].get<float>(), b[2].get<float>(),
                                    b[3].get<float>()}) * scale;
    torch::Tensor pts, labels;
    if (spec.contains("point_coords")) {
      pts = torch::tensor({spec["point_coords"][0][0].get<float>(), spec["point_coords"][0][1].get<float>()})
                .view({1, 1, 2}) * scale;
      labels = torch::tensor({spec["point_labels"][0].get<int64_t>()}).view({1, 1});
    }
    const auto prompts = model->prompt_encoder->forward(pts, labels, box.view({1, 4}), {});
    expect_close(prompts.sparse, want(name + ".sparse_embeddings"), name + ".sparse_embeddings");
    const auto out = model->mask_decoder_hq->forward_hq(emb, pe, prompts.sparse, prompts.dense,
                                                        interm0, true, false);
    expect_close(out.masks_all, want(name + ".dec.masks_all_lowres"), name + ".dec.masks_all_lowres");
    expect_close(out.iou_all, want(name + ".dec.iou_all"), name + ".dec.iou_all");
    expect_close(out.hq_features, want("dec.hq_features"), "dec.hq_features");
    if (name == "box")  // stored for the box prompt
      expect_close(out.upscaled_sam, want("dec.upscaled_embedding_sam"), "dec.upscaled_embedding_sam");
  }
}

}  // namespace semat::models
