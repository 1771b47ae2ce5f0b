// Box models over the torch-free predictor facades of semat_models. Adding a backbone: write
// its adapter here (or in a file of its own) and add one row to the table below.
#include "models.h"

#include <mutex>
#include <string>
#include <utility>

#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"

#ifdef SEMAT_ENGINE_WITH_MODELS
#include "semat/io/checkpoint.h"
#include "semat/models/precision.h"
#include "semat/models/sam2_predictor.h"
#include "semat/models/sam_predictor.h"
#include "semat/models/semat_predictor.h"
#include "semat/models/vitmatte_predictor.h"
#endif

namespace semat::engine::detail {

#ifdef SEMAT_ENGINE_WITH_MODELS
namespace {

// SAM's (or SAM 2's) single-mask box prediction. One predictor holds one embedding; the encoder
// is the expensive part, so calls on the same stored image skip it; another image replaces it
// (one model copy bounds the memory). `Predictor` is SamPredictor (SAM, HQ-SAM) or Sam2Predictor.
template <class Predictor>
class SamModel : public BoxModel {
 public:
  SamModel(const io::Checkpoint& ck, const typename Predictor::Options& o) : predictor_(ck, o) {}
  std::string name() const override { return "sam"; }
  std::string variant() const override { return predictor_.config().name; }
  std::string precision() const override { return predictor_.precision(); }

  std::vector<ModelOutput> predict(const cv::Mat& image, const std::string& key, const std::vector<Box>& boxes,
                                   ChannelOrder order) override {
    std::vector<models::SamMasks> masks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // (The embedding does not depend on the order; a stored image keeps its key and order.)
      if (key.empty() || key != current_key_) {
        current_key_.clear();
        Timer t;
        predictor_.set_image(image, order);
        SEMAT_LOG_DEBUG("sam", "image encoder: " << t.seconds() << " s on " << predictor_.device());
        current_key_ = key;
      }
      masks = predictor_.predict_boxes(boxes, /*multimask=*/false);
    }
    std::vector<ModelOutput> out(boxes.size());
    for (size_t i = 0; i < boxes.size(); ++i) out[i].mask = masks[i].mask(masks[i].best());
    return out;
  }

  void forget(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (key == current_key_) current_key_.clear();
  }

 private:
  std::mutex mu_;
  Predictor predictor_;
  std::string current_key_;  // stored image whose embedding predictor_ holds; empty for none
};

template <class Predictor>
std::shared_ptr<BoxModel> make_sam_model(const io::Checkpoint& ck, const EngineSpec& s) {
  typename Predictor::Options o;
  o.model_type = s.model_type;
  o.device = s.device;
  o.precision = s.precision;
  return std::make_shared<SamModel<Predictor>>(ck, o);
}

// --sam: SAM 2 checkpoints are told from SAM / HQ-SAM ones by their keys.
std::shared_ptr<BoxModel> load_sam(const EngineSpec& s) {
  SEMAT_CHECK(s.model_type == "auto" || s.model_type.rfind("semat-", 0) != 0, ConfigError,
              "--model-type " << s.model_type
                              << " with --sam: use auto, vit_b, vit_l, vit_h, hq_vit_b, hq_vit_l, "
                                 "hq_vit_h, tiny, hq_tiny, sam2_hiera_t, sam2_hiera_s, sam2_hiera_b+, "
                                 "sam2_hiera_l or sam2_tiny");
  const io::Checkpoint ck = io::load_checkpoint(s.sam);
  return models::is_sam2_checkpoint(ck) ? make_sam_model<models::Sam2Predictor>(ck, s)
                                        : make_sam_model<models::SamPredictor>(ck, s);
}

// SEMat (SAM, HQ-SAM and SAM 2 variants: the checkpoint says which): every box runs the whole
// encoder (the box enters it), so nothing per image is worth caching; one model copy serves all
// callers in turn (LibTorch already uses every core).
class SematModel : public BoxModel {
 public:
  explicit SematModel(const EngineSpec& s) : predictor_(s.semat, s.sam, options(s)) {
    SEMAT_LOG_DEBUG("semat", "loaded " << predictor_.config().name << " on " << predictor_.device());
  }
  std::string name() const override { return "semat"; }
  std::string variant() const override { return predictor_.config().name; }
  std::string precision() const override { return predictor_.precision(); }
  bool trimaps() const override { return true; }
  bool alphas() const override { return true; }

  std::vector<ModelOutput> predict(const cv::Mat& image, const std::string& /*key*/, const std::vector<Box>& boxes,
                                   ChannelOrder order) override {
    std::vector<models::SematMatte> mattes;
    {
      std::lock_guard<std::mutex> lock(mu_);
      mattes = predictor_.predict(image, boxes, order);
    }
    std::vector<ModelOutput> out(mattes.size());
    for (size_t i = 0; i < mattes.size(); ++i)
      out[i] = {mattes[i].sam_mask, mattes[i].trimap, mattes[i].alpha, cv::Mat()};
    return out;
  }

