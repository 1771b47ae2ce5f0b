#include "semat/io/image_io.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/core/log.h"

namespace semat::io {
namespace {

bool starts_with(const std::vector<std::uint8_t>& b, std::initializer_list<std::uint8_t> sig) {
  if (b.size() < sig.size()) return false;
  return std::equal(sig.begin(), sig.end(), b.begin());
}

// libpng and libjpeg decode what they can of a cut-off file and only warn, which would silently
// give a half-grey image; check the formats' end markers before decoding instead.
void check_not_truncated(const std::vector<std::uint8_t>& b, const std::string& name) {
  if (starts_with(b, {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'})) {
    static const std::uint8_t iend[] = {'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    const bool ok = b.size() >= 20 && std::memcmp(b.data() + b.size() - 8, iend, 8) == 0;
    SEMAT_CHECK(ok, IoError, "'" << name << "' is a truncated PNG (no IEND chunk): re-export or re-download it");
  } else if (starts_with(b, {0xff, 0xd8, 0xff})) {
    size_t end = b.size();
    while (end > 2 && (b[end - 1] == 0 || b[end - 1] == '\n' || b[end - 1] == '\r')) --end;
    const bool ok = end >= 4 && b[end - 2] == 0xff && b[end - 1] == 0xd9;
    SEMAT_CHECK(ok, IoError, "'" << name << "' is a truncated JPEG (no end-of-image marker): re-export or re-download it");
  }
}

// Lines the image codecs print on stderr themselves (libpng's "libpng warning: iCCP: ...",
// libjpeg's "Corrupt JPEG data: ...", libtiff's "TIFFReadDirectory: Warning, ..."), as opposed
// to what another thread happened to write meanwhile.
bool is_codec_line(const std::string& line) {
  for (const char* marker : {"libpng", "JPEG", "jpeg", "TIFF", "WebP", "webp", "imgcodecs", "OpenCV"})
    if (line.find(marker) != std::string::npos) return true;
  return false;
}

/// The codecs' own stderr lines of a decode, joined with "; "; other lines go back to stderr.
std::string codec_messages(const std::string& captured) {
  std::string codec, other;
  std::size_t start = 0;
  while (start < captured.size()) {
    std::size_t end = captured.find('\n', start);
    if (end == std::string::npos) end = captured.size();
    std::string line = captured.substr(start, end - start);
    start = end + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    if (is_codec_line(line)) {
      if (!codec.empty()) codec += "; ";
      codec += line;
    } else {
      other += line + '\n';
    }
  }
  if (!other.empty()) std::cerr << other << std::flush;
  return codec.size() > 300 ? codec.substr(0, 300) + "..." : codec;
}

// libpng and libjpeg print warnings and errors on stderr themselves. The CLI's rule is one line
// per error, so they are captured: folded into the error when decoding fails, and logged at debug
// level (not shown by default) when it succeeds, e.g. "iCCP: known incorrect sRGB profile".
cv::Mat decode_unchanged(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  SEMAT_CHECK(!bytes.empty(), IoError, "'" << name << "' is empty: expected a PNG or JPEG image");
  check_not_truncated(bytes, name);
  cv::Mat img;
  std::string captured, failure;
  try {
    log::capture_stderr(
        [&] {
          img = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8U,
                                     const_cast<std::uint8_t*>(bytes.data())),
                             cv::IMREAD_UNCHANGED);
        },
        captured);
  } catch (const cv::Exception& e) {
    failure = e.msg;
  }
  const std::string codec = codec_messages(captured);
  if (!failure.empty())
    throw IoError("'" + name + "' cannot be decoded as an image: " + failure + (codec.empty() ? "" : " (" + codec + ")"));
  SEMAT_CHECK(!img.empty(), IoError,
              "'" << name << "' is not a readable image (PNG, JPEG, WebP, BMP or TIFF expected)"
                  << (codec.empty() ? "" : ": " + codec));
  if (!codec.empty()) SEMAT_LOG_DEBUG("io", "'" << name << "' decoded with the codec's warnings: " << codec);
  return img;
}

cv::Mat to_gray(const cv::Mat& img) {
  if (img.channels() == 1) return img;
  cv::Mat g;
  cv::cvtColor(img, g, img.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
  return g;
}

}  // namespace

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  SEMAT_CHECK(std::filesystem::exists(status), IoError, "'" << path << "' does not exist");
  SEMAT_CHECK(!std::filesystem::is_directory(status), IoError,
              "'" << path << "' is a folder, expected a file");
  // Devices and pipes (/dev/zero, a FIFO) have no size and may never end: refuse them rather
  // than reading without a bound.
  SEMAT_CHECK(std::filesystem::is_regular_file(status), IoError,
              "'" << path << "' is not a regular file (a device, pipe or socket); expected an image file");
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  SEMAT_CHECK(!ec, IoError, "cannot read the size of '" << path << "': " << ec.message());
  SEMAT_CHECK(size <= kMaxReadFileBytes, IoError,
              "'" << path << "' is " << size << " bytes, over the " << (kMaxReadFileBytes >> 20)
                  << " MiB limit for one input file");
  std::ifstream in(path, std::ios::binary);
  SEMAT_CHECK(in.good(), IoError, "cannot open '" << path << "': " << std::strerror(errno));
  // The size is known, so the buffer is allocated once; a file that grows meanwhile is cut at
  // that size, one that shrinks is a read error.
  std::vector<std::uint8_t> data(static_cast<std::size_t>(size));
  in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(size));
  SEMAT_CHECK(!in.bad() && in.gcount() == static_cast<std::streamsize>(size), IoError,
              "error while reading '" << path << "' (the file changed while it was read?)");
  return data;
}

cv::Mat decode_color(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  cv::Mat img = decode_unchanged(bytes, name);
  if (img.depth() == CV_16U) img.convertTo(img, CV_8U, 1.0 / 257.0);
  SEMAT_CHECK(img.depth() == CV_8U, IoError,
              "'" << name << "' has an unsupported pixel type (8- or 16-bit images expected)");
  if (img.channels() == 1) cv::cvtColor(img, img, cv::COLOR_GRAY2BGR);
  else if (img.channels() == 4) cv::cvtColor(img, img, cv::COLOR_BGRA2BGR);
  SEMAT_CHECK(img.channels() == 3, IoError, "'" << name << "' has " << img.channels() << " channels");
  return img;
}

cv::Mat decode_unit_gray(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  cv::Mat img = to_gray(decode_unchanged(bytes, name));
  cv::Mat out;
  if (img.depth() == CV_8U) img.convertTo(out, CV_32F, 1.0 / 255.0);
  else if (img.depth() == CV_16U) img.convertTo(out, CV_32F, 1.0 / 65535.0);
  else if (img.depth() == CV_32F) out = cv::min(cv::max(img, 0.0), 1.0);
  else throw IoError("'" + name + "' has an unsupported pixel type (8- or 16-bit expected)");
  return out;
}

cv::Mat decode_gray8(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  cv::Mat img = to_gray(decode_unchanged(bytes, name));
  if (img.depth() == CV_16U) img.convertTo(img, CV_8U, 1.0 / 257.0);
  SEMAT_CHECK(img.depth() == CV_8U, IoError,
              "'" << name << "' has an unsupported pixel type (8- or 16-bit expected)");
  return img;
}

cv::Mat read_color(const std::string& path) { return decode_color(read_file(path), path); }
cv::Mat read_unit_gray(const std::string& path) { return decode_unit_gray(read_file(path), path); }
cv::Mat read_gray8(const std::string& path) { return decode_gray8(read_file(path), path); }

std::vector<std::uint8_t> encode_png(const cv::Mat& image) {
  SEMAT_CHECK(image.depth() == CV_8U || image.depth() == CV_16U, InvalidArgument,
              "encode_png: 8- or 16-bit image expected");
  std::vector<std::uint8_t> out;
  // Level 3: close to the smallest files for a fraction of level 9's time.
  if (!cv::imencode(".png", image, out, {cv::IMWRITE_PNG_COMPRESSION, 3}))
    throw IoError("PNG encoding failed");
  return out;
}

}  // namespace semat::io
