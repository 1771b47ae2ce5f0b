// COCO-format annotation files: instance annotations (polygons, uncompressed and compressed RLE)
// and panoptic annotations (COCO panoptic, COCONut: one PNG per image whose RGB pixel holds the
// segment id R + 256 G + 65536 B, described by "segments_info").
//
// Files are parsed as a stream: every element of "images", "annotations" and "categories" is
// converted to the compact structs below as soon as it is read and its JSON is dropped, so peak
// memory is about the size of the segmentations, not of a JSON DOM (several times the file).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <opencv2/core/mat.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "semat/core/geometry.h"

namespace semat::data {

struct CocoImage {
  std::int64_t id = 0;
  std::string file_name;
  int width = 0, height = 0;
};

struct CocoCategory {
  std::int64_t id = 0;
  std::string name;
  std::string supercategory;
};

/// A segmentation as stored; decoded on demand by decode_mask (masks are big, files are not).
struct Segmentation {
  enum class Kind { kNone, kPolygons, kRleCounts, kRleString, kPanoptic };
  Kind kind = Kind::kNone;
  std::vector<std::vector<double>> polygons;  ///< kPolygons: [x0, y0, x1, y1, ...] each
  std::vector<std::uint32_t> counts;          ///< kRleCounts: uncompressed RLE
  std::string counts_string;                  ///< kRleString: compressed RLE
  int rle_height = 0, rle_width = 0;          ///< RLE "size" = [h, w]
  std::string png;  ///< kPanoptic: the image's segment PNG file name (relative to the masks dir)
};

struct CocoAnnotation {
  std::int64_t id = 0;  ///< annotation id; for panoptic files the segment id (unique per image)
  std::int64_t image_id = 0;
  std::int64_t category_id = 0;
  bool iscrowd = false;
  bool has_bbox = false;
  Box box;  ///< XYXY pixels, from COCO's [x, y, w, h]
  Segmentation segmentation;
  /// Non-empty when the annotation could not be read (missing field, wrong type); the loader
  /// keeps it so the builder can count and report it only if its category matters.
  std::string error;
};

struct CocoDataset {
  std::string source;  ///< the JSON path
  bool panoptic = false;
  std::unordered_map<std::int64_t, CocoImage> images;
  std::map<std::int64_t, CocoCategory> categories;
  std::vector<CocoAnnotation> annotations;  ///< in file order (filtered by keep_image)
  /// Problems with "images" entries (missing id or size), one message each.
  std::vector<std::string> image_errors;

  /// The id of the category called `name`; -1 when absent.
  std::int64_t category_id(const std::string& name) const;
};

struct LoadOptions {
  /// Annotations (and images) whose image id fails this test are dropped while parsing, so a
  /// shard holds only its part in memory. Empty = keep all.
  std::function<bool(std::int64_t image_id)> keep_image;
};

/// Reads a COCO instances or panoptic JSON (detected by "segments_info" in annotations).
/// Throws IoError when the file cannot be read, DataError with the byte offset for malformed
/// JSON, and DataError naming the key when "images", "annotations" or "categories" is missing
/// or not an array. Broken individual entries do not throw: see CocoAnnotation::error.
CocoDataset load_coco(const std::string& path, const LoadOptions& options = {});

/// Same as load_coco on JSON text in memory; `source` names it in errors.
CocoDataset parse_coco(const std::string& text, const std::string& source,
                       const LoadOptions& options = {});

/// Panoptic segment ids of a PNG decoded by OpenCV (BGR): CV_32S id = R + 256 G + 65536 B.
/// Throws DataError unless `png` is CV_8UC3.
cv::Mat panoptic_ids(const cv::Mat& png);

/// The binary mask (CV_8U 0/255, height x width of `image`) of an instance or polygon/RLE
/// annotation. For panoptic annotations pass the image's id map from panoptic_ids in
/// `panoptic`. Throws DataError (broken segmentation) for undecodable data or an RLE whose
/// size differs from the image's.
cv::Mat decode_mask(const CocoAnnotation& ann, const CocoImage& image,
                    const cv::Mat& panoptic = cv::Mat());

}  // namespace semat::data
