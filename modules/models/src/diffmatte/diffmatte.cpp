#include "semat/models/internal/diffmatte/diffmatte.h"

#include <torch/torch.h>

#include <cmath>

#include "semat/core/error.h"
#include "semat/models/internal/sam/build.h"
#include "semat/models/internal/vitmatte/build.h"

namespace semat::models::diffmatte {
namespace F = torch::nn::functional;
namespace {

torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

torch::Tensor up2(const torch::Tensor& x) {
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .scale_factor(std::vector<double>{2.0, 2.0})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

}  // namespace

ShortcutImpl::ShortcutImpl(int64_t in, int64_t out, bool up_) : up(up_) {
  conv = register_module(up ? "conv" : "op", conv3x3(in, out, up ? 1 : 2));
}

torch::Tensor ShortcutImpl::forward(const torch::Tensor& x) { return conv->forward(up ? up2(x) : x); }

BasicBlockImpl::BasicBlockImpl(int64_t in, int64_t planes, int64_t emb_channels, bool up_) : up(up_) {
  emb_layers = register_module("emb_layers", torch::nn::Sequential(torch::nn::Linear(emb_channels, planes),
                                                                   torch::nn::ReLU()));
  if (up)
    conv1_up = register_module("conv1", torch::nn::ConvTranspose2d(
                                            torch::nn::ConvTranspose2dOptions(in, planes, 4).stride(2).padding(1).bias(false)));
  else
    conv1_down = register_module("conv1", conv3x3(in, planes, 2));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2 = register_module("conv2", conv3x3(planes, planes));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
  shortcut = register_module(up ? "upsample" : "downsample", Shortcut(in, planes, up));
}

// ref: DUNet.py BasicDownBlock / BasicUpBlock forward.
torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& emb) {
  auto out = torch::relu(bn1->forward(up ? conv1_up->forward(x) : conv1_down->forward(x)));
  out = out + emb_layers->forward(emb).unsqueeze(-1).unsqueeze(-1);
  out = bn2->forward(conv2->forward(out));
  return torch::relu(out + shortcut->forward(x));
}

torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim) {
  const int64_t half = dim / 2;
  const auto freqs =
      torch::exp(-std::log(10000.0) * torch::arange(half, t.options().dtype(torch::kFloat)) / static_cast<double>(half));
  const auto args = t.view({-1, 1}).to(torch::kFloat) * freqs.view({1, -1});
  auto e = torch::cat({torch::cos(args), torch::sin(args)}, -1);
  if (dim % 2) e = torch::cat({e, torch::zeros_like(e.narrow(1, 0, 1))}, -1);
  return e;
}

DUNetImpl::DUNetImpl(const DiffMatteConfig& c) : model_channels(c.model_channels) {
  const auto& d = c.downsample_in;
  const auto& u = c.upsample_in;
  SEMAT_CHECK(d.size() + 1 == u.size() && d.size() >= 2, ConfigError,
              "DiffMatte: upsample_in must have one entry more than downsample_in");
  time_embed = register_module(
      "time_embed", torch::nn::Sequential(torch::nn::Linear(c.model_channels, c.emb_channels), torch::nn::ReLU(),
                                          torch::nn::Linear(c.emb_channels, c.emb_channels)));
  for (size_t i = 0; i + 1 < d.size(); ++i) down_blks->push_back(BasicBlock(d[i], d[i + 1], c.emb_channels, false));
  register_module("down_blks", down_blks);
  mid_blk = register_module("mid_blk", BasicBlock(u[0], u[1], c.emb_channels, true));
  for (size_t i = 1; i + 1 < u.size(); ++i)
    up_blks->push_back(BasicBlock(u[i] + d[d.size() - i], u[i + 1], c.emb_channels, true));
  register_module("up_blks", up_blks);
  matting_head = register_module("matting_head", vitmatte::MattingHead(u.back(), c.head_mid));
}

torch::Tensor DUNetImpl::forward(const torch::Tensor& features, const torch::Tensor& inputs, const torch::Tensor& t,
                                 DecoderTrace* trace) {
  const auto emb = time_embed->forward(timestep_embedding(t, model_channels));
  std::vector<torch::Tensor> details;
  auto x = inputs;
  for (const auto& m : *down_blks) {
    x = m->as<BasicBlock>()->forward(x, emb);
    details.push_back(x);
  }
  auto h = mid_blk->forward(features, emb);
  if (trace) trace->emb = emb, trace->down = details, trace->mid = h;
  for (size_t i = 0; i < up_blks->size(); ++i) {
    h = up_blks[i]->as<BasicBlock>()->forward(torch::cat({h, details[details.size() - 1 - i]}, 1), emb);
    if (trace) trace->up.push_back(h);
  }
  return matting_head->forward(h);
}

