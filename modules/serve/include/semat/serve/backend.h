// The matting engine behind the HTTP server, as an interface so that model-based backends (SAM
// masks today, SEMat later) plug in without the server knowing about LibTorch.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "semat/core/geometry.h"
#include "semat/matting/pipeline.h"

namespace semat::serve {

class MattingBackend {
 public:
  virtual ~MattingBackend() = default;

  /// Short name reported by /v1/info, e.g. "grabcut+closed-form".
  virtual std::string name() const = 0;

  /// One result per box, in order. `image`: CV_8UC3 BGR; boxes are already checked to lie inside
  /// it. `image_key` identifies a stored image across requests so per-image work (a SAM
  /// embedding) can be reused; it is empty for one-shot images, which must not be cached.
  /// Called concurrently from up to --workers threads. Throws semat::Error subclasses.
  virtual std::vector<matting::MatteResult> matte(const cv::Mat& image, const std::string& image_key,
                                                  const std::vector<Box>& boxes) = 0;

  /// The image behind `image_key` was deleted or expired: drop anything cached for it.
  virtual void forget(const std::string& image_key) {}
};

/// The weight-free pipeline: GrabCut mask from the box, then closed-form matting.
std::shared_ptr<MattingBackend> make_default_backend(const matting::MatteOptions& options = {});

}  // namespace semat::serve
