#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>

#include "semat/core/error.h"
#include "semat/io/image_io.h"

namespace semat::io {
namespace {

std::vector<std::uint8_t> encode(const cv::Mat& m, const std::string& ext) {
  std::vector<std::uint8_t> out;
  EXPECT_TRUE(cv::imencode(ext, m, out));
  return out;
}

cv::Mat gradient_image() {
  cv::Mat m(40, 60, CV_8UC3);
  for (int y = 0; y < m.rows; ++y)
    for (int x = 0; x < m.cols; ++x) m.at<cv::Vec3b>(y, x) = cv::Vec3b(x * 4, y * 6, (x + y) % 256);
  return m;
}

}  // namespace

TEST(ImageIo, DecodesPngAndJpeg) {
  const cv::Mat m = gradient_image();
  const cv::Mat png = decode_color(encode(m, ".png"), "a.png");
  EXPECT_EQ(cv::norm(png, m, cv::NORM_INF), 0);
  const cv::Mat jpg = decode_color(encode(m, ".jpg"), "a.jpg");
  EXPECT_EQ(jpg.size(), m.size());
  EXPECT_EQ(jpg.type(), CV_8UC3);
}

TEST(ImageIo, RejectsTruncatedFiles) {
  const cv::Mat m = gradient_image();
  for (const char* ext : {".png", ".jpg"}) {
    std::vector<std::uint8_t> bytes = encode(m, ext);
    bytes.resize(bytes.size() * 2 / 3);
    try {
      decode_color(bytes, std::string("cut") + ext);
      FAIL() << ext;
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
  }
}

TEST(ImageIo, RejectsNonImages) {
  const std::string text = "this is not an image";
  EXPECT_THROW(decode_color({text.begin(), text.end()}, "x.png"), IoError);
  EXPECT_THROW(decode_color({}, "empty.png"), IoError);
  EXPECT_THROW(read_color("/nonexistent/semat.png"), IoError);
}

// Issue #14: devices and pipes used to be read without a bound (/dev/zero until memory ran out).
TEST(ImageIo, ReadFileRefusesDevicesAndPipes) {
  for (const char* dev : {"/dev/zero", "/dev/urandom"}) {
    try {
      read_color(dev);
      ADD_FAILURE() << dev;
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
    }
  }
  const std::string fifo =
      (std::filesystem::temp_directory_path() / ("semat_fifo_" + std::to_string(::getpid()))).string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THROW(read_file(fifo), IoError);  // refused before open(), which would block
  std::filesystem::remove(fifo);
}

TEST(ImageIo, GreyDecodingScalesBitDepths) {
  cv::Mat g16(4, 4, CV_16U, cv::Scalar(65535));
  g16.at<std::uint16_t>(0, 0) = 0;
  g16.at<std::uint16_t>(1, 1) = 32768;
  const cv::Mat u = decode_unit_gray(encode(g16, ".png"), "g16.png");
  EXPECT_FLOAT_EQ(u.at<float>(0, 0), 0.f);
  EXPECT_NEAR(u.at<float>(1, 1), 32768.0 / 65535.0, 1e-6);
  EXPECT_FLOAT_EQ(u.at<float>(2, 2), 1.f);
  // R = G = B mattes read as one channel.
  cv::Mat rgb(3, 3, CV_8UC3, cv::Scalar(51, 51, 51));
  const cv::Mat g = decode_gray8(encode(rgb, ".png"), "rgb.png");
  EXPECT_EQ(g.type(), CV_8UC1);
  EXPECT_EQ(g.at<unsigned char>(1, 1), 51);
}

}  // namespace semat::io
