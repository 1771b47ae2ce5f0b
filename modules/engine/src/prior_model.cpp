// The learned prior as a box model: ProbabilityModel -> BoxModel adapter, and where the IS-Net
// runner and the installed model are found.
#include "semat/engine/prior_model.h"

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <utility>

#include "models.h"
#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"

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

// The IS-Net model file semat fetches (scripts/fetch-models.sh, `make models`): its name in the
// models folder and its pinned size. The folder follows the fetch script's rule: $SEMAT_MODELS,
// else $XDG_DATA_HOME/semat/models, else $HOME/.local/share/semat/models.
// TODO(model store): when semat/io/model_store.h lands, replace this with
// io::find_model("isnet-medium") so the size and hash checks live in one place.
constexpr const char* kIsnetFile = "isnet_medium_fp16.onnx";
constexpr std::uintmax_t kIsnetSize = 88188479;

std::string installed_isnet() {
#ifdef SEMAT_ENGINE_WITH_ISNET
  namespace fs = std::filesystem;
  fs::path dir;
  const char* models = std::getenv("SEMAT_MODELS");
  const char* xdg = std::getenv("XDG_DATA_HOME");
  const char* home = std::getenv("HOME");
  if (models && *models) dir = models;
  else if (xdg && *xdg) dir = fs::path(xdg) / "semat" / "models";
  else if (home && *home) dir = fs::path(home) / ".local" / "share" / "semat" / "models";
  else return {};
  const fs::path file = dir / kIsnetFile;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return {};
  const auto size = fs::file_size(file, ec);
  if (ec || size != kIsnetSize) {
    SEMAT_LOG_WARN("prior", file.string() << " is " << size << " bytes, not IS-Net's " << kIsnetSize
                                          << ": ignored (run `make models` to fetch it again)");
    return {};
  }
  return file.string();
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
  IsnetProbability(const std::string& path, const std::string& device) : net_(path, device) {
    SEMAT_LOG_DEBUG("prior", "IS-Net " << path << " on " << net_.device());
  }
  std::string name() const override { return "isnet"; }
  cv::Mat probability(const cv::Mat& crop) override {
    std::lock_guard<std::mutex> lock(mu_);
    return net_.probability(crop);
  }

 private:
  std::mutex mu_;
  const onnx::IsNet net_;
};

std::shared_ptr<BoxModel> load_isnet(const EngineSpec& spec) {
  const std::string path = spec.isnet.empty() ? installed_isnet() : spec.isnet;
  SEMAT_CHECK(!path.empty(), ConfigError,
              "--prior isnet needs the IS-Net model, which is not installed: run `make models`");
  return make_prior_box_model(std::make_shared<IsnetProbability>(path, spec.device), spec.prior_params);
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
