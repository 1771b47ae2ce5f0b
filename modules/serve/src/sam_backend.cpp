#include "semat/serve/model_backends.h"

#include <mutex>

#include "semat/models/sam_predictor.h"

namespace semat::serve {
namespace {

class SamBackend : public MattingBackend {
 public:
  SamBackend(const std::string& checkpoint, const ModelBackendOptions& o)
      : predictor_(checkpoint, predictor_options(o)) {}

  std::string name() const override { return "sam+closed-form"; }

  std::vector<matting::MatteResult> matte(const cv::Mat& image, const std::string& image_key,
                                          const std::vector<Box>& boxes) override {
    std::vector<models::SamMasks> masks;
    {
      // One predictor holds one embedding; the encoder is the expensive part, so requests on the
      // same stored image skip it. Other images replace it (one model copy bounds the memory).
      std::lock_guard<std::mutex> lock(mu_);
      if (image_key.empty() || image_key != current_key_) {
        current_key_.clear();
        predictor_.set_image(image);
        current_key_ = image_key;
      }
      masks = predictor_.predict_boxes(boxes, /*multimask=*/false);
    }
    std::vector<matting::MatteResult> out;
    for (std::size_t i = 0; i < boxes.size(); ++i)
      out.push_back(matting::matte_from_mask(image, masks[i].mask(masks[i].best()), boxes[i]));
    return out;
  }

  void forget(const std::string& image_key) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (image_key == current_key_) current_key_.clear();
  }

 private:
  static models::SamPredictor::Options predictor_options(const ModelBackendOptions& o) {
    models::SamPredictor::Options p;
    p.model_type = o.model_type;
    p.device = o.device;
    return p;
  }

  std::mutex mu_;
  models::SamPredictor predictor_;
  std::string current_key_;  // stored image whose embedding predictor_ holds; empty for none
};

}  // namespace

std::shared_ptr<MattingBackend> make_sam_backend(const std::string& checkpoint,
                                                 const ModelBackendOptions& options) {
  return std::make_shared<SamBackend>(checkpoint, options);
}

}  // namespace semat::serve
