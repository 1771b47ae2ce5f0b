#include "semat/models/semat_predictor.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/models/internal/sam/build.h"
#include "semat/models/internal/semat_net/build.h"
#include "semat/models/internal/semat_net/lora.h"
#include "semat/models/internal/semat_net/run.h"
#include "semat/models/precision.h"
#include "semat/models/transforms.h"

namespace semat::models::semat_net {
namespace {
namespace F = torch::nn::functional;

// [1, 3, S, S] RGB in [0, 1], zero-padded (before normalisation, as the official code).
torch::Tensor input_tensor(const SematModelImpl& model, torch::Device device, models::SematResize resize,
                           const cv::Mat& image, ChannelOrder order, cv::Size resized) {
  const int64_t S = model.cfg.sam.encoder.img_size;
  cv::Mat rgb = models::rgb_of(image, order);  // the caller's pixels when they are RGB already
  torch::Tensor x;
  if (resize == models::SematResize::kTorch) {
    if (!rgb.isContinuous()) rgb = rgb.clone();  // from_blob reads packed rows (a crop view has gaps)
    auto full = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kByte)
                    .permute({2, 0, 1})
                    .unsqueeze(0)
                    .to(device)
                    .to(torch::kFloat) /
                255.0;
    x = F::interpolate(full, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{resized.height, resized.width})
                                 .mode(torch::kBilinear)
                                 .align_corners(false));
  } else {
    cv::Mat small;
    if (resize == models::SematResize::kPil)
      small = models::pil_resize_bilinear(rgb, resized);
    else
      cv::resize(rgb, small, resized, 0, 0, cv::INTER_LINEAR);
    x = torch::from_blob(small.data, {small.rows, small.cols, 3}, torch::kByte)
            .permute({2, 0, 1})
            .unsqueeze(0)
            .to(device)
            .to(torch::kFloat) /
        255.0;
  }
  return F::pad(x, F::PadFuncOptions({0, S - resized.width, 0, S - resized.height}));
}

}  // namespace

std::vector<models::SematMatte> predict_mattes(SematModelImpl& model, torch::Device device,
                                               models::SematResize resize, int batch_size,
                                               const cv::Mat& image, const std::vector<Box>& boxes,
                                               ChannelOrder order) {
  using models::SematMatte;
  SEMAT_CHECK(image.type() == CV_8UC3 && !image.empty(), InvalidArgument,
              "predict_mattes: 8-bit 3-channel image expected");
  if (boxes.empty()) return {};
  for (size_t i = 0; i < boxes.size(); ++i)
    check_box_in_image(boxes[i], image.cols, image.rows, "box " + std::to_string(i + 1));
  // NoGradGuard rather than InferenceMode: the trainer evaluates its own model, whose tensors
  // must stay usable by autograd afterwards.
  torch::NoGradGuard no_grad;
  auto& m = model;
  const int64_t S = m.cfg.sam.encoder.img_size;
  const cv::Size resized = models::preprocess_size(image.rows, image.cols, static_cast<int>(S));
  const double scale = static_cast<double>(S) / std::max(image.rows, image.cols);
  const auto images = m.normalize(input_tensor(m, device, resize, image, order, resized));
  // The patch embedding does not depend on the box: once per image.
  const auto patch = m.patch_embed(images);

  std::vector<SematMatte> out(boxes.size());
  std::vector<float> coords;
  for (size_t i = 0; i < boxes.size(); ++i) {
    const Box& b = boxes[i];
    out[i].box = b;
    int k = 0;
    for (double v : {b.x0, b.y0, b.x1, b.y1}) {
      // demo.py transform_image_bbox: int(v * scale + 0.5), clipped to the frame.
      const auto q = std::clamp<int64_t>(static_cast<int64_t>(v * scale + 0.5), 0, S - 1);
      out[i].box_model[k++] = static_cast<float>(q);
      coords.push_back(static_cast<float>(q));
    }
  }
  const auto all_boxes = torch::tensor(coords, torch::kFloat).view({-1, 4}).to(device);
  const auto interp = F::InterpolateFuncOptions()
                          .size(std::vector<int64_t>{image.rows, image.cols})
                          .mode(torch::kBilinear)
                          .align_corners(false);
  const int64_t n = static_cast<int64_t>(boxes.size());
  const int64_t batch = batch_size > 0 ? batch_size : device.is_cuda() ? 4 : 1;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t count = std::min<int64_t>(batch, n - start);
    const auto bx = all_boxes.narrow(0, start, count);
    const auto imgs = images.expand({count, -1, -1, -1});
    const auto enc = m.encode(imgs, bx, patch);
    const auto res = m.decode(imgs, bx, enc);
    auto crop = [&](const torch::Tensor& t) {
      return t.narrow(2, 0, resized.height).narrow(3, 0, resized.width);
    };
    const auto alpha_model = crop(res.alpha).to(torch::kCPU).contiguous();
    const auto alpha =
        F::interpolate(crop(res.alpha), interp).clamp(0, 1).to(torch::kCPU).contiguous();
    const auto trimap = (F::interpolate(crop(res.matting_logits), interp).argmax(1) * 127.5)
                            .round()
                            .to(torch::kByte)
                            .to(torch::kCPU)
                            .contiguous();
    // The HQ variant's "SAM" output is the HQ token's mask (SamHqMatte's masks_hq).
    const auto& sam_logits = res.hq_logits.defined() ? res.hq_logits : res.sam_logits;
    const auto sam = (F::interpolate(crop(sam_logits), interp).select(1, 0) > 0)
                         .to(torch::kByte)
                         .mul(255)
                         .to(torch::kCPU)
                         .contiguous();
    for (int64_t j = 0; j < count; ++j) {
      SematMatte& r = out[static_cast<size_t>(start + j)];
      r.alpha_model = cv::Mat(resized, CV_32F, alpha_model[j][0].data_ptr<float>()).clone();
      r.alpha = cv::Mat(image.size(), CV_32F, alpha[j][0].data_ptr<float>()).clone();
      r.trimap = cv::Mat(image.size(), CV_8U, trimap[j].data_ptr<uint8_t>()).clone();
      r.sam_mask = cv::Mat(image.size(), CV_8U, sam[j].data_ptr<uint8_t>()).clone();
    }
  }
  return out;
}

}  // namespace semat::models::semat_net

