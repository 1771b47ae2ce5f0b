// Image and trimap decoding as the server and CLI do it: the header probe first (which refuses
// decompression bombs before decoding), then OpenCV's decoders through semat's wrappers.
#include <cstddef>
#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

#include "semat/core/error.h"
#include "semat/io/image_io.h"
#include "semat/serve/image_probe.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  semat::serve::ImageHeader h;
  try {
    h = semat::serve::probe_image(data, size);
  } catch (const semat::Error&) {
    return 0;
  }
  if (static_cast<long long>(h.width) * h.height > 4'000'000) return 0;  // the server's gate, scaled down
  const std::vector<std::uint8_t> bytes(data, data + size);
  try {
    (void)semat::io::decode_color(bytes, "fuzz");
  } catch (const semat::Error&) {
  }
  try {
    (void)semat::io::decode_unit_gray(bytes, "fuzz");  // trimaps and alpha
  } catch (const semat::Error&) {
  }
  return 0;
}
