// The learned prior as a box model: ProbabilityModel -> BoxModel adapter, and where the IS-Net
// runner and the installed model are found.
#include "semat/engine/prior_model.h"

#include <utility>

#include "models.h"
#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"

namespace semat::engine {
namespace {

class PriorBoxModel : public BoxModel {
 public:
  PriorBoxModel(std::shared_ptr<ProbabilityModel> m, const matting::LearnedPriorParams& p)
      : model_(std::move(m)), params_(p) {
    SEMAT_CHECK(model_ != nullptr, InvalidArgument, "make_prior_box_model: no probability model");
  }
  std::string name() const override { return model_->name(); }
  bool trimaps() const override { return true; }

  std::vector<ModelOutput> predict(const cv::Mat& image, const std::string& /*key*/,
                                   const std::vector<Box>& boxes) override {
    std::vector<ModelOutput> out(boxes.size());
    for (size_t i = 0; i < boxes.size(); ++i) {
      const cv::Rect crop = matting::prior_crop(image.size(), boxes[i], params_.margin_fraction);
      Timer t;
      const cv::Mat p = model_->probability(image(crop));
      SEMAT_CHECK(p.type() == CV_32F && p.size() == crop.size(), StateError,
                  "model " << model_->name() << " returned a " << p.cols << "x" << p.rows
                           << " map of type " << p.type() << " for a " << crop.width << "x" << crop.height
                           << " crop (CV_32F of the crop's size expected)");
      SEMAT_LOG_DEBUG("prior", model_->name() << " on " << crop.width << "x" << crop.height << ": "
                                              << t.seconds() << " s");
      const matting::FusedMask f = matting::fuse_prior(image, boxes[i], p, crop, params_);
      out[i].mask = f.mask;
      out[i].trimap = matting::prior_trimap(image, f.probability, f.mask, boxes[i], params_);
      out[i].hint = matting::prior_hint(f.probability, f.mask);
    }
    return out;
  }

 private:
  std::shared_ptr<ProbabilityModel> model_;
  matting::LearnedPriorParams params_;
};

}  // namespace

std::shared_ptr<BoxModel> make_prior_box_model(std::shared_ptr<ProbabilityModel> model,
                                               const matting::LearnedPriorParams& params) {
  return std::make_shared<PriorBoxModel>(std::move(model), params);
}

namespace detail {

// THE IS-NET RUNNER PLUGS IN HERE. With the ONNX module (modules/onnx) linked, define
// SEMAT_ENGINE_WITH_ISNET in modules/engine/CMakeLists.txt and
//  - installed_isnet(): ask the model store (semat/io/model_store.h) for the verified
//    installed IS-Net file, "" when absent;
//  - isnet_loader(): return a function that builds a ProbabilityModel around the runner for
//    spec.isnet (or installed_isnet() when empty) on spec.device, wrapped by
//    make_prior_box_model(model, spec.prior_params).
// Without them the "isnet" row of the model table has no loader, like SAM in a build without
// LibTorch: --prior auto falls back to GrabCut and --prior isnet is refused with the reason.
std::string installed_isnet() { return {}; }

ModelLoader isnet_loader() { return nullptr; }

}  // namespace detail
}  // namespace semat::engine
