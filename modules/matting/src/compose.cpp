#include "semat/matting/compose.h"

#include <algorithm>
#include <cctype>
#include <map>

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"

namespace semat::matting {

std::optional<cv::Scalar> parse_color(const std::string& raw) {
  std::string text = raw;
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::map<std::string, cv::Scalar> names = {
      {"white", {255, 255, 255}}, {"black", {0, 0, 0}},     {"grey", {128, 128, 128}},
      {"gray", {128, 128, 128}},  {"red", {0, 0, 255}},     {"green", {0, 255, 0}},
      {"blue", {255, 0, 0}},      {"yellow", {0, 255, 255}}, {"cyan", {255, 255, 0}},
      {"magenta", {255, 0, 255}}};
  if (auto it = names.find(text); it != names.end()) return it->second;
  if (!text.empty() && text[0] == '#') {
    std::string hex = text.substr(1);
    if (hex.size() == 3) hex = {hex[0], hex[0], hex[1], hex[1], hex[2], hex[2]};
    if (hex.size() != 6 || !std::all_of(hex.begin(), hex.end(), ::isxdigit)) return std::nullopt;
    const int r = std::stoi(hex.substr(0, 2), nullptr, 16), g = std::stoi(hex.substr(2, 2), nullptr, 16),
              b = std::stoi(hex.substr(4, 2), nullptr, 16);
    return cv::Scalar(b, g, r);
  }
  int v[3];
  size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    const size_t comma = text.find(',', pos);
    if ((i == 2) != (comma == std::string::npos)) return std::nullopt;
    const std::string f = text.substr(pos, i == 2 ? std::string::npos : comma - pos);
    if (f.empty() || f.size() > 3 || !std::all_of(f.begin(), f.end(), ::isdigit)) return std::nullopt;
    v[i] = std::stoi(f);
    if (v[i] > 255) return std::nullopt;
    pos = comma + 1;
  }
  return cv::Scalar(v[2], v[1], v[0]);
}

cv::Mat composite(const cv::Mat& fg, const cv::Mat& alpha, const Background& bg) {
  SEMAT_CHECK(fg.type() == CV_32FC3 && alpha.type() == CV_32FC1 && fg.size() == alpha.size(),
              InvalidArgument, "composite: CV_32FC3 foreground and CV_32F alpha of one size expected");
  cv::Mat back;
  if (!bg.image.empty()) {
    // Cover: scale so both sides reach the output, then crop the centre.
    const double s = std::max(static_cast<double>(fg.cols) / bg.image.cols,
                              static_cast<double>(fg.rows) / bg.image.rows);
    cv::Mat scaled;
    cv::resize(bg.image, scaled, {}, s, s, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    const int x = (scaled.cols - fg.cols) / 2, y = (scaled.rows - fg.rows) / 2;
    scaled(cv::Rect(std::max(x, 0), std::max(y, 0), fg.cols, fg.rows)).convertTo(back, CV_32FC3, 1.0 / 255);
  } else {
    back = cv::Mat(fg.size(), CV_32FC3, bg.bgr / 255.0);
  }
  cv::Mat a3;
  cv::merge(std::vector<cv::Mat>{alpha, alpha, alpha}, a3);
  cv::Mat out = fg.mul(a3) + back.mul(cv::Scalar::all(1.0) - a3);
  out.convertTo(out, CV_8UC3, 255.0);
  return out;
}

cv::Mat cutout(const cv::Mat& fg, const cv::Mat& alpha) {
  std::vector<cv::Mat> ch;
  cv::split(fg, ch);
  ch.push_back(alpha);
  cv::Mat out;
  cv::merge(ch, out);
  out.convertTo(out, CV_8UC4, 255.0);
  return out;
}

cv::Mat overlay(const cv::Mat& image, const cv::Mat& alpha, const std::optional<Box>& box) {
  cv::Mat img, a3;
  image.convertTo(img, CV_32FC3);
  cv::Mat half = alpha * 0.5;
  cv::merge(std::vector<cv::Mat>{half, half, half}, a3);
  const cv::Mat tint(image.size(), CV_32FC3, cv::Scalar(0, 0, 255));
  cv::Mat out = img.mul(cv::Scalar::all(1.0) - a3) + tint.mul(a3);
  out.convertTo(out, CV_8UC3);
  if (box) {
    const int t = std::max(2, std::max(image.cols, image.rows) / 400);
    cv::rectangle(out, box->pixel_rect(), cv::Scalar(0, 255, 0), t);
  }
  return out;
}

cv::Mat quantize_alpha(const cv::Mat& alpha, int depth) {
  SEMAT_CHECK(depth == 8 || depth == 16, InvalidArgument, "alpha depth must be 8 or 16, got " << depth);
  cv::Mat out;
  alpha.convertTo(out, depth == 8 ? CV_8U : CV_16U, depth == 8 ? 255.0 : 65535.0);
  return out;
}

}  // namespace semat::matting
