// SEMat against the official implementation's outputs on the tiny random-weight fixture
// (tests/data/semat_tiny, copied from the project's shared fixtures; see its fixture.json).
// The official demo.py preprocessing (cv2 INTER_LINEAR resize of the 8-bit image, zero padding
// before normalisation) reproduces every reference tensor.
#include <gtest/gtest.h>

#include "semat/models/internal/sam/common.h"

#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/io/checkpoint.h"
#include "semat/io/image_io.h"
#include "semat/models/internal/sam/build.h"
#include "semat/models/internal/semat_net/build.h"
#include "semat/models/internal/semat_net/lora.h"
#include "semat/models/internal/semat_net/semat_model.h"
#include "semat/models/semat_predictor.h"

namespace semat::models {
namespace {

using semat_net::SematModel;
const std::string kDir = std::string(SEMAT_TEST_DATA) + "/semat_tiny/";

const io::Checkpoint& reference() {
  static const io::Checkpoint ref = io::load_checkpoint(kDir + "reference_outputs.safetensors");
  return ref;
}
const io::Checkpoint& semat_ckpt() {
  static const io::Checkpoint ck = io::load_checkpoint(kDir + "semat_tiny.pth");
  return ck;
}
const io::Checkpoint& sam_base() {
  static const io::Checkpoint ck = io::load_checkpoint(kDir + "sam_base_tiny.safetensors");
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

cv::Mat fixture_rgb() {
  cv::Mat rgb;
  cv::cvtColor(io::read_color(kDir + "image.png"), rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

// demo.py: cv2.resize INTER_LINEAR, zero padding in uint8, /255, then normalisation.
torch::Tensor fixture_images(const SematModel& model) {
  cv::Mat small;
  cv::resize(fixture_rgb(), small, {256, 179}, 0, 0, cv::INTER_LINEAR);
  auto x =
      torch::from_blob(small.data, {179, 256, 3}, torch::kByte).permute({2, 0, 1}).unsqueeze(0);
  x = torch::nn::functional::pad(x.to(torch::kFloat) / 255.0,
                                 torch::nn::functional::PadFuncOptions({0, 0, 0, 256 - 179}));
  return model->normalize(x);
}

torch::Tensor fixture_box() { return want("box").view({1, 4}).to(torch::kFloat); }

SematModel fixture_model() { return semat_net::build_semat(semat_ckpt()); }

}  // namespace

TEST(SematFixture, ResizeMatchesOpenCvOfTheOfficialDemo) {
  cv::Mat small;
  cv::resize(fixture_rgb(), small, {256, 179}, 0, 0, cv::INTER_LINEAR);
  const auto ours = torch::from_blob(small.data, {179, 256, 3}, torch::kByte);
  EXPECT_TRUE(torch::equal(ours, want("image_resized_u8")));
}

TEST(SematBuild, InfersTheTinyPresetFromShapes) {
  const SematConfig c = semat_net::infer_semat_config(semat_ckpt());
  EXPECT_EQ(c.name, "semat-tiny");
  EXPECT_EQ(c, semat_preset("semat-tiny"));
}

TEST(SematFixture, EveryIntermediateMatchesTheOfficialCode) {
  torch::NoGradGuard no_grad;
  auto model = fixture_model();
  const auto images = fixture_images(model);
  expect_close(images, want("images"), "images");
  const auto boxes = fixture_box();

  semat_net::SematTrace trace;
  const auto enc = model->encode(images, boxes, {}, &trace);
  EXPECT_TRUE(torch::equal(trace.box_mask.to(torch::kByte), want("box_mask"))) << "box_mask";
  expect_close(trace.patch_embed, want("enc.patch_embed"), "enc.patch_embed");
  expect_close(trace.cond_embed, want("enc.cond_embed"), "enc.cond_embed");
  // Block by block through the same modules.
  auto& vit = *model->sam_model->vit;
  auto x = trace.patch_embed + trace.cond_embed + vit.pos_embed;
  for (size_t i = 0; i < vit.blocks->size(); ++i) {
    x = vit.blocks[i]->as<sam::Block>()->forward(x);
    expect_close(x, want("enc.block" + std::to_string(i)), "enc.block" + std::to_string(i));
  }
  ASSERT_EQ(enc.global_blocks.size(), 2u);
  expect_close(enc.global_blocks[0], want("interm0"), "interm0");
  expect_close(enc.global_blocks[1], want("interm1"), "interm1");
  expect_close(enc.embedding, want("image_embeddings"), "image_embeddings");

  const auto out = model->decode(images, boxes, enc, &trace);
  expect_close(trace.sparse, want("prompt.sparse"), "prompt.sparse");
  expect_close(trace.image_pe, want("prompt.image_pe"), "prompt.image_pe");
  expect_close(out.iou_pred, want("dec.iou_pred"), "dec.iou_pred");
  expect_close(out.sam_logits_lowres, want("sam_logits_lowres"), "sam_logits_lowres");
  expect_close(out.matting_logits_lowres, want("matting_logits_lowres"), "matting_logits_lowres");
  expect_close(out.sam_logits, want("sam_logits"), "sam_logits");
  expect_close(out.matting_logits, want("matting_logits"), "matting_logits");
  const auto& md = trace.matting_decoder;
  expect_close(md.input, want("mdec.input"), "mdec.input");
  expect_close(md.vit_agg, want("mdec.vit_agg"), "mdec.vit_agg");
  expect_close(md.down3, want("mdec.down3"), "mdec.down3");
  expect_close(md.mid, want("mdec.mid"), "mdec.mid");
  // The big-kernel / down path of the random tiny decoder amplifies the ~1e-5 float rounding of
  // the matting logits about 30-fold (from the reference's own inputs it matches within 2e-5:
  // MattingDecoderMatchesOnTheReferenceInputs), so these two get a looser end-to-end bound: the
  // reference's own float32 error there exceeds 1e-4 (Float64RunShowsTheReferenceRounding...).
  expect_close(md.up0, want("mdec.up0"), "mdec.up0", 1e-3);
  expect_close(out.alpha_logits, want("alpha_logits"), "alpha_logits", 1e-3);
  expect_close(out.alpha, want("alpha"), "alpha");
  const auto crop = out.alpha[0][0].narrow(0, 0, 179).narrow(1, 0, 256);
  expect_close(crop, want("alpha_crop"), "alpha_crop");
  // demo.py's uint8(alpha * 255) truncates: allow a step where alpha * 255 sits on an integer.
  const auto u8 = (crop * 255).to(torch::kByte).to(torch::kInt);
  EXPECT_LE((u8 - want("alpha_u8").to(torch::kInt)).abs().max().item<int>(), 1);
}

// Why mdec.up0 and alpha_logits get 1e-3 above: the same network in float64 (rounding ~1e-15)
// is 5e-4 away from the official float32 alpha_logits and 3e-4 away from ours, so the reference
// itself carries more float32 rounding than 1e-4 on those two tensors; no float32 implementation
// summing in another order can promise 1e-4 there. Upstream, float64 agrees with the reference
// within 1e-4 like float32 does.
TEST(SematFixture, Float64RunShowsTheReferenceRoundingOnTheDecoderTail) {
  torch::NoGradGuard no_grad;
  auto model = fixture_model();
  model->to(torch::kDouble);
  const auto images = fixture_images(model).to(torch::kDouble);
  const auto boxes = fixture_box().to(torch::kDouble);
  semat_net::SematTrace trace;
  const auto enc = model->encode(images, boxes, {}, &trace);
  const auto out = model->decode(images, boxes, enc, &trace);
  ASSERT_EQ(out.alpha_logits.scalar_type(), torch::kDouble);
  expect_close(enc.embedding, want("image_embeddings"), "image_embeddings (float64)");
  expect_close(out.sam_logits, want("sam_logits"), "sam_logits (float64)");
  expect_close(out.matting_logits, want("matting_logits"), "matting_logits (float64)");
  expect_close(trace.matting_decoder.mid, want("mdec.mid"), "mdec.mid (float64)");
  // The official float32 values' own distance from the exact ones.
  expect_close(want("alpha_logits"), out.alpha_logits, "reference alpha_logits vs float64", 1e-3);
  expect_close(want("mdec.up0"), trace.matting_decoder.up0, "reference mdec.up0 vs float64", 1e-3);
  auto m32 = fixture_model();
  const auto im32 = fixture_images(m32);
  const auto out32 = m32->forward(im32, fixture_box());
  const double ours = (out32.alpha_logits.to(torch::kDouble) - out.alpha_logits).abs().max().item<double>();
  const double ref = (want("alpha_logits").to(torch::kDouble) - out.alpha_logits).abs().max().item<double>();
  std::cerr << "alpha_logits vs float64: official float32 " << ref << ", semat float32 " << ours << "\n";
  EXPECT_GT(ref, 1e-4);  // the reason for the looser bound (fails if the fixture is regenerated exactly)
  EXPECT_LT(ours, 1e-3);
}

TEST(SematFixture, MattingDecoderMatchesOnTheReferenceInputs) {
  torch::NoGradGuard no_grad;
  auto model = fixture_model();
  semat_net::MattingDecoderTrace trace;
  const auto logits = model->matting_decoder->forward(want("images"), want("matting_logits"),
                                                      {want("interm0"), want("interm1")}, &trace);
  expect_close(trace.down3, want("mdec.down3"), "mdec.down3 (reference inputs)");
  expect_close(trace.up0, want("mdec.up0"), "mdec.up0 (reference inputs)");
  expect_close(logits, want("alpha_logits"), "alpha_logits (reference inputs)");
}

// forward() is the predictors' and the trainer's path, encode() + decode() the one that reuses an
// encoding for several boxes: the two must compute the same numbers.
TEST(SematFixture, ForwardEqualsEncodeThenDecode) {
  torch::NoGradGuard no_grad;
  auto model = fixture_model();
  const auto images = fixture_images(model);
  const auto boxes = fixture_box();
  const auto whole = model->forward(images, boxes);
  const auto enc = model->encode(images, boxes);
  const auto parts = model->decode(images, boxes, enc);
  const std::vector<std::pair<const char*, std::pair<torch::Tensor, torch::Tensor>>> pairs = {
      {"image_embeddings", {whole.image_embeddings, parts.image_embeddings}},
      {"iou_pred", {whole.iou_pred, parts.iou_pred}},
      {"sam_logits", {whole.sam_logits, parts.sam_logits}},
      {"matting_logits", {whole.matting_logits, parts.matting_logits}},
      {"alpha_logits", {whole.alpha_logits, parts.alpha_logits}},
      {"alpha", {whole.alpha, parts.alpha}}};
  for (const auto& [name, pair] : pairs) {
    ASSERT_TRUE(pair.first.defined() && pair.second.defined()) << name;
    // Same modules on the same inputs in the same order: equal, not merely close.
    EXPECT_TRUE(torch::equal(pair.first, pair.second)) << name;
  }
  EXPECT_TRUE(torch::equal(parts.image_embeddings, enc.embedding));
  ASSERT_EQ(whole.interm.size(), parts.interm.size());
  for (size_t i = 0; i < whole.interm.size(); ++i)
    EXPECT_TRUE(torch::equal(whole.interm[i], parts.interm[i])) << "interm " << i;
  expect_close(whole.alpha, want("alpha"), "forward alpha");
}

TEST(SematFixture, SafetensorsCopyGivesTheSameAlpha) {
  torch::NoGradGuard no_grad;
  auto model = semat_net::build_semat(io::load_checkpoint(kDir + "semat_tiny.safetensors"));
  expect_close(model->forward(fixture_images(model), fixture_box()).alpha, want("alpha"), "alpha");
}

TEST(SematPredictor, ReproducesTheOfficialDemoOutput) {
  for (bool merge : {false, true}) {
    SematPredictor::Options o;
    o.device = "cpu";
    o.merge_lora = merge;
    SematPredictor p(kDir + "semat_tiny.pth", "", o);
    EXPECT_EQ(p.config().name, "semat-tiny");
    const cv::Mat image = io::read_color(kDir + "image.png");
    const auto mattes = p.predict(image, {Box{12, 5, 218, 209}});
    ASSERT_EQ(mattes.size(), 1u);
    const auto& m = mattes[0];
    EXPECT_EQ(m.box_model[0], 10.f);
    EXPECT_EQ(m.box_model[3], 178.f);
    ASSERT_EQ(m.alpha_model.size(), cv::Size(256, 179));
    const auto ours = torch::from_blob(m.alpha_model.data, {179, 256}, torch::kFloat);
    expect_close(ours, want("alpha_crop"), merge ? "merged alpha_crop" : "alpha_crop");
    EXPECT_EQ(m.alpha.size(), image.size());
    EXPECT_EQ(m.trimap.size(), image.size());
    double lo, hi;
    cv::minMaxLoc(m.alpha, &lo, &hi);
    EXPECT_GE(lo, 0.0);
    EXPECT_LE(hi, 1.0);
  }
}

TEST(SematPredictor, BatchedBoxesEqualOneByOne) {
  SematPredictor::Options o;
  o.device = "cpu";
  o.batch_size = 2;
  SematPredictor p(kDir + "semat_tiny.pth", "", o);
  const cv::Mat image = io::read_color(kDir + "image.png");
  const std::vector<Box> boxes{{12, 5, 218, 209}, {100, 40, 290, 200}, {0, 0, 150, 150}};
  const auto batched = p.predict(image, boxes);
  ASSERT_EQ(batched.size(), 3u);
  for (size_t i = 0; i < boxes.size(); ++i) {
    const auto single = p.predict(image, {boxes[i]});
    EXPECT_LE(cv::norm(single[0].alpha, batched[i].alpha, cv::NORM_INF), 1e-4) << "box " << i;
  }
  EXPECT_GT(cv::norm(batched[0].alpha, batched[1].alpha, cv::NORM_INF), 1e-3);
}

TEST(SematLora, MergedEqualsUnmerged) {
  torch::NoGradGuard no_grad;
  auto model = fixture_model();
  const auto images = fixture_images(model);
  // A LoRA B of zero (its initialisation) makes merging a no-op: give every B random values so
  // that merge() has a delta to fold in, and check that it changes the encoder's output.
  const auto plain = model->forward(images, fixture_box());
  torch::manual_seed(11);
  int64_t lora_b = 0;
  for (const auto& item : model->named_parameters()) {
    if (item.key().find("lora_B") == std::string::npos) continue;
    item.value().normal_(0, 0.05);
    ++lora_b;
  }
  ASSERT_GT(lora_b, 0) << "no LoRA B weights found";
  const auto before = model->forward(images, fixture_box());
  EXPECT_GT((before.image_embeddings - plain.image_embeddings).abs().max().item<double>(), 1e-3)
      << "the random LoRA B does not change the encoder";
  semat_net::merge_lora(*model);
  const auto merged = model->forward(images, fixture_box());
  expect_close(merged.image_embeddings, before.image_embeddings, "merged embeddings", 1e-5);
  for (size_t i = 0; i < before.interm.size(); ++i)
    expect_close(merged.interm[i], before.interm[i], "merged interm", 1e-5);
  expect_close(merged.matting_logits, before.matting_logits, "merged matting logits", 1e-4);
  expect_close(merged.alpha, before.alpha, "merged alpha", 1e-4);
  semat_net::unmerge_lora(*model);
  const auto unmerged = model->forward(images, fixture_box());
  expect_close(unmerged.image_embeddings, before.image_embeddings, "unmerged embeddings", 1e-5);
}

TEST(SematLora, ZeroBGivesExactlyTheBaseEncoder) {
  torch::NoGradGuard no_grad;
  // Training start from the plain SAM weights: LoRA B = 0 at init.
  auto model = semat_net::build_semat_from_sam(sam_base());
  auto sam = sam::infer_sam_config(sam_base(), 2);
  sam::Sam plain(sam);
  sam::load_weights(*plain, sam_base());
  plain->eval();
  model->eval();
  torch::manual_seed(3);
  const auto x = torch::randn({1, 3, 256, 256});
  const auto ours = model->sam_model->vit->forward_features(x);
  const auto base = plain->image_encoder->forward_features(x);
  EXPECT_TRUE(torch::equal(ours.embedding, base.embedding));
  for (size_t i = 0; i < base.global_blocks.size(); ++i)
    EXPECT_TRUE(torch::equal(ours.global_blocks[i], base.global_blocks[i])) << "global block " << i;
  // And with the merged (zero) delta.
  semat_net::merge_lora(*model);
  EXPECT_TRUE(torch::equal(model->sam_model->vit->forward_features(x).embedding, base.embedding));
}

// Activation checkpointing replays each block in backward from the saved RNG state (LoRA dropout
// is on in training): the gradients match the stored-activation ones to float rounding.
// LibTorch 1.13's CPU gelu_backward is wrong when the incoming gradient is strided unlike the
// input (a permuted, channels-last gradient, as SAM's upscaling produces); sam::gelu_act is not.
TEST(SematBuild, GeluGradientDoesNotDependOnTheGradientsLayout) {
  torch::manual_seed(5);
  const auto x = torch::randn({2, 8, 32, 32}).requires_grad_(true);
  const auto r = torch::randn({2 * 32 * 32, 8});
  const auto via_permute = torch::autograd::grad(
      {(sam::gelu_act(x).permute({0, 2, 3, 1}).reshape({-1, 8}) * r).sum()}, {x})[0];
  const auto contiguous = torch::autograd::grad(
      {(sam::gelu_act(x) * r.view({2, 32, 32, 8}).permute({0, 3, 1, 2}).contiguous()).sum()}, {x})[0];
  EXPECT_LE((via_permute - contiguous).abs().max().item<double>(), 1e-6);
}

TEST(SematBuild, CheckpointedBlocksGiveTheSameGradients) {
  torch::manual_seed(3);
  auto model = semat_net::build_semat_from_sam(sam_base());
  model->set_trainable();
  model->train();
  const auto images = model->normalize(torch::rand({2, 3, 256, 256}));
  const auto boxes = torch::tensor({{10.f, 20.f, 200.f, 180.f}, {30.f, 0.f, 255.f, 220.f}});
  auto grads = [&](bool checkpoint) {
    model->checkpoint_blocks = checkpoint;
    model->zero_grad();
    torch::manual_seed(11);  // the same dropout masks in both runs
    const auto out = model->forward(images, boxes);
    (out.alpha.mean() + torch::sigmoid(out.matting_logits).mean() + torch::sigmoid(out.sam_logits).mean()).backward();
    std::vector<torch::Tensor> g;
    for (const auto& p : model->parameters())
      if (p.requires_grad()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    return g;
  };
  const auto plain = grads(false);
  const auto replayed = grads(true);
  EXPECT_TRUE(torch::equal(plain[0], grads(false)[0])) << "backward is not deterministic";
  ASSERT_EQ(plain.size(), replayed.size());
  // Per tensor, relative to its largest entry: float32 rounding shows at ~1e-6; a replay with
  // other dropout masks would differ at order 1.
  double worst = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    const double scale = plain[i].abs().max().item<double>();
    if (scale == 0) continue;
    worst = std::max(worst, (plain[i] - replayed[i]).abs().max().item<double>() / scale);
  }
  EXPECT_LE(worst, 1e-4);
  model->checkpoint_blocks = false;
}

TEST(SematBuild, TrainingStartFreezesSamAndCopiesTheFrozenDecoder) {
  auto model = semat_net::build_semat_from_sam(sam_base());
  const SematParameterCounts c = model->parameter_counts();
  // fixture.json param_counts.tiny
  EXPECT_EQ(c.prompt_enhancement, 65600);
  EXPECT_EQ(c.lora, 37888);
  EXPECT_EQ(c.matting_tokens_adapter, 12928);
  EXPECT_EQ(c.matting_decoder, 393761);
  EXPECT_EQ(c.total, 510177);
  EXPECT_EQ(c.frozen_sam, 282048 + 1068 + 40608);
  int64_t trainable = 0;
  for (const auto& p : model->parameters())
    if (p.requires_grad()) trainable += p.numel();
  EXPECT_EQ(trainable, c.total);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->sam_model->frozen_mask_decoder->iou_token->weight,
                           model->sam_model->mask_decoder->iou_token->weight));
  // Training outputs: everything the losses need, with gradients reaching LoRA.
  torch::manual_seed(0);
  model->train();
  // Images as the model sees them (unnormalised randn made 1e21 gradients that overflowed to NaN
  // under some thread schedules).
  const auto images = model->normalize(torch::rand({2, 3, 256, 256}));
  const auto boxes = torch::tensor({{10.f, 20.f, 200.f, 180.f}, {0.f, 0.f, 255.f, 255.f}});
  {
    torch::AutoGradMode grad(true);
    const auto out = model->forward(images, boxes);
    EXPECT_EQ(out.alpha.sizes(), (std::vector<int64_t>{2, 1, 256, 256}));
    EXPECT_EQ(out.matting_logits.sizes(), (std::vector<int64_t>{2, 3, 256, 256}));
    EXPECT_EQ(out.sam_logits.sizes(), (std::vector<int64_t>{2, 1, 256, 256}));
    const auto target = model->frozen_sam_logits(images, boxes).detach();
    EXPECT_EQ(target.sizes(), out.sam_logits.sizes());
    const auto loss =
        out.alpha.mean() + out.matting_logits.mean() + (out.sam_logits - target).abs().mean();
    loss.backward();
    const auto& a = model->sam_model->vit->blocks[0]->as<sam::Block>()->attn;
    const auto* lora = a->named_modules()["qkv"]->as<semat_net::LoraLinearImpl>();
    ASSERT_NE(lora, nullptr);
    // B starts at 0, so A's gradient is 0 but B's is not.
    EXPECT_TRUE(lora->B->weight.grad().defined());
    EXPECT_GT(lora->B->weight.grad().abs().sum().item<double>(), 0.0);
    EXPECT_FALSE(a->qkv->weight.grad().defined());
  }
}

TEST(SematBuild, ParameterCountsOfTheOfficialVitL) {
  const SematParameterCounts c = semat_parameter_counts(semat_preset("semat-vit-l"));
  EXPECT_EQ(c.prompt_enhancement, 1049600);
  EXPECT_EQ(c.lora, 2387968);
  EXPECT_EQ(c.matting_tokens_adapter, 1333760);
  EXPECT_EQ(c.matting_decoder, 13536785);
  EXPECT_EQ(c.total, 18308113);
  EXPECT_EQ(c.frozen_sam, 312342832);
}

TEST(SematBuild, KeyNamesFollowTheOfficialStateDict) {
  const auto model = semat_net::build_semat(semat_ckpt());
  std::set<std::string> ours;
  for (const auto& e : sam::expected_tensors(*model)) ours.insert(e.name);
  size_t official = 0;
  for (const auto& t : semat_ckpt().tensors) {
    if (t.name.rfind(semat_net::kFrozenDecoderPrefix, 0) == 0) continue;
    ++official;
    EXPECT_TRUE(ours.count(t.name)) << t.name;
  }
  EXPECT_EQ(ours.size(), official);
  EXPECT_EQ(semat_net::semat_key_for_sam_key("image_encoder.blocks.3.attn.qkv.weight"),
            "sam_model.image_encoder.base_model.model.blocks.3.attn.qkv.base_layer.weight");
  EXPECT_EQ(semat_net::semat_key_for_sam_key("image_encoder.blocks.3.mlp.lin1.bias"),
            "sam_model.image_encoder.base_model.model.blocks.3.mlp.lin1.bias");
  EXPECT_EQ(semat_net::semat_key_for_sam_key("mask_decoder.iou_token.weight"),
            "sam_model.mask_decoder.iou_token.weight");
}

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "(no CheckpointError)";
}

io::Checkpoint with_extra(const io::Checkpoint& ck, const std::string& name) {
  io::Checkpoint c = ck;
  io::TensorData t;
  t.name = name;
  t.shape = {1};
  t.bytes.assign(4, 0);
  c.tensors.push_back(t);
  return c;
}

}  // namespace

