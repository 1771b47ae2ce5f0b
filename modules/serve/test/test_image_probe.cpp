// Header-only size probing: the decompression-bomb gate must read sizes without decoding and
// refuse anything it cannot vouch for.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "semat/serve/image_probe.h"

namespace {

using semat::serve::ImageProbeError;
using semat::serve::probe_image;

std::vector<std::uint8_t> encode(const char* ext, int w, int h, std::vector<int> params = {}) {
  cv::Mat img(h, w, CV_8UC3, cv::Scalar(10, 200, 30));
  std::vector<std::uint8_t> out;
  EXPECT_TRUE(cv::imencode(ext, img, out, params));
  return out;
}

ImageProbeError::Kind kind_of(const std::vector<std::uint8_t>& b) {
  try {
    probe_image(b.data(), b.size());
  } catch (const ImageProbeError& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no error";
  return ImageProbeError::Kind::kCorrupt;
}

TEST(ImageProbe, ReadsPngJpegSizes) {
  auto png = encode(".png", 123, 45);
  auto h = probe_image(png.data(), png.size());
  EXPECT_EQ(h.format, "png");
  EXPECT_EQ(h.width, 123);
  EXPECT_EQ(h.height, 45);
  auto jpg = encode(".jpg", 77, 301);
  h = probe_image(jpg.data(), jpg.size());
  EXPECT_EQ(h.format, "jpeg");
  EXPECT_EQ(h.width, 77);
  EXPECT_EQ(h.height, 301);
  auto prog = encode(".jpg", 64, 33, {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
  h = probe_image(prog.data(), prog.size());
  EXPECT_EQ(h.width, 64);
  EXPECT_EQ(h.height, 33);
}

TEST(ImageProbe, ReadsWebpLossyAndLossless) {
  if (!cv::haveImageWriter(".webp")) GTEST_SKIP() << "OpenCV built without WebP";
  for (int quality : {80, 101}) {  // 101: lossless (VP8L)
    auto webp = encode(".webp", 211, 97, {cv::IMWRITE_WEBP_QUALITY, quality});
    auto h = probe_image(webp.data(), webp.size());
    EXPECT_EQ(h.format, "webp");
    EXPECT_EQ(h.width, 211) << quality;
    EXPECT_EQ(h.height, 97) << quality;
  }
}

TEST(ImageProbe, ReadsVp8xCanvasSize) {
  // RIFF header + VP8X chunk with a 70000 x 50000 canvas: a bomb must be sized from this alone.
  std::vector<std::uint8_t> b = {'R', 'I', 'F', 'F', 22, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'X',
                                 10, 0, 0, 0, 0, 0, 0, 0};
  auto put24 = [&](int v) { b.push_back(v & 255), b.push_back((v >> 8) & 255), b.push_back((v >> 16) & 255); };
  put24(70000 - 1);
  put24(50000 - 1);
  auto h = probe_image(b.data(), b.size());
  EXPECT_EQ(h.width, 70000);
  EXPECT_EQ(h.height, 50000);
}

TEST(ImageProbe, RefusesNonImagesAndTruncatedFiles) {
  const std::string text = "hello, this is not an image at all";
  EXPECT_EQ(kind_of({text.begin(), text.end()}), ImageProbeError::Kind::kUnsupported);
  EXPECT_EQ(kind_of({}), ImageProbeError::Kind::kUnsupported);
  auto bmp = encode(".bmp", 10, 10);
  EXPECT_EQ(kind_of(bmp), ImageProbeError::Kind::kUnsupported);

  auto png = encode(".png", 50, 50);
  for (std::size_t n : {std::size_t(9), std::size_t(30), png.size() / 2, png.size() - 1})
    EXPECT_EQ(kind_of({png.begin(), png.begin() + n}), ImageProbeError::Kind::kTruncated) << n;
  auto jpg = encode(".jpg", 50, 50);
  for (std::size_t n : {std::size_t(4), std::size_t(20), jpg.size() / 2, jpg.size() - 2})
    EXPECT_EQ(kind_of({jpg.begin(), jpg.begin() + n}), ImageProbeError::Kind::kTruncated) << n;
  if (cv::haveImageWriter(".webp")) {
    auto webp = encode(".webp", 50, 50);
    EXPECT_EQ(kind_of({webp.begin(), webp.begin() + webp.size() / 2}), ImageProbeError::Kind::kTruncated);
  }
}

TEST(ImageProbe, RefusesZeroSizeHeaders) {
  auto png = encode(".png", 5, 5);
  png[16] = png[17] = png[18] = png[19] = 0;  // width 0
  EXPECT_EQ(kind_of(png), ImageProbeError::Kind::kCorrupt);
}

TEST(ImageProbe, NeverReadsPastTheEndOnGarbage) {
  // Every prefix of every format, plus random bytes behind valid signatures: only clean errors.
  std::vector<std::vector<std::uint8_t>> seeds = {encode(".png", 8, 8), encode(".jpg", 8, 8)};
  if (cv::haveImageWriter(".webp")) seeds.push_back(encode(".webp", 8, 8));
  cv::RNG rng(7);
  for (const auto& s : seeds) {
    for (std::size_t n = 0; n <= s.size(); ++n) {
      try {
        probe_image(s.data(), n);
      } catch (const ImageProbeError&) {
      }
    }
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<std::uint8_t> b = s;
      for (std::size_t i = 4; i < b.size(); ++i)
        if (rng.uniform(0, 8) == 0) b[i] = static_cast<std::uint8_t>(rng.uniform(0, 256));
      try {
        probe_image(b.data(), b.size());
      } catch (const ImageProbeError&) {
      }
    }
  }
}

}  // namespace
