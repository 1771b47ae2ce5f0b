#include <mutex>

#include "semat/matting/foreground.h"
#include "semat/models/semat_predictor.h"
#include "semat/serve/model_backends.h"

namespace semat::serve {
namespace {

class SematBackend : public MattingBackend {
 public:
  SematBackend(const std::string& checkpoint, const std::string& sam_checkpoint, const ModelBackendOptions& o)
      : predictor_(checkpoint, sam_checkpoint, predictor_options(o)) {}

  std::string name() const override { return "semat"; }

  std::vector<matting::MatteResult> matte(const cv::Mat& image, const std::string& /*image_key*/,
                                          const std::vector<Box>& boxes) override {
    std::vector<models::SematMatte> mattes;
    {
      // Each box runs the whole encoder, so nothing per image is worth caching; one model copy
      // serves all workers in turn (LibTorch already uses every core per call).
      std::lock_guard<std::mutex> lock(mu_);
      mattes = predictor_.predict(image, boxes);
    }
    std::vector<matting::MatteResult> out;
    for (auto& m : mattes) {
      matting::MatteResult r;
      r.box = m.box;
      r.mask = m.sam_mask;
      r.trimap = m.trimap;
      r.alpha = m.alpha;
      r.foreground = matting::estimate_foreground(image, m.alpha).foreground;
      out.push_back(std::move(r));
    }
    return out;
  }

 private:
  static models::SematPredictor::Options predictor_options(const ModelBackendOptions& o) {
    models::SematPredictor::Options p;
    p.model_type = o.model_type;
    p.device = o.device;
    return p;
  }

  std::mutex mu_;
  models::SematPredictor predictor_;
};

}  // namespace

std::shared_ptr<MattingBackend> make_semat_backend(const std::string& checkpoint,
                                                   const std::string& sam_checkpoint,
                                                   const ModelBackendOptions& options) {
  return std::make_shared<SematBackend>(checkpoint, sam_checkpoint, options);
}

}  // namespace semat::serve