TEST(SematBuild, RefusesOtherCheckpointsClearly) {
  const std::string sam_as_semat = error_of([] { semat_net::build_semat(sam_base()); });
  EXPECT_NE(sam_as_semat.find("plain SAM checkpoint"), std::string::npos) << sam_as_semat;
  EXPECT_NE(sam_as_semat.find("--semat"), std::string::npos) << sam_as_semat;

  const std::string hq = error_of(
      [] { semat_net::build_semat(with_extra(sam_base(), "mask_decoder.hf_token.weight")); });
  EXPECT_NE(hq.find("plain SAM checkpoint"), std::string::npos) << hq;
  EXPECT_NE(hq.find("supported: "), std::string::npos) << hq;
  // An HQ token makes it the HQ-SAM variant, whose other HQ parts are then named as missing.
  const std::string semat_hq = error_of([] {
    semat_net::build_semat(with_extra(semat_ckpt(), "sam_model.mask_decoder.hf_token.weight"));
  });
  EXPECT_NE(semat_hq.find("sam_model.mask_decoder.compress_vit_feat.0.weight"), std::string::npos)
      << semat_hq;
  const std::string sam2 = error_of([] {
    semat_net::build_semat(
        with_extra(sam_base(), "image_encoder.trunk.patch_embed.proj.weight"));
  });
  EXPECT_NE(sam2.find("SAM 2"), std::string::npos) << sam2;

  const std::string extra = error_of(
      [] { semat_net::build_semat(with_extra(semat_ckpt(), "matting_decoder.bogus.weight")); });
  EXPECT_NE(extra.find("matting_decoder.bogus.weight"), std::string::npos) << extra;

  io::Checkpoint missing = semat_ckpt();
  const std::string gone = "matting_decoder.up_blks.1.res_layer.bias";
  missing.tensors.erase(std::remove_if(missing.tensors.begin(), missing.tensors.end(),
                                       [&](const io::TensorData& t) { return t.name == gone; }),
                        missing.tensors.end());
  const std::string miss = error_of([&] { semat_net::build_semat(missing); });
  EXPECT_NE(miss.find(gone), std::string::npos) << miss;

  // A SEMat checkpoint where SAM is expected.
  const std::string semat_as_sam = error_of([] { sam::build_sam(semat_ckpt()); });
  EXPECT_NE(semat_as_sam.find("SEMat"), std::string::npos) << semat_as_sam;
}

