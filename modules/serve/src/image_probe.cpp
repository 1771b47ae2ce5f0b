#include "semat/serve/image_probe.h"

#include <cstring>

namespace semat::serve {
namespace {

using Kind = ImageProbeError::Kind;

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}
std::uint32_t be16(const std::uint8_t* p) { return (std::uint32_t(p[0]) << 8) | p[1]; }
std::uint32_t le16(const std::uint8_t* p) { return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8); }
std::uint32_t le24(const std::uint8_t* p) { return le16(p) | (std::uint32_t(p[2]) << 16); }
std::uint32_t le32(const std::uint8_t* p) { return le24(p) | (std::uint32_t(p[3]) << 24); }

[[noreturn]] void fail(Kind kind, const std::string& message) { throw ImageProbeError(kind, message); }

ImageHeader checked(const char* format, std::uint64_t w, std::uint64_t h) {
  if (w == 0 || h == 0 || w > 1u << 30 || h > 1u << 30)
    fail(Kind::kCorrupt, std::string(format) + " header gives an invalid size " + std::to_string(w) +
                             "x" + std::to_string(h));
  return {format, static_cast<int>(w), static_cast<int>(h)};
}

ImageHeader probe_png(const std::uint8_t* d, std::size_t n) {
  if (n < 33) fail(Kind::kTruncated, "truncated PNG: the file stops inside its header");
  if (std::memcmp(d + 12, "IHDR", 4) != 0) fail(Kind::kCorrupt, "corrupt PNG: first chunk is not IHDR");
  static const std::uint8_t iend[] = {'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
  if (n < 45 || std::memcmp(d + n - 8, iend, 8) != 0)
    fail(Kind::kTruncated, "truncated PNG: no IEND chunk at the end (re-export or re-upload it)");
  return checked("png", be32(d + 16), be32(d + 20));
}

ImageHeader probe_jpeg(const std::uint8_t* d, std::size_t n) {
  // Walk the marker segments up to the first start-of-frame; the size is there. Progressive and
  // arithmetic-coded frames (SOF1..SOF15 except DHT/JPG/DAC) carry it in the same place.
  std::size_t p = 2;
  bool have_size = false;
  ImageHeader header;
  while (!have_size) {
    if (p + 4 > n) fail(Kind::kTruncated, "truncated JPEG: the file stops before its frame header");
    if (d[p] != 0xff) fail(Kind::kCorrupt, "corrupt JPEG: expected a marker at byte " + std::to_string(p));
    while (p < n && d[p] == 0xff) ++p;  // fill bytes
    if (p >= n) fail(Kind::kTruncated, "truncated JPEG");
    const std::uint8_t marker = d[p++];
    if (marker == 0xd8 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (marker == 0xd9 || marker == 0xda)
      fail(Kind::kCorrupt, "corrupt JPEG: image data starts before any frame header");
    if (p + 2 > n) fail(Kind::kTruncated, "truncated JPEG");
    const std::uint32_t len = be16(d + p);
    if (len < 2) fail(Kind::kCorrupt, "corrupt JPEG: segment length below 2");
    const bool sof = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (sof) {
      if (len < 7 || p + 7 > n) fail(Kind::kTruncated, "truncated JPEG: the frame header is cut off");
      const std::uint32_t h = be16(d + p + 3), w = be16(d + p + 5);
      if (h == 0) fail(Kind::kCorrupt, "JPEG with the height defined later (DNL) is not supported");
      header = checked("jpeg", w, h);
      have_size = true;
    }
    p += len;
  }
  std::size_t end = n;
  // Some encoders pad after EOI; the decoder tolerates it and so do we.
  while (end > 2 && (d[end - 1] == 0 || d[end - 1] == '\n' || d[end - 1] == '\r')) --end;
  if (end < 4 || d[end - 2] != 0xff || d[end - 1] != 0xd9)
    fail(Kind::kTruncated, "truncated JPEG: no end-of-image marker (re-export or re-upload it)");
  return header;
}

ImageHeader probe_webp(const std::uint8_t* d, std::size_t n) {
  if (n < 30) fail(Kind::kTruncated, "truncated WebP: the file stops inside its header");
  const std::uint64_t riff_end = std::uint64_t(le32(d + 4)) + 8;
  if (riff_end > n) fail(Kind::kTruncated, "truncated WebP: shorter than its RIFF size");
  const std::uint8_t* c = d + 12;
  if (std::memcmp(c, "VP8X", 4) == 0)
    return checked("webp", std::uint64_t(le24(d + 24)) + 1, std::uint64_t(le24(d + 27)) + 1);
  if (std::memcmp(c, "VP8L", 4) == 0) {
    if (d[20] != 0x2f) fail(Kind::kCorrupt, "corrupt WebP: bad VP8L signature");
    const std::uint32_t bits = le32(d + 21);
    return checked("webp", (bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1);
  }
  if (std::memcmp(c, "VP8 ", 4) == 0) {
    if (d[23] != 0x9d || d[24] != 0x01 || d[25] != 0x2a)
      fail(Kind::kCorrupt, "corrupt WebP: bad VP8 start code");
    return checked("webp", le16(d + 26) & 0x3fff, le16(d + 28) & 0x3fff);
  }
  fail(Kind::kCorrupt, "corrupt WebP: unknown first chunk");
}

bool starts_with(const std::uint8_t* d, std::size_t n, const char* sig, std::size_t len) {
  return n >= len && std::memcmp(d, sig, len) == 0;
}

}  // namespace

ImageHeader probe_image(const std::uint8_t* d, std::size_t n) {
  if (n == 0) fail(Kind::kUnsupported, "the upload is empty: expected a PNG, JPEG or WebP image");
  if (starts_with(d, n, "\x89PNG\r\n\x1a\n", 8)) return probe_png(d, n);
  if (starts_with(d, n, "\xff\xd8\xff", 3)) return probe_jpeg(d, n);
  if (starts_with(d, n, "RIFF", 4) && n >= 12 && std::memcmp(d + 8, "WEBP", 4) == 0) return probe_webp(d, n);
  fail(Kind::kUnsupported, "the upload is not a PNG, JPEG or WebP image");
}

}  // namespace semat::serve
