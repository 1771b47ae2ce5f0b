// Reads an uploaded image's format and size from its header, without decoding pixels, so the
// server can refuse decompression bombs and non-images before any large allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "semat/core/error.h"

namespace semat::serve {

struct ImageHeader {
  std::string format;  ///< "png", "jpeg" or "webp"
  int width = 0;       ///< pixels, > 0
  int height = 0;      ///< pixels, > 0
};

/// Why probe_image refused the bytes; the HTTP layer maps each kind to its own status.
class ImageProbeError : public IoError {
 public:
  enum class Kind { kUnsupported, kTruncated, kCorrupt };
  ImageProbeError(Kind kind, const std::string& message) : IoError(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

/// Parses the PNG IHDR, the JPEG SOFn segment or the WebP VP8/VP8L/VP8X header of `data`.
/// Throws ImageProbeError: kUnsupported when the bytes are none of these formats, kTruncated when
/// the file is cut off (PNG without IEND, JPEG without EOI, WebP shorter than its RIFF size, or a
/// header that stops early), kCorrupt when the header is inconsistent (zero width, no frame).
ImageHeader probe_image(const std::uint8_t* data, std::size_t size);

}  // namespace semat::serve
