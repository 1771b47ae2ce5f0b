#include "semat/models/sam2_predictor.h"

#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/models/internal/sam/build.h"
#include "semat/models/internal/sam2/build.h"
#include "semat/models/precision.h"
#include "semat/models/transforms.h"

namespace semat::models {
namespace F = torch::nn::functional;

bool is_sam2_checkpoint(const io::Checkpoint& ck) { return sam2::is_sam2_checkpoint(ck); }

struct Sam2Predictor::Impl {
  sam2::Sam2Base model{nullptr};
  torch::Device device{torch::kCPU};
  Precision precision = Precision::kFloat32;
  torch::Tensor input_tensor, dense_pe;
  sam2::Sam2ImageFeatures features;
  cv::Size original{0, 0};

  void init(const io::Checkpoint& ck, const Options& o) {
    device = sam::select_device(o.device);
    // As SAM: auto = bf16 where the hardware has bf16 units; bf16 elsewhere is refused in one line.
    precision = resolve_precision(o.precision, device.str());
    // bf16: the Hiera trunk's weights are converted once, while they are copied from the checkpoint.
    model = sam2::build_sam2(ck, o.model_type, precision == Precision::kBFloat16 ? torch::kBFloat16 : torch::kFloat);
    model->to(device);
    torch::InferenceMode guard;
    dense_pe = model->sam_prompt_encoder->get_dense_pe();
  }

  // ref: SAM2Transforms.transform_coords(normalize=True): float32 x / W * S, y / H * S.
  torch::Tensor to_model_frame(const std::vector<float>& xy) const {
    auto t = torch::tensor(xy, torch::kFloat).view({-1, 2});
    t.select(1, 0).div_(static_cast<double>(original.width));
    t.select(1, 1).div_(static_cast<double>(original.height));
    return (t * static_cast<double>(model->cfg.image_size)).to(device);
  }

  SamMasks decode(const torch::Tensor& coords, const torch::Tensor& labels, const torch::Tensor& mask_input,
                  bool multimask, std::vector<SamMasks>* batch) {
    auto emb = model->sam_prompt_encoder->forward(coords, labels, {}, mask_input);
    const auto out = model->sam_mask_decoder->predict_masks(features.image_embed, dense_pe, emb.sparse, emb.dense,
                                                            features.high_res_feats);
    auto [low_res, iou] = model->sam_mask_decoder->select_masks(out, multimask);
    // ref: SAM2ImagePredictor._predict: upsample the unclamped logits, return clamped low-res ones.
    const auto up = F::interpolate(low_res, F::InterpolateFuncOptions()
                                                .size(std::vector<int64_t>{original.height, original.width})
                                                .mode(torch::kBilinear)
                                                .align_corners(false))
                        .to(torch::kCPU)
                        .contiguous();
    const auto lr = low_res.clamp(-32.0, 32.0).to(torch::kCPU).contiguous();
    const auto ip = iou.to(torch::kCPU).contiguous();
    SamMasks last;
    for (int64_t b = 0; b < up.size(0); ++b) {
      SamMasks m;
      for (int64_t i = 0; i < up.size(1); ++i) {
        m.logits.push_back(cv::Mat(original, CV_32F, up[b][i].data_ptr<float>()).clone());
        m.low_res_logits.push_back(
            cv::Mat(static_cast<int>(lr.size(2)), static_cast<int>(lr.size(3)), CV_32F, lr[b][i].data_ptr<float>())
                .clone());
        m.iou.push_back(ip[b][i].item<float>());
      }
      if (batch) batch->push_back(m);
      last = std::move(m);
    }
    return last;
  }
};

Sam2Predictor::Sam2Predictor(const std::string& checkpoint, const Options& o)
    : Sam2Predictor(io::load_checkpoint(checkpoint), o) {}

Sam2Predictor::Sam2Predictor(const io::Checkpoint& ck, const Options& o) : impl_(std::make_unique<Impl>()) {
  impl_->init(ck, o);
}

Sam2Predictor::~Sam2Predictor() = default;

const Sam2Config& Sam2Predictor::config() const { return impl_->model->cfg; }
std::string Sam2Predictor::device() const { return impl_->device.str(); }
std::string Sam2Predictor::precision() const { return precision_name(impl_->precision); }
bool Sam2Predictor::has_image() const { return impl_->features.image_embed.defined(); }
cv::Size Sam2Predictor::image_size() const { return impl_->original; }

// ref: SAM2ImagePredictor.set_image
void Sam2Predictor::set_image(const cv::Mat& image, ChannelOrder order) {
  SEMAT_CHECK(image.type() == CV_8UC3 && !image.empty(), InvalidArgument,
              "Sam2Predictor::set_image: 8-bit 3-channel image expected");
  torch::InferenceMode guard;
  Impl& s = *impl_;
  s.features = {};
  cv::Mat rgb = rgb_of(image, order);  // the caller's pixels when they are RGB already
  if (!rgb.isContinuous()) rgb = rgb.clone();  // from_blob reads packed rows (a crop view has gaps)
  const auto x = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kByte)
                     .permute({2, 0, 1})
                     .unsqueeze(0)
                     .to(s.device)
                     .to(torch::kFloat)
                     .div(255.0);
  s.input_tensor = s.model->preprocess(x);
  s.features = s.model->forward_image(s.input_tensor);
  s.original = image.size();
}

