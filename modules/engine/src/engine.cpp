#include "semat/engine/engine.h"

#include <sstream>
#include <utility>

#include <opencv2/core.hpp>

#include "models.h"
#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"
#include "semat/matting/coarse_mask.h"
#include "semat/matting/foreground.h"
#include "semat/matting/learned_prior.h"
#include "semat/matting/trimap.h"

namespace semat::engine {
namespace {

// Rethrows `e` as the same semat::Error subclass with `label: ` in front, so the exit code /
// HTTP status stays that of the cause and the line names the prompt.
[[noreturn]] void rethrow_labelled(const std::string& label, const Error& e) {
  const std::string m = label + ": " + e.what();
  if (dynamic_cast<const DataError*>(&e)) throw DataError(m);
  if (dynamic_cast<const InvalidArgument*>(&e)) throw InvalidArgument(m);
  if (dynamic_cast<const ConfigError*>(&e)) throw ConfigError(m);
  if (dynamic_cast<const IoError*>(&e)) throw IoError(m);
  if (dynamic_cast<const CheckpointError*>(&e)) throw CheckpointError(m);
  if (dynamic_cast<const StateError*>(&e)) throw StateError(m);
  throw Error(m);
}

}  // namespace

struct Engine::Impl {
  EngineSpec spec;
  Stages stages;
  std::shared_ptr<BoxModel> model;  // null when no stage uses a model
  std::shared_ptr<TrimapModel> trimap_net;  // the alpha stage's network (vitmatte, diffmatte), else null

  bool mask_from_model() const { return !stages.model.empty() && stages.mask == stages.model; }

  // Does prompt p need the model's output?
  bool needs_model(const Prompt& p) const {
    if (!model) return false;
    if (stages.alpha == "model" || stages.alpha == "refine") return true;
    if (!p.trimap.empty()) return false;
    return stages.trimap == "model" || (p.mask.empty() && mask_from_model());
  }

  void check_prompt(const cv::Mat& image, const Prompt& p) const {
    if (p.box) check_box_in_image(*p.box, image.cols, image.rows, "box");
    auto check_plane = [&](const cv::Mat& m, const char* what) {
      SEMAT_CHECK(m.empty() || (m.type() == CV_8UC1 && m.size() == image.size()), InvalidArgument,
                  what << " must be 8-bit single-channel " << image.cols << "x" << image.rows
                       << " (the image's size), got " << m.cols << "x" << m.rows);
    };
    check_plane(p.mask, "the mask");
    check_plane(p.trimap, "the trimap");
    if (!p.trimap.empty()) return;
    if (!p.mask.empty()) {
      SEMAT_CHECK(p.box || !needs_model(p), InvalidArgument,
                  "the " << stages.model << " model needs a box with the mask");
      return;
    }
    SEMAT_CHECK(stages.mask != "given", InvalidArgument,
                "this engine takes its masks from the caller (mask stage 'given'), and none was given");
    SEMAT_CHECK(p.box.has_value(), InvalidArgument, "give a box, a mask or a trimap");
  }

  // The trimap network's alpha with the known pixels forced (0 / 255 in the trimap -> 0 / 1: the
  // network leaves small errors there, and a caller's trimap is a statement about them). When
  // the network ran shrunk (a large image), the band is sharpened by closed-form matting against
  // the full-resolution image with the network's alpha as the prior.
  cv::Mat network_alpha(const cv::Mat& image, ChannelOrder order, const cv::Mat& trimap,
                        matting::SolveStats* stats) const {
    Timer t;
    double scale = 1.0;
    cv::Mat alpha = trimap_net->predict(image, trimap, &scale, order);
    SEMAT_LOG_DEBUG("engine", trimap_net->name() << ": " << t.seconds() << " s at scale " << scale);
    alpha.setTo(0.0f, trimap == 0);
    alpha.setTo(1.0f, trimap == 255);
    if (scale < 1.0) alpha = matting::refine_in_band(image, alpha, trimap, spec.classical, stats);
    return alpha;
  }

