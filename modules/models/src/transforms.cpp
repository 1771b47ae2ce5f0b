#include "semat/models/transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"

namespace semat::models {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS for 8-bit images

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // per output pixel: first input index, count
  std::vector<int> k;       // ksize fixed-point weights per output pixel
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear (triangle) filter.
Coeffs precompute(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(2 * static_cast<size_t>(out_size));
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      double t = std::abs((x + xmin - center + 0.5) * ss);
      w[x] = t < 1.0 ? 1.0 - t : 0.0;
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[static_cast<size_t>(xx) * c.ksize + x] =
          static_cast<int>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

inline unsigned char clip8(int v) {
  v >>= kPrecisionBits;
  return static_cast<unsigned char>(std::clamp(v, 0, 255));
}

}  // namespace

cv::Size preprocess_size(int height, int width, int long_side) {
  const double scale = static_cast<double>(long_side) / std::max(height, width);
  return {static_cast<int>(width * scale + 0.5), static_cast<int>(height * scale + 0.5)};
}

cv::Mat pil_resize_bilinear(const cv::Mat& image, cv::Size size) {
  SEMAT_CHECK(image.depth() == CV_8U && !image.empty(), InvalidArgument,
              "pil_resize_bilinear: non-empty 8-bit image expected");
  SEMAT_CHECK(size.width > 0 && size.height > 0, InvalidArgument,
              "pil_resize_bilinear: target size must be positive");
  const int ch = image.channels();
  cv::Mat src = image;
  // Horizontal pass over the rows the vertical pass will read.
  const Coeffs cv_ = precompute(image.rows, size.height);
  const bool need_h = size.width != image.cols, need_v = size.height != image.rows;
  int row0 = 0, rows = image.rows;
  std::vector<int> vbounds = cv_.bounds;
  if (need_h) {
    const Coeffs ch_ = precompute(image.cols, size.width);
    if (need_v) {
      row0 = cv_.bounds[0];
      rows = cv_.bounds[2 * size.height - 2] + cv_.bounds[2 * size.height - 1] - row0;
      for (int i = 0; i < size.height; ++i) vbounds[2 * i] -= row0;
    }
    cv::Mat tmp(rows, size.width, image.type());
    for (int y = 0; y < rows; ++y) {
      const unsigned char* in = image.ptr<unsigned char>(y + row0);
      unsigned char* out = tmp.ptr<unsigned char>(y);
      for (int xx = 0; xx < size.width; ++xx) {
        const int xmin = ch_.bounds[2 * xx], xmax = ch_.bounds[2 * xx + 1];
        const int* k = &ch_.k[static_cast<size_t>(xx) * ch_.ksize];
        for (int c = 0; c < ch; ++c) {
          int ss = 1 << (kPrecisionBits - 1);
          for (int x = 0; x < xmax; ++x) ss += in[(x + xmin) * ch + c] * k[x];
          out[xx * ch + c] = clip8(ss);
        }
      }
    }
    src = tmp;
  }
  if (!need_v) return need_h ? src : image.clone();
  cv::Mat out(size, image.type());
  const int width = src.cols;
  for (int yy = 0; yy < size.height; ++yy) {
    const int ymin = vbounds[2 * yy], ymax = vbounds[2 * yy + 1];
    const int* k = &cv_.k[static_cast<size_t>(yy) * cv_.ksize];
    unsigned char* o = out.ptr<unsigned char>(yy);
    for (int x = 0; x < width * ch; ++x) {
      int ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < ymax; ++y) ss += src.ptr<unsigned char>(y + ymin)[x] * k[y];
      o[x] = clip8(ss);
    }
  }
  return out;
}

cv::Mat rgb_of(const cv::Mat& image, ChannelOrder order) {
  SEMAT_CHECK(image.type() == CV_8UC3 && !image.empty(), InvalidArgument,
              "rgb_of: non-empty 8-bit 3-channel image expected");
  if (order == ChannelOrder::kRGB) return image;
  cv::Mat rgb;
  cv::cvtColor(image, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

}  // namespace semat::models
