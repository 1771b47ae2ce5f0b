// Where the dataset builder gets its alpha mattes from (COCO-Matting, step 2 "mask-to-matte"):
// the trimap is always made by matting::mask_to_trimap; an AlphaSource turns image + trimap into
// alpha. Closed-form matting needs no weights; the paper uses a trained matting model, which
// plugs in as another AlphaSource (the SEMat facade in modules/models) without touching the
// builder.
#pragma once

#include <memory>
#include <opencv2/core/mat.hpp>
#include <string>

#include "semat/core/geometry.h"
#include "semat/matting/closed_form.h"

namespace semat::data {

/// One instance to matte. Sizes: all images have the image's size.
struct AlphaRequest {
  cv::Mat image;   ///< CV_8UC3 BGR
  cv::Mat trimap;  ///< CV_8U 0/128/255 from matting::mask_to_trimap
  cv::Mat mask;    ///< CV_8U fused binary mask (nonzero = person); a backend may use it as a prior
  Box box;         ///< the person's box (XYXY pixels), the prompt of box-driven models like SEMat
  double omega = 0;  ///< width of the trimap's unknown band, pixels
};

class AlphaSource {
 public:
  virtual ~AlphaSource() = default;

  /// Recorded as "backend" in index.jsonl, e.g. "closed-form".
  virtual std::string name() const = 0;

  /// Returns CV_32F alpha in [0, 1] of the image's size. Throws semat::Error on failure (the
  /// builder counts it as "matting_failed" and goes on). Never called concurrently on one
  /// object: the builder makes one source per worker with the factory it is given.
  virtual cv::Mat alpha(const AlphaRequest& request) = 0;
};

struct ClosedFormSourceOptions {
  matting::ClosedFormParams solver;
  /// Weight and blur (sigma as a fraction of the band width) of the fused mask used as a weak
  /// prior inside the unknown band; the defaults are those of `semat matte`
  /// (matting::MatteOptions), so both commands produce the same matte from the same mask.
  double mask_prior_weight;
  double mask_prior_sigma;
  /// Pixels of context kept around the non-background part of the trimap. Closed-form only
  /// looks at 3x3 windows, so solving on the crop gives the same alpha much faster for the small
  /// people that make up most of COCO.
  int crop_margin = 8;

  ClosedFormSourceOptions();
};

/// Closed-form matting (matting::closed_form_alpha) on the trimap's crop.
std::unique_ptr<AlphaSource> make_closed_form_source(const ClosedFormSourceOptions& options = {});

}  // namespace semat::data
