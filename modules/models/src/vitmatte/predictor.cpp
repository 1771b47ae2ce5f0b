#include "semat/models/vitmatte_predictor.h"

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/models/internal/sam/build.h"
#include "semat/models/internal/diffmatte/diffmatte.h"
#include "semat/models/internal/vitmatte/build.h"
#include "semat/models/transforms.h"

namespace semat::models {

struct VitMattePredictor::Impl {
  torch::Device device{torch::kCPU};
  Options options;
  vitmatte::VitMatte model{nullptr};
};

VitMattePredictor::VitMattePredictor(const std::string& path, const Options& options)
    : VitMattePredictor(io::load_checkpoint(path), options) {}

VitMattePredictor::VitMattePredictor(const io::Checkpoint& ck, const Options& options)
    : impl_(std::make_unique<Impl>()) {
  SEMAT_CHECK(options.max_pixels >= 0, ConfigError, "ViTMatte max_pixels must be >= 0");
  impl_->options = options;
  impl_->device = sam::select_device(options.device);
  impl_->model = vitmatte::build_vitmatte(ck, options.model_type);
  impl_->model->to(impl_->device);
}

VitMattePredictor::~VitMattePredictor() = default;

const VitMatteConfig& VitMattePredictor::config() const { return impl_->model->cfg; }
std::string VitMattePredictor::device() const { return impl_->device.str(); }

namespace {

// The network's input at most `cap` pixels (0: no cap): RGB and the trimap, shrunk together
// (INTER_AREA, the trimap nearest) when the image is larger; *scale the factor.
void network_inputs(const cv::Mat& image, ChannelOrder order, const cv::Mat& trimap, int64_t cap, torch::Device dev,
                    torch::Tensor* rgb_out, torch::Tensor* tri_out, double* scale) {
  SEMAT_CHECK(!image.empty() && image.type() == CV_8UC3, InvalidArgument,
              "the matting network takes an 8-bit 3-channel image");
  SEMAT_CHECK(trimap.type() == CV_8UC1 && trimap.size() == image.size(), InvalidArgument,
              "the trimap must be 8-bit single-channel " << image.cols << "x" << image.rows
                                                         << " (the image's size), got " << trimap.cols
                                                         << "x" << trimap.rows);
  cv::Mat rgb = rgb_of(image, order), tri = trimap;  // the caller's pixels when they are RGB already
  *scale = 1.0;
  const double pixels = static_cast<double>(image.rows) * image.cols;
  if (cap > 0 && pixels > static_cast<double>(cap)) {
    *scale = std::sqrt(static_cast<double>(cap) / pixels);
    const cv::Size small(std::max(1, static_cast<int>(image.cols * *scale)),
                         std::max(1, static_cast<int>(image.rows * *scale)));
    cv::resize(rgb, rgb, small, 0, 0, cv::INTER_AREA);
    cv::resize(trimap, tri, small, 0, 0, cv::INTER_NEAREST);
  }
  if (!rgb.isContinuous()) rgb = rgb.clone();  // from_blob reads packed rows (a crop view has gaps)
  if (!tri.isContinuous()) tri = tri.clone();
  *rgb_out = torch::from_blob(rgb.data, {1, rgb.rows, rgb.cols, 3}, torch::kByte)
                 .to(dev)
                 .permute({0, 3, 1, 2})
                 .to(torch::kFloat)
                 .div(255.0);
  *tri_out = torch::from_blob(tri.data, {1, 1, tri.rows, tri.cols}, torch::kByte).to(dev).to(torch::kFloat).div(255.0);
}

// [1, 1, h, w] alpha back at the image's size.
cv::Mat to_image_alpha(const torch::Tensor& alpha4, cv::Size size) {
  const auto alpha = alpha4[0][0].to(torch::kCPU).contiguous();
  cv::Mat a(static_cast<int>(alpha.size(0)), static_cast<int>(alpha.size(1)), CV_32F,
            const_cast<float*>(alpha.data_ptr<float>()));
  cv::Mat out;
  if (a.size() != size)
    cv::resize(a, out, size, 0, 0, cv::INTER_LINEAR);
  else
    out = a.clone();
  return out;
}

}  // namespace

VitMatteAlpha VitMattePredictor::predict(const cv::Mat& image, const cv::Mat& trimap, ChannelOrder order) const {
  torch::InferenceMode guard;
  VitMatteAlpha out;
  torch::Tensor x, t;
  network_inputs(image, order, trimap, impl_->options.max_pixels, impl_->device, &x, &t, &out.scale);
  out.alpha = to_image_alpha(impl_->model->forward(x, t), image.size());
  return out;
}

struct DiffMattePredictor::Impl {
  torch::Device device{torch::kCPU};
  Options options;
  diffmatte::DiffMatte model{nullptr};
};

DiffMattePredictor::DiffMattePredictor(const std::string& path, const Options& options)
    : DiffMattePredictor(io::load_checkpoint(path), options) {}

DiffMattePredictor::DiffMattePredictor(const io::Checkpoint& ck, const Options& options)
    : impl_(std::make_unique<Impl>()) {
  SEMAT_CHECK(options.max_pixels >= 0, ConfigError, "DiffMatte max_pixels must be >= 0");
  SEMAT_CHECK(options.steps >= 1, ConfigError, "DiffMatte steps must be >= 1, got " << options.steps);
  impl_->options = options;
  impl_->device = sam::select_device(options.device);
  impl_->model = diffmatte::build_diffmatte(ck, options.model_type);
  impl_->model->to(impl_->device);
}

DiffMattePredictor::~DiffMattePredictor() = default;
const DiffMatteConfig& DiffMattePredictor::config() const { return impl_->model->cfg; }
std::string DiffMattePredictor::device() const { return impl_->device.str(); }

VitMatteAlpha DiffMattePredictor::predict(const cv::Mat& image, const cv::Mat& trimap, ChannelOrder order) const {
  torch::InferenceMode guard;
  VitMatteAlpha out;
  torch::Tensor x, t;
  network_inputs(image, order, trimap, impl_->options.max_pixels, impl_->device, &x, &t, &out.scale);
  // The noise from a generator of its own: the same x_T for the same seed and size, whatever
  // else the process draws.
  auto gen = at::detail::createCPUGenerator(impl_->options.seed);
  const auto x_T = torch::randn({1, 1, t.size(2), t.size(3)}, gen, torch::TensorOptions().dtype(torch::kFloat)).to(impl_->device);
  const auto sample = impl_->model->sample(x, t, x_T, impl_->options.steps);
  out.alpha = to_image_alpha(diffmatte::DiffMatteImpl::alpha_from_sample(sample, t), image.size());
  return out;
}

}  // namespace semat::models
