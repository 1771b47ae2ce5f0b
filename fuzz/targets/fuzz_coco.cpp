// COCO annotations: parse_coco, then every annotation's mask through decode_mask (RLE strings,
// counts, polygons) for images of the sizes the file declares, capped so one input stays fast.
#include <cstddef>
#include <cstdint>
#include <opencv2/core.hpp>
#include <string>

#include "semat/core/error.h"
#include "semat/data/coco.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const semat::data::CocoDataset ds =
        semat::data::parse_coco(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    for (const auto& a : ds.annotations) {
      if (!a.error.empty()) continue;
      const auto it = ds.images.find(a.image_id);
      if (it == ds.images.end() || static_cast<long long>(it->second.width) * it->second.height > 1 << 20) continue;
      try {
        const cv::Mat m = semat::data::decode_mask(a, it->second, cv::Mat());
        if (m.rows != it->second.height || m.cols != it->second.width) __builtin_trap();
      } catch (const semat::Error&) {
      }
    }
  } catch (const semat::Error&) {
  }
  return 0;
}
