// Image files in and out. Colour images are 8-bit BGR (OpenCV's channel order) everywhere in
// semat; models convert at their own boundary. Alpha and trimaps are single-channel.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace semat::io {

/// Largest file read_file() accepts (2 GiB: OpenCV's decoders take at most INT_MAX bytes).
constexpr std::uint64_t kMaxReadFileBytes = (std::uint64_t{2} << 30) - 1;

/// Reads a whole regular file (symlinks followed). Throws IoError naming the path when it is
/// missing, unreadable, not a regular file (a device such as /dev/zero, a pipe) or larger than
/// kMaxReadFileBytes.
std::vector<std::uint8_t> read_file(const std::string& path);

/// Decodes an image held in memory into 8-bit BGR (grey and 16-bit inputs are converted, an
/// alpha channel is dropped). `name` is used in errors. PNG and JPEG data that stops before the
/// format's end marker are reported as truncated instead of being decoded partially.
cv::Mat decode_color(const std::vector<std::uint8_t>& bytes, const std::string& name);

/// Decodes a single-channel image as CV_32F in [0, 1]: 8-bit divided by 255, 16-bit by 65535;
/// 3/4-channel files are converted to grey first (ground-truth mattes are often stored R=G=B).
cv::Mat decode_unit_gray(const std::vector<std::uint8_t>& bytes, const std::string& name);

/// Decodes a single-channel image as CV_8U (16-bit scaled to 8-bit; colour converted to grey).
cv::Mat decode_gray8(const std::vector<std::uint8_t>& bytes, const std::string& name);

cv::Mat read_color(const std::string& path);
cv::Mat read_unit_gray(const std::string& path);
cv::Mat read_gray8(const std::string& path);

/// PNG encoding of CV_8U/CV_16U images with 1, 3 or 4 channels (BGR/BGRA order).
std::vector<std::uint8_t> encode_png(const cv::Mat& image);

}  // namespace semat::io