DiffMatteImpl::DiffMatteImpl(const DiffMatteConfig& c) : cfg(c) {
  backbone = register_module("backbone", vitmatte::ViT(c.vit));
  decoder = register_module("decoder", DUNet(c));
}

torch::Tensor DiffMatteImpl::quantise_trimap(const torch::Tensor& trimap) {
  auto t = trimap.to(torch::kFloat).clone();
  t.masked_fill_(trimap > 0.9, 1.0);
  t.masked_fill_((trimap >= 0.1) & (trimap <= 0.9), 0.5);
  t.masked_fill_(trimap < 0.1, 0.0);
  return t;
}

torch::Tensor DiffMatteImpl::alpha_from_sample(const torch::Tensor& sample, const torch::Tensor& trimap) {
  auto a = sample.clamp(0.0, 1.0);
  return a.masked_fill(quantise_trimap(trimap) == 0, 0.0);
}

// ref: difmodel.py preprocess_inputs + uniform_gauss.py ddim_sample (linear gamma schedule,
// start-x prediction, no time difference), computed in float32 tensors as the official code.
torch::Tensor DiffMatteImpl::sample(const torch::Tensor& rgb, const torch::Tensor& trimap_in, const torch::Tensor& x_T,
                                    int steps, SampleTrace* trace) {
  using torch::indexing::Slice;
  SEMAT_CHECK(steps >= 1, ConfigError, "DiffMatte needs at least one sampling step, got " << steps);
  SEMAT_CHECK(rgb.dim() == 4 && rgb.size(0) == 1 && rgb.size(1) == 3 && trimap_in.sizes() == x_T.sizes() &&
                  trimap_in.size(2) == rgb.size(2) && trimap_in.size(3) == rgb.size(3) && trimap_in.size(1) == 1,
              InvalidArgument, "DiffMatte takes rgb [1, 3, H, W], trimap and x_T [1, 1, H, W]");
  const int64_t H = rgb.size(2), W = rgb.size(3);
  const auto opts = rgb.options().dtype(torch::kFloat);
  const auto tri = quantise_trimap(trimap_in);
  const auto mean = torch::tensor({static_cast<float>(123.675 / 255.), static_cast<float>(116.280 / 255.),
                                   static_cast<float>(103.530 / 255.)}, opts).view({1, 3, 1, 1});
  const auto stdev = torch::tensor({static_cast<float>(58.395 / 255.), static_cast<float>(57.120 / 255.),
                                    static_cast<float>(57.375 / 255.)}, opts).view({1, 3, 1, 1});
  const auto images = (rgb.to(torch::kFloat) - mean) / stdev;
  const auto onehot = torch::one_hot((tri * 2).to(torch::kLong).squeeze(1), 3).permute({0, 3, 1, 2}).to(torch::kFloat);
  const auto cond = torch::cat({images, onehot}, 1) * 2 - 1;
  const auto padded = vitmatte::VitMatteImpl::padded_size(H, W);
  const int64_t Hp = padded.first, Wp = padded.second;
  auto pad = [&](const torch::Tensor& x) {
    return (Hp == H && Wp == W) ? x : F::pad(x, F::PadFuncOptions({0, Wp - W, 0, Hp - H}));
  };
  const auto input_backbone = pad(torch::cat({images, tri}, 1));
  const auto features = backbone->forward(input_backbone);
  const auto times = torch::linspace(1.0, 0.0, steps + 1, opts);
  if (trace) trace->input_backbone = input_backbone, trace->features = features, trace->timesteps = times.narrow(0, 0, steps);
  const double scale = cfg.scale;
  auto noised = x_T.to(torch::kFloat);
  for (int k = 0; k < steps; ++k) {
    const auto t = times.narrow(0, k, 1), t_next = times.narrow(0, k + 1, 1);
    const auto gamma = (1 - t).clamp_min(1e-9), gamma_next = (1 - t_next).clamp_min(1e-9);
    const auto alpha = torch::sqrt(gamma) * scale, sigma = torch::sqrt(1 - gamma);
    const auto alpha_next = torch::sqrt(gamma_next) * scale, sigma_next = torch::sqrt(1 - gamma_next);
    // normalize_img_variance: population std over C, H, W.
    const auto sd = torch::std(noised.reshape({noised.size(0), -1}), c10::IntArrayRef{1}, /*unbiased=*/false,
                               /*keepdim=*/false)
                        .clamp_min(1e-5)
                        .view({-1, 1, 1, 1});
    const auto x_t = noised / sd;
    const auto dimages = pad(torch::cat({cond, x_t}, 1));
    DecoderTrace dt;
    const auto logits = decoder->forward(features, dimages, t, (trace && k == 0) ? &trace->step0 : (trace ? &dt : nullptr))
                            .index({Slice(), Slice(), Slice(0, H), Slice(0, W)});
    const auto pred = (torch::sigmoid(logits) * 2 - 1).clamp(-1.0, 1.0);
    const auto eps = (noised - alpha.view({-1, 1, 1, 1}) * pred) / sigma.clamp_min(1e-10).view({-1, 1, 1, 1});
    if (trace) {
      if (k == 0) trace->input_decoder = dimages;
      trace->noised.push_back(noised);
      trace->x_t.push_back(x_t);
      trace->emb.push_back(k == 0 ? trace->step0.emb : dt.emb);
      trace->logits.push_back(logits);
      trace->pred_x0.push_back(pred);
    }
    noised = pred * alpha_next.view({-1, 1, 1, 1}) + eps * sigma_next.view({-1, 1, 1, 1});
  }
  auto out = (noised / scale + 1) * 0.5;
  if (trace) trace->sample = out;
  return out;
}

