#include "semat/models/sam_predictor.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"
#include "semat/models/internal/sam/build.h"
#include "semat/models/precision.h"
#include "semat/models/transforms.h"

namespace semat::models {

struct SamPredictor::Impl {
  sam::Sam model{nullptr};
  torch::Device device{torch::kCPU};
  Precision precision = Precision::kFloat32;
  cv::Mat resized_rgb;
  torch::Tensor input_tensor, features;
  torch::Tensor interm0;  ///< HQ-SAM: first global block's output [1, g, g, D]
  bool hq_token_only = false;
  torch::Tensor dense_pe;  ///< get_dense_pe() depends only on the weights: computed once
  cv::Size original{0, 0}, input{0, 0};

  void init(const io::Checkpoint& ck, const Options& o) {
    device = sam::select_device(o.device);
    precision = resolve_precision(o.precision, device.str());
    // bf16: the encoder's weights are converted once, while they are copied from the checkpoint.
    model = sam::build_sam(ck, o.model_type,
                           precision == Precision::kBFloat16 ? torch::kBFloat16 : torch::kFloat);
    hq_token_only = o.hq_token_only;
    model->to(device);
    torch::InferenceMode guard;
    dense_pe = model->prompt_encoder->get_dense_pe();
  }

  torch::Tensor coords_to_input(const std::vector<float>& xy) const {
    // ref: utils/transforms.py apply_coords (float64 maths, then float32 like the predictor)
    std::vector<float> out(xy.size());
    const double sx = static_cast<double>(input.width) / original.width;
    const double sy = static_cast<double>(input.height) / original.height;
    for (size_t i = 0; i < xy.size(); i += 2) {
      out[i] = static_cast<float>(xy[i] * sx);
      out[i + 1] = static_cast<float>(xy[i + 1] * sy);
    }
    return torch::tensor(out, torch::kFloat).to(device);
  }

  SamMasks to_masks(const torch::Tensor& low_res, const torch::Tensor& iou, int64_t b) const {
    const auto up = model->postprocess_masks(low_res.narrow(0, b, 1), input.height, input.width,
                                             original.height, original.width)
                        .squeeze(0)
                        .to(torch::kCPU)
                        .contiguous();
    const auto lr = low_res.select(0, b).to(torch::kCPU).contiguous();
    const auto ip = iou.select(0, b).to(torch::kCPU).contiguous();
    SamMasks m;
    for (int64_t i = 0; i < up.size(0); ++i) {
      m.logits.push_back(cv::Mat(original, CV_32F, up[i].data_ptr<float>()).clone());
      m.low_res_logits.push_back(
          cv::Mat(static_cast<int>(lr.size(1)), static_cast<int>(lr.size(2)), CV_32F, lr[i].data_ptr<float>()).clone());
      m.iou.push_back(ip[i].item<float>());
    }
    return m;
  }

  sam::DecoderOutput decode(const torch::Tensor& sparse, const torch::Tensor& dense, bool multimask) {
    if (!model->cfg.hq) return model->mask_decoder->forward(features, dense_pe, sparse, dense, multimask);
    auto r = model->mask_decoder_hq->forward_hq(features, dense_pe, sparse, dense, interm0, multimask,
                                                hq_token_only);
    return {r.masks, r.iou_pred};
  }

