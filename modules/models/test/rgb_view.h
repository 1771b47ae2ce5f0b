// The RGB-input tests' picture: a BGR image's pixels in RGB order inside a larger buffer, seen
// through a view whose rows have gaps (as a numpy crop hands them over).
#pragma once

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace semat::test {

/// `bgr` converted to RGB and copied into `storage` (allocated here: `bgr` plus 1-3 px of border
/// on each side, filled with an arbitrary colour); returns the non-continuous view of the copy.
inline cv::Mat rgb_view_with_gaps(const cv::Mat& bgr, cv::Mat& storage) {
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  storage.create(bgr.rows + 3, bgr.cols + 5, CV_8UC3);
  storage.setTo(cv::Scalar(7, 70, 200));
  const cv::Mat view = storage(cv::Rect(2, 1, bgr.cols, bgr.rows));
  rgb.copyTo(view);
  return view;
}

}  // namespace semat::test
