#include "semat/serve/backend.h"

namespace semat::serve {
namespace {

class DefaultBackend : public MattingBackend {
 public:
  explicit DefaultBackend(const matting::MatteOptions& options) : options_(options) {}
  std::string name() const override { return "grabcut+closed-form"; }

  std::vector<matting::MatteResult> matte(const cv::Mat& image, const std::string& /*image_key*/,
                                          const std::vector<Box>& boxes) override {
    std::vector<matting::MatteResult> out;
    out.reserve(boxes.size());
    for (const Box& b : boxes) out.push_back(matting::matte_from_box(image, b, options_));
    return out;
  }

 private:
  const matting::MatteOptions options_;
};

}  // namespace

std::shared_ptr<MattingBackend> make_default_backend(const matting::MatteOptions& options) {
  return std::make_shared<DefaultBackend>(options);
}

}  // namespace semat::serve