models::DiffMatteConfig infer_diffmatte_config(const io::Checkpoint& ck) {
  const std::string supported = "supported: DiffMatte ViTS / ViTB / ViTS-1024 checkpoints (model.backbone.*, model.decoder.*)";
  auto has_prefix = [&](const std::string& p) {
    for (const auto& t : ck.tensors)
      if (t.name.rfind(p, 0) == 0) return true;
    return false;
  };
  SEMAT_CHECK(!(has_prefix("backbone.") && has_prefix("decoder.fusion_blks.")), CheckpointError,
              "'" << ck.source << "' is a ViTMatte checkpoint, not DiffMatte: give it with --vitmatte");
  SEMAT_CHECK(ck.find("model.decoder.time_embed.0.weight") && ck.find("model.decoder.mid_blk.conv1.weight") &&
                  ck.find("model.backbone.patch_embed.proj.weight"),
              CheckpointError,
              "'" << ck.source << "' is not a DiffMatte checkpoint: model.decoder.time_embed, mid_blk or "
                  "model.backbone weights are missing (" << supported << ")");
  // The ViT part through ViTMatte's detection, on the names without "model." (shapes only).
  io::Checkpoint shapes;
  shapes.source = ck.source;
  for (const auto& t : ck.tensors)
    if (t.name.rfind("model.", 0) == 0) {
      io::TensorData s;
      s.name = t.name.substr(6), s.shape = t.shape, s.dtype = t.dtype;
      shapes.tensors.push_back(std::move(s));
    }
  models::DiffMatteConfig c;
  c.vit = vitmatte::infer_vitmatte_config(shapes);
  auto shape = [&](const std::string& n) { return ck.at(n).shape; };
  const auto te = shape("model.decoder.time_embed.0.weight");  // [emb, model_channels]
  c.emb_channels = te.at(0), c.model_channels = te.at(1);
  c.downsample_in = {shape("model.decoder.down_blks.0.conv1.weight").at(1)};
  for (int i = 0; ck.find("model.decoder.down_blks." + std::to_string(i) + ".conv1.weight"); ++i)
    c.downsample_in.push_back(shape("model.decoder.down_blks." + std::to_string(i) + ".conv1.weight").at(0));
  const auto mid = shape("model.decoder.mid_blk.conv1.weight");  // ConvTranspose [in, out, 4, 4]
  c.upsample_in = {mid.at(0), mid.at(1)};
  for (int i = 0; ck.find("model.decoder.up_blks." + std::to_string(i) + ".conv1.weight"); ++i)
    c.upsample_in.push_back(shape("model.decoder.up_blks." + std::to_string(i) + ".conv1.weight").at(1));
  c.head_mid = shape("model.decoder.matting_head.matting_convs.0.weight").at(0);
  c.name = "custom";
  for (const auto& n : models::diffmatte_preset_names())
    if (models::diffmatte_preset(n) == c) c.name = n;
  c.vit.name = c.name;
  return c;
}

DiffMatte build_diffmatte(const io::Checkpoint& ck, const std::string& model_type) {
  models::DiffMatteConfig cfg = infer_diffmatte_config(ck);
  if (model_type != "auto") {
    const auto want = models::diffmatte_preset(model_type);
    SEMAT_CHECK(want == cfg, CheckpointError,
                "'" << ck.source << "' is a " << cfg.name << " checkpoint, not " << model_type
                    << ": use --model-type auto");
    cfg = want;
  }
  DiffMatte model(cfg);
  sam::load_weights(*model, ck, {}, "model.");
  model->eval();
  return model;
}

}  // namespace semat::models::diffmatte

namespace semat::models {

DiffMatteParameterCounts diffmatte_parameter_counts(const DiffMatteConfig& config) {
  torch::NoGradGuard no_grad;
  diffmatte::DiffMatte m(config);
  auto count = [](const torch::nn::Module& mod) {
    int64_t n = 0;
    for (const auto& p : mod.parameters(true)) n += p.numel();
    return n;
  };
  return {count(*m->backbone), count(*m->decoder), count(*m)};
}

}  // namespace semat::models