  // The classical stages below read the colour channels alike (no stage weighs one channel
  // differently), so they take the image in either order; only the networks are told `order`.
  matting::MatteResult matte_one(const cv::Mat& image, ChannelOrder order, const Prompt& p,
                                 const ModelOutput* out) const {
    const matting::MatteOptions& o = spec.classical;
    matting::MatteResult r;
    // Mask and trimap.
    cv::Mat mask = p.mask;
    cv::Mat trimap = p.trimap;
    double omega = 0;
    if (trimap.empty()) {
      if (mask.empty()) {
        if (stages.mask == "grabcut") {
          Timer t;
          mask = matting::grabcut_mask(image, *p.box, o.grabcut);
          SEMAT_LOG_DEBUG("engine", "GrabCut mask: " << cv::countNonZero(mask) << " px in "
                                                     << t.seconds() << " s");
        } else {
          mask = out->mask;
        }
      }
      if (stages.trimap == "model") {
        trimap = out->trimap;
      } else if (stages.alpha == "closed-form") {
        // The mask-to-matte pipeline of the matting module (rule trimap, closed-form with the
        // blurred mask as a weak prior, foreground colours).
        r = matting::matte_from_mask(image, mask, p.box, o);
        return r;
      } else {
        const matting::TrimapResult tr = matting::mask_to_trimap(mask, o.trimap);
        trimap = tr.trimap;
        omega = tr.omega;
      }
    }
    r.box = p.box;
    r.mask = mask;
    r.trimap = trimap;
    r.omega = omega;
    if (stages.alpha == "closed-form") {
      // The learned prior's probability is a better weak prior than the blurred mask.
      if (out && !out->hint.empty() && stages.trimap == "model" && p.box)
        matting::solve_prior_band(image, trimap, out->hint, *p.box, spec.prior_params, o, r);
      else
        matting::solve_in_trimap(image, trimap, mask, omega, o, r);
      return r;
    }
    if (trimap_net) {
      r.alpha = network_alpha(image, order, trimap, &r.solve);
      r.foreground = matting::estimate_foreground(image, r.alpha, o.foreground).foreground;
      return r;
    }
    r.alpha = stages.alpha == "refine" ? matting::refine_in_band(image, out->alpha, trimap, o, &r.solve)
                                       : out->alpha;
    r.foreground = matting::estimate_foreground(image, r.alpha, o.foreground).foreground;
    return r;
  }
};

Engine::Engine(const EngineSpec& spec) : Engine(spec, nullptr) {}

Engine::Engine(const EngineSpec& spec, std::shared_ptr<BoxModel> model) : impl_(std::make_unique<Impl>()) {
  impl_->spec = spec;
  impl_->stages = detail::resolve(spec, model.get());
  const std::string& name = impl_->stages.model;
  if (model) {
    impl_->model = std::move(model);
  } else if (!name.empty()) {
    for (const auto& m : detail::model_table())
      if (name == m.name) impl_->model = m.load(spec);  // resolve() checked m.load
  }
  if (!impl_->model) detail::check_precision(spec);
  // One line when the learned prior could run but its model is missing (a build without the
  // runner has nothing to install, and says nothing).
  if (!impl_->model && detail::isnet_loader() && spec.prior == "auto" && spec.mask == "auto" &&
      impl_->stages.mask == "grabcut")
    SEMAT_LOG_INFO("engine", "coarse masks by GrabCut: the learned prior (IS-Net) is not installed; "
                             "`make models` installs it");
  if (impl_->stages.alpha == "vitmatte" || impl_->stages.alpha == "diffmatte")
    impl_->trimap_net = detail::load_trimap_model(spec, impl_->stages.alpha);
  SEMAT_LOG_DEBUG("engine", "stages " << description());
}

Engine::~Engine() = default;

const EngineSpec& Engine::spec() const { return impl_->spec; }
const Stages& Engine::stages() const { return impl_->stages; }
std::string Engine::description() const { return describe(impl_->stages); }
bool Engine::has_model() const { return impl_->model != nullptr; }
std::string Engine::model_variant() const { return impl_->model ? impl_->model->variant() : std::string(); }
std::string Engine::precision() const { return impl_->model ? impl_->model->precision() : std::string("fp32"); }

std::string Engine::alpha_name() const {
  const Stages& s = impl_->stages;
  if (s.alpha == "model") return s.model;
  if (s.alpha == "refine") return s.model + "+refine";
  return s.alpha;
}

std::vector<matting::MatteResult> Engine::run(const cv::Mat& image, const std::vector<Prompt>& prompts,
                                              const std::string& image_key, ChannelOrder order) const {
  SEMAT_CHECK(!image.empty() && image.type() == CV_8UC3, InvalidArgument,
              "the engine takes an 8-bit 3-channel image (BGR or RGB)");
  const Impl& m = *impl_;
  auto labelled = [&](const Prompt& p, auto&& f) {
    try {
      return f();
    } catch (const Error& e) {
      if (p.label.empty()) throw;
      rethrow_labelled(p.label, e);
    }
  };
  for (const Prompt& p : prompts) labelled(p, [&] { m.check_prompt(image, p); });

  // The model sees every box of the call at once (one encoder pass for SAM, batches for SEMat).
  std::vector<Box> boxes;
  std::vector<int> slot(prompts.size(), -1);
  for (size_t i = 0; i < prompts.size(); ++i)
    if (m.needs_model(prompts[i])) {
      slot[i] = static_cast<int>(boxes.size());
      boxes.push_back(*prompts[i].box);
    }
  std::vector<ModelOutput> outputs;
  double model_seconds = 0;
  if (!boxes.empty()) {
    Timer t;
    outputs = m.model->predict(image, image_key, boxes, order);
    model_seconds = t.seconds();
    SEMAT_CHECK(outputs.size() == boxes.size(), StateError,
                "model " << m.model->name() << " returned " << outputs.size() << " results for "
                         << boxes.size() << " boxes");
  }

  std::vector<matting::MatteResult> results;
  results.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Prompt& p = prompts[i];
    Timer t;
    const ModelOutput* out = slot[i] >= 0 ? &outputs[static_cast<size_t>(slot[i])] : nullptr;
    matting::MatteResult r = labelled(p, [&] { return m.matte_one(image, order, p, out); });
    r.seconds = t.seconds() + (out ? model_seconds / static_cast<double>(boxes.size()) : 0.0);
    results.push_back(std::move(r));
  }
  return results;
}

void Engine::forget(const std::string& image_key) const {
  if (impl_->model) impl_->model->forget(image_key);
}

}  // namespace semat::engine
