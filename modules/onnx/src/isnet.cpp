#include "semat/onnx/isnet.h"

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/onnx/model.h"

namespace semat::onnx {

IsNet::IsNet(const std::string& path, const std::string& device, const std::string& precision)
    : model_(std::make_unique<Model>(path, device, precision)) {
  const auto& in = model_->inputs();
  SEMAT_CHECK(in.size() == 1 && in[0].shape.size() == 4, ModelError,
              path << ": not an IS-Net model (expected one NCHW input)");
}

IsNet::~IsNet() = default;
IsNet::IsNet(IsNet&&) noexcept = default;
IsNet& IsNet::operator=(IsNet&&) noexcept = default;

std::string IsNet::device() const { return model_->device(); }
std::string IsNet::precision() const { return model_->precision(); }

cv::Mat IsNet::probability_1024(const cv::Mat& rgb) const {
  SEMAT_CHECK(rgb.type() == CV_8UC3 && rgb.rows == kSide && rgb.cols == kSide, InvalidArgument,
              "IsNet: expected a " << kSide << " x " << kSide << " CV_8UC3 image, got " << rgb.cols
                                   << " x " << rgb.rows << " type " << rgb.type());
  Tensor x;
  x.shape = {1, 3, kSide, kSide};
  x.data.resize(static_cast<std::size_t>(3) * kSide * kSide);
  const std::size_t plane = static_cast<std::size_t>(kSide) * kSide;
  for (int r = 0; r < kSide; ++r) {
    const auto* p = rgb.ptr<cv::Vec3b>(r);
    for (int c = 0; c < kSide; ++c) {
      const std::size_t i = static_cast<std::size_t>(r) * kSide + c;
      // The package's normalisation: (x - 128) / 256, one scale for the three channels.
      for (int ch = 0; ch < 3; ++ch) x.data[ch * plane + i] = (p[c][ch] - 128.0f) / 256.0f;
    }
  }
  auto out = model_->run({{model_->inputs()[0].name, x}});
  const Tensor& y = out.at(0);
  SEMAT_CHECK(y.data.size() == plane, ModelError,
              "IsNet: the model's output has " << y.data.size() << " values, expected " << plane);
  cv::Mat prob(kSide, kSide, CV_32F);
  std::copy(y.data.begin(), y.data.end(), prob.ptr<float>(0));
  return prob;
}

cv::Mat IsNet::probability(const cv::Mat& image, ChannelOrder order) const {
  SEMAT_CHECK(image.type() == CV_8UC3 && !image.empty(), InvalidArgument,
              "IsNet: expected a non-empty CV_8UC3 image");
  cv::Mat rgb, resized;
  if (order == ChannelOrder::kBGR)
    cv::cvtColor(image, rgb, cv::COLOR_BGR2RGB);
  else
    rgb = image;  // RGB pixels are resized as they are (the resize only reads them)
  cv::resize(rgb, resized, cv::Size(kSide, kSide), 0, 0, cv::INTER_LINEAR);
  cv::Mat prob = probability_1024(resized);
  cv::Mat back;
  cv::resize(prob, back, image.size(), 0, 0, cv::INTER_LINEAR);
  cv::min(cv::max(back, 0.0), 1.0, back);
  return back;
}

}  // namespace semat::onnx
