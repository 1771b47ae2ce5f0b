// RLE strings and polygons with arbitrary doubles (NaN, infinities, 1e300) on small images.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "semat/core/error.h"
#include "semat/data/rle.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const int h = data[0] % 64, w = data[1] % 64;
  const bool polygon = data[2] & 1;
  data += 3, size -= 3;
  try {
    if (polygon) {
      std::vector<double> xy(size / sizeof(double));
      if (!xy.empty()) std::memcpy(xy.data(), data, xy.size() * sizeof(double));
      const cv::Mat m = semat::data::polygons_to_mask({xy}, h, w);
      if (h > 0 && w > 0 && (m.rows != h || m.cols != w)) __builtin_trap();  // 0-area: any empty Mat
    } else {
      const semat::data::Rle r =
          semat::data::rle_from_string(std::string(reinterpret_cast<const char*>(data), size), h, w);
      const cv::Mat m = semat::data::rle_to_mask(r);
      if (semat::data::rle_to_string(semat::data::rle_from_mask(m)).empty() && h * w > 0) __builtin_trap();
    }
  } catch (const semat::Error&) {
  }
  return 0;
}