  void check_box(const Box& b) const {
    check_box_in_image(b, original.width, original.height, "box");
  }
};

int SamMasks::best() const {
  return static_cast<int>(std::max_element(iou.begin(), iou.end()) - iou.begin());
}

cv::Mat SamMasks::mask(int i, float threshold) const { return logits.at(i) > threshold; }

SamPredictor::SamPredictor(const std::string& checkpoint, const Options& o)
    : SamPredictor(io::load_checkpoint(checkpoint), o) {}

SamPredictor::SamPredictor(const io::Checkpoint& ck, const Options& o) : impl_(std::make_unique<Impl>()) {
  impl_->init(ck, o);
}

SamPredictor::~SamPredictor() = default;

const SamConfig& SamPredictor::config() const { return impl_->model->cfg; }
std::string SamPredictor::device() const { return impl_->device.str(); }
std::string SamPredictor::precision() const { return precision_name(impl_->precision); }
bool SamPredictor::has_image() const { return impl_->features.defined(); }
cv::Size SamPredictor::image_size() const { return impl_->original; }

void SamPredictor::set_image(const cv::Mat& image, ChannelOrder order) {
  SEMAT_CHECK(image.type() == CV_8UC3 && !image.empty(), InvalidArgument,
              "SamPredictor::set_image: 8-bit 3-channel image expected");
  torch::InferenceMode guard;
  Impl& s = *impl_;
  Timer t;
  const int64_t side = s.model->cfg.encoder.img_size;
  s.original = image.size();
  s.input = preprocess_size(image.rows, image.cols, static_cast<int>(side));
  // pil_resize_bilinear always returns a new continuous Mat (a clone when no resize is needed),
  // so resized_rgb never points into the caller's pixels.
  s.resized_rgb = pil_resize_bilinear(rgb_of(image, order), s.input);
  auto x = torch::from_blob(s.resized_rgb.data, {s.input.height, s.input.width, 3}, torch::kByte)
               .permute({2, 0, 1})
               .unsqueeze(0)
               .to(s.device)
               .to(torch::kFloat);
  s.input_tensor = s.model->preprocess(x);
  SEMAT_LOG_DEBUG("sam", "image resized and normalised in " << t.seconds() << " s");
  t.reset();
  if (s.model->cfg.hq) {
    auto enc = s.model->image_encoder->forward_features(s.input_tensor);
    s.features = enc.embedding;
    s.interm0 = enc.global_blocks.at(0);
  } else {
    s.features = s.model->image_encoder->forward(s.input_tensor);
  }
  SEMAT_LOG_DEBUG("sam", "image encoder in " << t.seconds() << " s");
}

SamMasks SamPredictor::predict(const SamPrompt& p, bool multimask) const {
  SEMAT_CHECK(has_image(), StateError, "SamPredictor::predict: call set_image first");
  SEMAT_CHECK(p.points.size() == p.labels.size(), InvalidArgument,
              "got " << p.points.size() << " points but " << p.labels.size() << " labels");
  Impl& s = *impl_;
  torch::InferenceMode guard;
  torch::Tensor points, labels, boxes, masks;
  if (!p.points.empty()) {
    std::vector<float> xy;
    std::vector<int64_t> lab;
    for (size_t i = 0; i < p.points.size(); ++i) {
      const auto& pt = p.points[i];
      SEMAT_CHECK(pt.x >= 0 && pt.y >= 0 && pt.x <= s.original.width && pt.y <= s.original.height,
                  InvalidArgument, "point " << i + 1 << " (" << pt.x << "," << pt.y << ") is outside the "
                                  << s.original.width << "x" << s.original.height << " image");
      SEMAT_CHECK(p.labels[i] == 0 || p.labels[i] == 1, InvalidArgument,
                  "point " << i + 1 << " has label " << p.labels[i]
                           << ": use 1 for foreground or 0 for background");
      xy.push_back(pt.x), xy.push_back(pt.y);
      lab.push_back(p.labels[i]);
    }
    points = s.coords_to_input(xy).view({1, -1, 2});
    labels = torch::tensor(lab, torch::kLong).to(s.device).view({1, -1});
  }
  if (p.box) {
    s.check_box(*p.box);
    boxes = s.coords_to_input({static_cast<float>(p.box->x0), static_cast<float>(p.box->y0),
                               static_cast<float>(p.box->x1), static_cast<float>(p.box->y1)})
                .view({1, 4});
  }
  if (!p.mask_input.empty()) {
    const int64_t g4 = 4 * s.model->cfg.encoder.grid();
    SEMAT_CHECK(p.mask_input.type() == CV_32F && p.mask_input.rows == g4 && p.mask_input.cols == g4,
                InvalidArgument, "mask input must be CV_32F " << g4 << "x" << g4 << " low-res logits");
    masks = torch::from_blob(p.mask_input.clone().data, {1, 1, g4, g4}, torch::kFloat).clone().to(s.device);
  }
  SEMAT_CHECK(points.defined() || boxes.defined() || masks.defined(), InvalidArgument,
              "give SAM a box, at least one point, or a mask");
  auto emb = s.model->prompt_encoder->forward(points, labels, boxes, masks);
  auto dec = s.decode(emb.sparse, emb.dense, multimask);
  return s.to_masks(dec.masks, dec.iou_pred, 0);
}

std::vector<SamMasks> SamPredictor::predict_boxes(const std::vector<Box>& boxes, bool multimask) const {
  SEMAT_CHECK(has_image(), StateError, "SamPredictor::predict_boxes: call set_image first");
  if (boxes.empty()) return {};
  Impl& s = *impl_;
  torch::InferenceMode guard;
  std::vector<float> xy;
  for (const Box& b : boxes) {
    s.check_box(b);
    for (double v : {b.x0, b.y0, b.x1, b.y1}) xy.push_back(static_cast<float>(v));
  }
  const auto bt = s.coords_to_input(xy).view({-1, 4});
  auto emb = s.model->prompt_encoder->forward({}, {}, bt, {});
  auto dec = s.decode(emb.sparse, emb.dense, multimask);
  std::vector<SamMasks> out;
  for (int64_t b = 0; b < static_cast<int64_t>(boxes.size()); ++b)
    out.push_back(s.to_masks(dec.masks, dec.iou_pred, b));
  return out;
}

std::vector<io::TensorData> SamPredictor::image_tensors() const {
  SEMAT_CHECK(has_image(), StateError, "SamPredictor::image_tensors: call set_image first");
  const Impl& s = *impl_;
  std::vector<io::TensorData> out;
  out.push_back(sam::to_tensor_data("input_tensor", s.input_tensor));
  out.push_back(sam::to_tensor_data("image_embeddings", s.features));
  if (s.interm0.defined()) out.push_back(sam::to_tensor_data("interm_embeddings0", s.interm0));
  io::TensorData r;
  r.name = "resized_image";
  r.dtype = io::DType::U8;
  r.shape = {s.resized_rgb.rows, s.resized_rgb.cols, 3};
  r.bytes.assign(s.resized_rgb.data, s.resized_rgb.data + s.resized_rgb.total() * 3);
  out.push_back(r);
  return out;
}

}  // namespace semat::models
