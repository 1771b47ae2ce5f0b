// The learned prior as a box model: ProbabilityModel -> BoxModel adapter, and where the IS-Net
// runner and the installed model are found.
#include "semat/engine/prior_model.h"

#include <mutex>
#include <utility>

#include <opencv2/core.hpp>  // copyMakeBorder (without LibTorch nothing else brings it in)

#include "models.h"
#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"
#include "semat/io/model_store.h"

#ifdef SEMAT_ENGINE_WITH_ISNET
#include "semat/onnx/isnet.h"
#endif

namespace semat::engine {
namespace {

class PriorBoxModel : public BoxModel {
 public:
  PriorBoxModel(std::shared_ptr<ProbabilityModel> m, const matting::LearnedPriorParams& p)
      : model_(std::move(m)), params_(p) {
    SEMAT_CHECK(model_ != nullptr, InvalidArgument, "make_prior_box_model: no probability model");
  }
  std::string name() const override { return model_->name(); }
  std::string precision() const override { return model_->precision(); }
  bool trimaps() const override { return true; }

  std::vector<ModelOutput> predict(const cv::Mat& image, const std::string& /*key*/, const std::vector<Box>& boxes,
                                   ChannelOrder order) override {
    std::vector<ModelOutput> out(boxes.size());
    for (size_t i = 0; i < boxes.size(); ++i) {
      const cv::Rect crop = matting::prior_crop(image.size(), boxes[i], params_.margin_fraction);
      // Where the image ends before the margin does (a subject cut by the frame, or a box around
      // the whole picture), the network sees the crop mirrored out to clipped_margin_fraction:
      // IS-Net was trained on whole objects with surroundings, and on a close-up that fills its
      // input it often finds nothing salient at all (issue #13's dev crops).
      const cv::Vec4i pad = matting::prior_padding(image.size(), boxes[i], crop, params_.clipped_margin_fraction);
      cv::Mat input = image(crop);
      if (pad != cv::Vec4i()) cv::copyMakeBorder(input, input, pad[1], pad[3], pad[0], pad[2], cv::BORDER_REFLECT101);
      Timer t;
      cv::Mat p = model_->probability(input, order);
      SEMAT_CHECK(p.type() == CV_32F && p.size() == input.size(), StateError,
                  "model " << model_->name() << " returned a " << p.cols << "x" << p.rows
                           << " map of type " << p.type() << " for a " << input.cols << "x" << input.rows
                           << " input (CV_32F of the input's size expected)");
      p = p(cv::Rect(pad[0], pad[1], crop.width, crop.height));
      SEMAT_CHECK(p.type() == CV_32F && p.size() == crop.size(), StateError,
                  "model " << model_->name() << " returned a " << p.cols << "x" << p.rows
                           << " map of type " << p.type() << " for a " << crop.width << "x" << crop.height
                           << " crop (CV_32F of the crop's size expected)");
      SEMAT_LOG_DEBUG("prior", model_->name() << " on " << crop.width << "x" << crop.height << ": "
                                              << t.seconds() << " s");
      const matting::FusedMask f = matting::fuse_prior(image, boxes[i], p, crop, params_);
      out[i].mask = f.mask;
      out[i].trimap = matting::prior_trimap(image, f, boxes[i], params_, order);
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

// The installed IS-Net (`make models`; semat/io/model_store.h checks the folder rule and the
// pinned size), or empty.
std::string installed_isnet() {
#ifdef SEMAT_ENGINE_WITH_ISNET
  try {
    return io::find_model("isnet-medium").value_or("");
  } catch (const ConfigError& e) {  // no HOME, no SEMAT_MODELS: nothing can be installed
    SEMAT_LOG_DEBUG("prior", e.what());
    return {};
  }
#else
  return {};
#endif
}

#ifdef SEMAT_ENGINE_WITH_ISNET
namespace {

// IS-Net through the ONNX importer (semat/onnx/isnet.h). One network copy serves every caller
// in turn (LibTorch already uses every core).
class IsnetProbability : public ProbabilityModel {
 public:
  IsnetProbability(const std::string& path, const std::string& device, const std::string& precision)
      : net_(path, device, precision) {
    SEMAT_LOG_DEBUG("prior", "IS-Net " << path << " on " << net_.device() << " in " << net_.precision());
  }
  std::string name() const override { return "isnet"; }
  std::string precision() const override { return net_.precision(); }
  cv::Mat probability(const cv::Mat& crop, ChannelOrder order) override {
    std::lock_guard<std::mutex> lock(mu_);
    return net_.probability(crop, order);
  }

 private:
  std::mutex mu_;
  const onnx::IsNet net_;
};

std::shared_ptr<BoxModel> load_isnet(const EngineSpec& spec) {
  const std::string path = spec.isnet.empty() ? installed_isnet() : spec.isnet;
  SEMAT_CHECK(!path.empty(), ConfigError,
              "--prior isnet needs the IS-Net model, which is not installed: run `make models`");
  return make_prior_box_model(std::make_shared<IsnetProbability>(path, spec.device, spec.precision), spec.prior_params);
}

}  // namespace

ModelLoader isnet_loader() { return &load_isnet; }
#else
// A build without the ONNX importer (no LibTorch): the "isnet" row has no loader, like SAM's,
// so --prior auto falls back to GrabCut and --prior isnet is refused with the reason.
ModelLoader isnet_loader() { return nullptr; }
#endif

}  // namespace detail
}  // namespace semat::engine