SamMasks Sam2Predictor::predict(const SamPrompt& p, bool multimask) const {
  SEMAT_CHECK(has_image(), StateError, "Sam2Predictor::predict: call set_image first");
  SEMAT_CHECK(p.points.size() == p.labels.size(), InvalidArgument,
              "got " << p.points.size() << " points but " << p.labels.size() << " labels");
  Impl& s = *impl_;
  torch::InferenceMode guard;
  std::vector<float> xy;
  std::vector<int64_t> labels;
  if (p.box) {
    check_box_in_image(*p.box, s.original.width, s.original.height, "box");
    for (double v : {p.box->x0, p.box->y0, p.box->x1, p.box->y1}) xy.push_back(static_cast<float>(v));
    labels = {2, 3};  // box corners go first, as points
  }
  for (size_t i = 0; i < p.points.size(); ++i) {
    const auto& pt = p.points[i];
    SEMAT_CHECK(pt.x >= 0 && pt.y >= 0 && pt.x <= s.original.width && pt.y <= s.original.height, InvalidArgument,
                "point " << i + 1 << " (" << pt.x << "," << pt.y << ") is outside the " << s.original.width << "x"
                         << s.original.height << " image");
    SEMAT_CHECK(p.labels[i] == 0 || p.labels[i] == 1, InvalidArgument,
                "point " << i + 1 << " has label " << p.labels[i] << ": use 1 for foreground or 0 for background");
    xy.push_back(pt.x), xy.push_back(pt.y);
    labels.push_back(p.labels[i]);
  }
  torch::Tensor mask;
  if (!p.mask_input.empty()) {
    const int64_t g4 = 4 * s.model->cfg.grid();
    SEMAT_CHECK(p.mask_input.type() == CV_32F && p.mask_input.rows == g4 && p.mask_input.cols == g4, InvalidArgument,
                "mask input must be CV_32F " << g4 << "x" << g4 << " low-res logits");
    mask = torch::from_blob(p.mask_input.clone().data, {1, 1, g4, g4}, torch::kFloat).clone().to(s.device);
  }
  SEMAT_CHECK(!xy.empty() || mask.defined(), InvalidArgument, "give SAM 2 a box, at least one point, or a mask");
  torch::Tensor coords, lab;
  if (!xy.empty()) {
    coords = s.to_model_frame(xy).view({1, -1, 2});
    lab = torch::tensor(labels, torch::kLong).view({1, -1}).to(s.device);
  }
  return s.decode(coords, lab, mask, multimask, nullptr);
}

std::vector<SamMasks> Sam2Predictor::predict_boxes(const std::vector<Box>& boxes, bool multimask) const {
  SEMAT_CHECK(has_image(), StateError, "Sam2Predictor::predict_boxes: call set_image first");
  if (boxes.empty()) return {};
  Impl& s = *impl_;
  torch::InferenceMode guard;
  std::vector<float> xy;
  for (const Box& b : boxes) {
    check_box_in_image(b, s.original.width, s.original.height, "box");
    for (double v : {b.x0, b.y0, b.x1, b.y1}) xy.push_back(static_cast<float>(v));
  }
  const auto n = static_cast<int64_t>(boxes.size());
  const auto coords = s.to_model_frame(xy).view({n, 2, 2});
  const auto labels = torch::tensor(std::vector<int64_t>{2, 3}, torch::kLong).view({1, 2}).repeat({n, 1}).to(s.device);
  std::vector<SamMasks> out;
  s.decode(coords, labels, {}, multimask, &out);
  return out;
}

std::vector<io::TensorData> Sam2Predictor::image_tensors() const {
  SEMAT_CHECK(has_image(), StateError, "Sam2Predictor::image_tensors: call set_image first");
  const Impl& s = *impl_;
  std::vector<io::TensorData> out;
  out.push_back(sam::to_tensor_data("input_tensor", s.input_tensor));
  out.push_back(sam::to_tensor_data("image_embed", s.features.image_embed));
  for (size_t i = 0; i < s.features.high_res_feats.size(); ++i)
    out.push_back(sam::to_tensor_data("high_res_feat" + std::to_string(i), s.features.high_res_feats[i]));
  return out;
}

}  // namespace semat::models