 private:
  static models::SematPredictor::Options options(const EngineSpec& s) {
    std::string names = "auto";
    for (const auto& n : models::semat_preset_names()) names += ", " + n;
    SEMAT_CHECK(s.model_type == "auto" || s.model_type.rfind("semat-", 0) == 0, ConfigError,
                "--model-type " << s.model_type << " with --semat: use " << names);
    models::SematPredictor::Options o;
    o.model_type = s.model_type;
    o.device = s.device;
    o.precision = s.precision;
    o.resize = models::parse_semat_resize(s.resize);
    o.batch_size = s.batch;
    return o;
  }

  std::mutex mu_;
  const models::SematPredictor predictor_;
};

// A trimap network (ViTMatte, DiffMatte) as the alpha stage: one model copy, callers in turn.
template <class Predictor>
class TrimapNet : public TrimapModel {
 public:
  TrimapNet(std::string name, const std::string& checkpoint, const typename Predictor::Options& options)
      : name_(std::move(name)), predictor_(checkpoint, options) {
    SEMAT_LOG_DEBUG(name_, "loaded " << predictor_.config().name << " on " << predictor_.device());
  }
  std::string name() const override { return name_; }
  cv::Mat predict(const cv::Mat& image, const cv::Mat& trimap, double* scale, ChannelOrder order) override {
    std::lock_guard<std::mutex> lock(mu_);
    models::VitMatteAlpha a = predictor_.predict(image, trimap, order);
    if (scale) *scale = a.scale;
    return a.alpha;
  }

 private:
  const std::string name_;
  std::mutex mu_;
  Predictor predictor_;
};

models::VitMattePredictor::Options vitmatte_options(const EngineSpec& s) {
  models::VitMattePredictor::Options o;
  o.device = s.device;
  o.max_pixels = s.vitmatte_max_pixels;
  return o;
}

models::DiffMattePredictor::Options diffmatte_options(const EngineSpec& s) {
  models::DiffMattePredictor::Options o;
  o.device = s.device;
  o.max_pixels = s.vitmatte_max_pixels;
  o.steps = s.diffmatte_steps;
  return o;
}

}  // namespace
#endif

void check_precision(const EngineSpec& s) {
#ifdef SEMAT_ENGINE_WITH_MODELS
  models::resolve_precision(s.precision, s.device.rfind("cuda", 0) == 0 ? "cuda" : "cpu");
#else
  SEMAT_CHECK(s.precision != "bf16" && s.precision != "bfloat16", ConfigError,
              "--precision " << s.precision << ": this build has no LibTorch; use --precision fp32 or auto");
#endif
}

bool trimap_models_available() {
#ifdef SEMAT_ENGINE_WITH_MODELS
  return true;
#else
  return false;
#endif
}

std::shared_ptr<TrimapModel> load_trimap_model(const EngineSpec& spec, const std::string& name) {
#ifdef SEMAT_ENGINE_WITH_MODELS
  if (name == "vitmatte")
    return std::make_shared<TrimapNet<models::VitMattePredictor>>(name, spec.vitmatte, vitmatte_options(spec));
  if (name == "diffmatte")
    return std::make_shared<TrimapNet<models::DiffMattePredictor>>(name, spec.diffmatte, diffmatte_options(spec));
#endif
  throw ConfigError("no trimap network '" + name + "' in this build");
}

const std::vector<ModelEntry>& model_table() {
  // Priority order for mask = auto: SEMat (when --semat is given) before SAM, since with
  // --semat the --sam flag only supplies base weights; the box-only learned prior last. `load` is null in builds without LibTorch.
#ifdef SEMAT_ENGINE_WITH_MODELS
  auto semat = [](const EngineSpec& s) -> std::shared_ptr<BoxModel> { return std::make_shared<SematModel>(s); };
  auto sam = [](const EngineSpec& s) -> std::shared_ptr<BoxModel> { return load_sam(s); };
#else
  std::shared_ptr<BoxModel> (*semat)(const EngineSpec&) = nullptr;
  std::shared_ptr<BoxModel> (*sam)(const EngineSpec&) = nullptr;
#endif
  static const std::vector<ModelEntry> table = {
      {"semat", true, true, &EngineSpec::semat, "--semat", semat},
      {"sam", false, false, &EngineSpec::sam, "--sam", sam},
      // The learned prior: a mask and a band trimap, no alpha (closed-form solves the band).
      {"isnet", true, false, &EngineSpec::isnet, "--isnet", isnet_loader()},
  };
  return table;
}

}  // namespace semat::engine::detail
