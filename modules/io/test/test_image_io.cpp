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

namespace semat::io {
namespace {

/// `png` with a chunk of `type` and `data` inserted after IHDR, its CRC set to `crc`.
std::vector<std::uint8_t> with_chunk(std::vector<std::uint8_t> png, const std::string& type, const std::string& data,
                                     std::uint32_t crc) {
  std::vector<std::uint8_t> chunk;
  auto be32 = [&](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) chunk.push_back(static_cast<std::uint8_t>(v >> s));
  };
  be32(static_cast<std::uint32_t>(data.size()));
  chunk.insert(chunk.end(), type.begin(), type.end());
  chunk.insert(chunk.end(), data.begin(), data.end());
  be32(crc);
  png.insert(png.begin() + 8 + 25, chunk.begin(), chunk.end());  // signature, IHDR (13 + 12)
  return png;
}

/// What the codec prints on stderr for `bytes` when OpenCV decodes them directly: the control
/// that shows each case below does make the codec print.
std::string codec_stderr(const std::vector<std::uint8_t>& bytes) {
  testing::internal::CaptureStderr();
  cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
  return testing::internal::GetCapturedStderr();
}

}  // namespace

// Issue #14: libpng and libjpeg printed their own lines, so one error became 2-4 lines and a
// good image printed a warning. Warnings of a decodable file are silenced (debug log), errors
// are folded into the one IoError line.
TEST(ImageIo, CodecWarningsAreNotPrinted) {
  const cv::Mat m = gradient_image();
  // A PNG whose ancillary tEXt chunk has a wrong CRC: libpng warns and drops the chunk.
  const auto png = with_chunk(encode(m, ".png"), "tEXt", std::string("Comment\0semat", 13), 0x12345678u);
  // A JPEG with stray bytes before its end marker: libjpeg warns "Corrupt JPEG data".
  auto jpg = encode(m, ".jpg");
  jpg.insert(jpg.end() - 2, 24, 0x41);
  const std::vector<std::uint8_t>* cases[] = {&png, &jpg};
  for (const auto* bytes : cases) {
    const std::string control = codec_stderr(*bytes);
    EXPECT_FALSE(control.empty()) << "the codec printed nothing: the case does not test anything";
    testing::internal::CaptureStderr();
    cv::Mat decoded;
    EXPECT_NO_THROW(decoded = decode_color(*bytes, "warned"));
    const std::string printed = testing::internal::GetCapturedStderr();
    EXPECT_EQ(printed, "") << "control: " << control;
    EXPECT_EQ(decoded.size(), m.size());
  }
  // The pixels are the file's.
  EXPECT_EQ(cv::norm(decode_color(png, "warned.png"), m, cv::NORM_INF), 0);
}

TEST(ImageIo, CodecErrorsAreFoldedIntoOneLine) {
  const cv::Mat m = gradient_image();
  // A critical chunk libpng does not know: an error.
  const auto png = with_chunk(encode(m, ".png"), "XXXX", "data", 0);
  const std::string control = codec_stderr(png);
  EXPECT_NE(control.find("libpng"), std::string::npos) << control;
  testing::internal::CaptureStderr();
  std::string message;
  try {
    decode_color(png, "bad.png");
    ADD_FAILURE() << "decoded";
  } catch (const IoError& e) {
    message = e.what();
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_NE(message.find("'bad.png'"), std::string::npos) << message;
  EXPECT_NE(message.find("libpng"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

}  // namespace semat::io
