// COCO segmentation masks: run-length encoding (RLE) and polygons, decoded bit-for-bit like the
// reference COCO API (pycocotools' maskApi.c), so masks match what Python users get.
//
// An RLE describes an h x w binary mask in column-major (Fortran) order: counts alternate runs of
// 0s and 1s, starting with 0s (a mask starting with a 1 has counts[0] == 0). The counts sum to
// h * w.
#pragma once

#include <cstdint>
#include <opencv2/core/mat.hpp>
#include <string>
#include <vector>

namespace semat::data {

struct Rle {
  int height = 0;
  int width = 0;
  std::vector<std::uint32_t> counts;
};

/// pycocotools' rleFrString: the compressed "counts" string of COCO JSON (6-bit LEB128-like
/// groups offset by 48, each count after the third stored as a delta to the count two before).
/// Throws DataError when the string ends inside a value, holds a character outside '0'..'o', or
/// decodes to a negative count.
Rle rle_from_string(const std::string& counts, int height, int width);

/// pycocotools' rleToString: the inverse of rle_from_string.
std::string rle_to_string(const Rle& rle);

/// Encodes a CV_8U mask (nonzero = 1).
Rle rle_from_mask(const cv::Mat& mask);

/// Decodes to a CV_8U mask of height x width with values 0/255. Throws DataError when the counts
/// do not sum to height * width (pycocotools would read past its buffer instead).
cv::Mat rle_to_mask(const Rle& rle);

/// pycocotools' rleFrPoly for one polygon [x0, y0, x1, y1, ...] in pixel coordinates (x right,
/// y down, pixel centres at integers): the boundary is traced at 5x resolution and sampled back,
/// which is why COCO masks are not what cv::fillPoly draws. Throws DataError for fewer than 3
/// points or an odd number of values.
Rle rle_from_polygon(const std::vector<double>& xy, int height, int width);

/// Union of several polygons (pycocotools merge), as a CV_8U 0/255 mask.
cv::Mat polygons_to_mask(const std::vector<std::vector<double>>& polygons, int height, int width);

}  // namespace semat::data