// Issue #14: every key prefix is loaded strictly. The frozen SAM decoder of training checkpoints
// is not used for inference, but a mis-shaped tensor under it used to be accepted silently; and
// crafted sizes in SEMat's own parts must be clean errors, never crashes.
TEST(SematBuild, CraftedTensorsAreRefused) {
  auto reshaped = [](const io::Checkpoint& ck, const std::string& key, std::vector<int64_t> shape) {
    io::Checkpoint c = ck;
    bool found = false;
    for (io::TensorData& t : c.tensors) {
      if (t.name != key) continue;
      found = true;
      t.shape = shape;
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      t.bytes.assign(static_cast<size_t>(n) * io::dtype_size(t.dtype), 0);
    }
    EXPECT_TRUE(found) << key;
    return c;
  };
  // A training checkpoint: the SEMat one plus the frozen decoder (the SAM base's mask decoder).
  io::Checkpoint training = semat_ckpt();
  for (const auto& t : sam_base().tensors) {
    if (t.name.rfind("mask_decoder.", 0) != 0) continue;
    io::TensorData f = t;
    f.name = "sam_model.frozen_" + t.name;
    training.tensors.push_back(f);
  }
  EXPECT_NO_THROW(semat_net::build_semat(training));
  const std::string frozen_key = "sam_model.frozen_mask_decoder.iou_prediction_head.layers.0.weight";
  const std::string bad = error_of([&] { semat_net::build_semat(reshaped(training, frozen_key, {3, 5})); });
  EXPECT_NE(bad.find(frozen_key), std::string::npos) << bad;
  const std::string unknown =
      error_of([&] { semat_net::build_semat(with_extra(training, "sam_model.frozen_mask_decoder.bogus")); });
  EXPECT_NE(unknown.find("sam_model.frozen_mask_decoder.bogus"), std::string::npos) << unknown;

  const std::string enc = "sam_model.image_encoder.base_model.model.";
  for (const auto& [key, shape] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
           {enc + "blocks.0.attn.rel_pos_h", {7, 0}},
           {enc + "neck.0.weight", {}},
           {enc + "patch_embed.proj.base_layer.weight", {0, 3, 16, 16}},
           {"sam_model.mask_decoder.matting_hf_token.weight", {0, 32}},
           {"matting_decoder.big_kernel_process.0.weight", {16, 0, 13, 13}},
           {"matting_decoder.matting_head.weight", {1}},
           {"matting_decoder.down_blks.0.res_layer.weight", {}},
       }) {
    const std::string msg = error_of([&] { semat_net::build_semat(reshaped(semat_ckpt(), key, shape)); });
    EXPECT_NE(msg.find("semat_tiny.pth"), std::string::npos) << key << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << key << ": " << msg;
  }
  // A vit_feat_proj index that names no global block, or is not a number.
  for (const std::string idx : {"7", "x"}) {
    io::Checkpoint c = semat_ckpt();
    for (io::TensorData& t : c.tensors)
      if (t.name.rfind("matting_decoder.vit_feat_proj.0.", 0) == 0)
        t.name = "matting_decoder.vit_feat_proj." + idx + t.name.substr(std::string("matting_decoder.vit_feat_proj.0").size());
    const std::string msg = error_of([&] { semat_net::build_semat(c); });
    EXPECT_NE(msg.find("vit_feat_proj." + idx), std::string::npos) << msg;
  }
}

TEST(SematBuild, SlimCheckpointTakesSamWeightsFromTheBase) {
  // Only SEMat's own parts (LoRA, prompt enhancement, matting parts): the SAM part comes from
  // the base checkpoint, and the result equals the full checkpoint's.
  io::Checkpoint slim;
  slim.source = "slim";
  for (const auto& t : semat_ckpt().tensors) {
    const bool own = t.name.find(".lora_") != std::string::npos ||
                     t.name.rfind("condition_layer.", 0) == 0 ||
                     t.name.rfind("matting_decoder.", 0) == 0 ||
                     t.name.rfind("sam_model.mask_decoder.matting_", 0) == 0;
    if (own) slim.tensors.push_back(t);
  }
  const std::string no_base = error_of([&] { semat_net::build_semat(slim); });
  EXPECT_NE(no_base.find("--sam"), std::string::npos) << no_base;
  torch::NoGradGuard no_grad;
  auto model = semat_net::build_semat(slim, &sam_base());
  const auto images = fixture_images(model);
  // sam_base_tiny holds the same SAM weights as the SEMat fixture (fixture.json sam_key).
  expect_close(model->forward(images, fixture_box()).alpha, want("alpha"),
               "alpha from slim + base");
}

}  // namespace semat::models