namespace semat::models {
namespace F = torch::nn::functional;

SematResize parse_semat_resize(const std::string& name) {
  if (name == "cv2" || name == "opencv") return SematResize::kOpenCV;
  if (name == "pil") return SematResize::kPil;
  if (name == "torch") return SematResize::kTorch;
  throw ConfigError("unknown resize mode '" + name + "': use cv2 (official demo), pil or torch");
}

struct SematPredictor::Impl {
  semat_net::SematModel model{nullptr};
  torch::Device device{torch::kCPU};
  Precision precision = Precision::kFloat32;
  Options options;

  void init(const io::Checkpoint& ck, const io::Checkpoint* sam, const Options& o) {
    options = o;
    SEMAT_CHECK(o.batch_size >= 0, ConfigError,
                "batch size must be 0 (auto) or positive, got " << o.batch_size);
    device = sam::select_device(o.device);
    model = semat_net::build_semat(ck, sam, o.model_type);
    precision = resolve_precision(o.precision, device.str());
    if (o.merge_lora || precision == Precision::kBFloat16) semat_net::merge_lora(*model);
    model->to(device);
    if (precision == Precision::kBFloat16) {
      if (model->cfg.sam2)
        model->sam2_model->encoder->trunk->set_compute_dtype(torch::kBFloat16);  // Hiera trunk
      else
        model->sam_model->vit->set_compute_dtype(torch::kBFloat16);
    }
  }
};

SematPredictor::SematPredictor(const std::string& semat_ckpt, const std::string& sam_ckpt,
                               const Options& o)
    : impl_(std::make_unique<Impl>()) {
  const io::Checkpoint ck = io::load_checkpoint(semat_ckpt);
  if (sam_ckpt.empty()) {
    impl_->init(ck, nullptr, o);
  } else {
    const io::Checkpoint sam = io::load_checkpoint(sam_ckpt);
    impl_->init(ck, &sam, o);
  }
}

SematPredictor::SematPredictor(const io::Checkpoint& ck, const io::Checkpoint* sam,
                               const Options& o)
    : impl_(std::make_unique<Impl>()) {
  impl_->init(ck, sam, o);
}

SematPredictor::~SematPredictor() = default;

const SematConfig& SematPredictor::config() const { return impl_->model->cfg; }
std::string SematPredictor::device() const { return impl_->device.str(); }
std::string SematPredictor::precision() const { return precision_name(impl_->precision); }

std::vector<SematMatte> SematPredictor::predict(const cv::Mat& image, const std::vector<Box>& boxes,
                                                ChannelOrder order) const {
  return semat_net::predict_mattes(*impl_->model, impl_->device, impl_->options.resize,
                                       impl_->options.batch_size, image, boxes, order);
}

}  // namespace semat::models
