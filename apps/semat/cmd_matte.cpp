// semat matte IMAGE --box X0,Y0,X1,Y1 [--box ...] [--trimap T] [--out DIR]
//                   [--background COLOR|IMAGE] [--alpha-depth 8|16]
//                   [--sam SAM_CKPT] [--semat SEMAT_CKPT [--refine] [--resize cv2|pil|torch]]
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <opencv2/core.hpp>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "semat/core/error.h"
#include "semat/core/geometry.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"
#include "semat/io/files.h"
#include "semat/io/image_io.h"
#include "semat/matting/compose.h"
#include "semat/matting/pipeline.h"
#ifdef SEMAT_WITH_MODELS
#include "semat/matting/closed_form.h"
#include "semat/matting/foreground.h"
#include "semat/models/sam_predictor.h"
#include "semat/models/semat_predictor.h"
#endif

namespace fs = std::filesystem;

namespace semat::cli {
namespace {

struct MatteArgs {
  std::string image;
  std::vector<std::string> boxes;
  std::string trimap;
  std::string out = "out";
  std::string background = "#808080";
  int alpha_depth = 8;
  bool json = false;
  std::string sam;  ///< SAM checkpoint: its box mask replaces GrabCut
  std::string model_type = "auto";
  std::string device = "auto";
  std::string semat;  ///< SEMat checkpoint: the network's alpha replaces the classical pipeline
  bool refine = false;
  std::string resize = "cv2";
  int batch = 0;
};

matting::Background resolve_background(const std::string& spec) {
  matting::Background bg;
  if (auto c = matting::parse_color(spec)) {
    bg.bgr = *c;
    return bg;
  }
  std::error_code ec;
  SEMAT_CHECK(fs::is_regular_file(spec, ec), InvalidArgument,
              "--background '" << spec
                               << "' is neither a colour (#RRGGBB, R,G,B or a name such as white) "
                                  "nor an existing image file");
  bg.image = io::read_color(spec);
  return bg;
}

std::vector<cv::Mat> sam_box_masks(const MatteArgs& a, const cv::Mat& image,
                                   const std::vector<Box>& boxes) {
#ifdef SEMAT_WITH_MODELS
  models::SamPredictor::Options o;
  o.model_type = a.model_type;
  o.device = a.device;
  models::SamPredictor sam(a.sam, o);
  Timer t;
  sam.set_image(image);
  SEMAT_LOG_DEBUG("sam", "image encoder: " << t.seconds() << " s on " << sam.device());
  std::vector<cv::Mat> masks;
  for (const auto& m : sam.predict_boxes(boxes, /*multimask=*/false)) masks.push_back(m.mask(0));
  return masks;
#else
  (void)image, (void)boxes;
  throw ConfigError("--sam " + a.sam + ": this semat was built without LibTorch (install libtorch-dev and rebuild)");
#endif
}

#ifdef SEMAT_WITH_MODELS
// Closed-form matting against the full-resolution image inside the predicted unknown band,
// with SEMat's (upsampled) alpha as the data prior; outside the band SEMat's alpha is kept.
cv::Mat refine_in_band(const cv::Mat& image, const cv::Mat& alpha, const cv::Mat& trimap,
                       matting::SolveStats* stats) {
  const cv::Mat band = trimap == 128;
  if (cv::countNonZero(band) == 0 || cv::countNonZero(trimap == 255) == 0 ||
      cv::countNonZero(trimap == 0) == 0)
    return alpha;  // nothing to sharpen, or no known colours to sharpen against
  matting::ClosedFormParams params;
  params.prior_weight = 0.02;
  const cv::Mat solved = matting::closed_form_alpha(image, trimap, params, stats, alpha);
  cv::Mat out = alpha.clone();
  solved.copyTo(out, band);
  return out;
}
#endif

std::vector<matting::MatteResult> semat_mattes(const MatteArgs& a, const cv::Mat& image,
                                               const std::vector<Box>& boxes) {
#ifdef SEMAT_WITH_MODELS
  models::SematPredictor::Options o;
  SEMAT_CHECK(a.model_type == "auto" || a.model_type.rfind("semat-", 0) == 0, ConfigError,
              "--model-type " << a.model_type << " with --semat: use auto, semat-vit-b, "
                                                 "semat-vit-l, semat-vit-h or semat-tiny");
  o.model_type = a.model_type;
  o.device = a.device;
  o.resize = models::parse_semat_resize(a.resize);
  o.batch_size = a.batch;
  Timer load;
  const models::SematPredictor semat(a.semat, a.sam, o);
  SEMAT_LOG_DEBUG("semat", "loaded " << semat.config().name << " in " << load.seconds()
                                     << " s on " << semat.device());
  Timer t;
  const auto mattes = semat.predict(image, boxes);
  const double per_box = t.seconds() / static_cast<double>(boxes.size());
  std::vector<matting::MatteResult> results;
  for (const auto& m : mattes) {
    Timer rt;
    matting::MatteResult r;
    r.box = m.box;
    r.mask = m.sam_mask;
    r.trimap = m.trimap;
    r.alpha = a.refine ? refine_in_band(image, m.alpha, m.trimap, &r.solve) : m.alpha;
    r.foreground = matting::estimate_foreground(image, r.alpha).foreground;
    r.seconds = per_box + rt.seconds();
    results.push_back(std::move(r));
  }
  return results;
#else
  (void)image, (void)boxes;
  throw ConfigError("--semat " + a.semat +
                    ": this semat was built without LibTorch (install libtorch-dev and rebuild)");
#endif
}

void run_matte(const MatteArgs& a) {
  Timer total;
  SEMAT_CHECK(a.boxes.empty() || a.trimap.empty(), ConfigError,
              "--box and --trimap cannot be combined: a trimap already says where the subject is");
  SEMAT_CHECK(!a.boxes.empty() || !a.trimap.empty(), ConfigError,
              "give the subject with --box X0,Y0,X1,Y1 (repeatable) or with --trimap FILE");

  SEMAT_CHECK(a.semat.empty() || !a.boxes.empty(), ConfigError,
              "--semat needs at least one --box (SEMat is prompted by boxes, not trimaps)");
  SEMAT_CHECK(!a.refine || !a.semat.empty(), ConfigError,
              "--refine sharpens SEMat's alpha: give a SEMat checkpoint with --semat");
  SEMAT_CHECK(a.batch >= 0, ConfigError, "--batch must be 0 (auto) or positive, got " << a.batch);
  SEMAT_CHECK(a.sam.empty() || !a.boxes.empty(), ConfigError,
              "--sam needs at least one --box (with --trimap no mask is computed)");
  // Cheap checks first, so a typo never costs a solve.
  std::vector<Box> boxes;
  for (size_t i = 0; i < a.boxes.size(); ++i)
    boxes.push_back(parse_box(a.boxes[i], "--box " + std::to_string(i + 1)));
  const matting::Background background = resolve_background(a.background);
  const cv::Mat image = io::read_color(a.image);
  for (size_t i = 0; i < boxes.size(); ++i)
    check_box_in_image(boxes[i], image.cols, image.rows,
                       "--box " + std::to_string(i + 1) + " of '" + a.image + "'");
  cv::Mat trimap;
  if (!a.trimap.empty()) {
    const cv::Mat grey = io::read_gray8(a.trimap);
    SEMAT_CHECK(grey.size() == image.size(), DataError,
                "trimap '" << a.trimap << "' is " << grey.cols << "x" << grey.rows << " but image '"
                           << a.image << "' is " << image.cols << "x" << image.rows
                           << ": they must have the same size");
    trimap = matting::canonical_trimap(grey, a.trimap);
    matting::check_trimap_usable(trimap, a.trimap);
  }
  io::ensure_writable_dir(a.out);

  std::vector<matting::MatteResult> results;
  if (!trimap.empty()) {
    results.push_back(matting::matte_from_trimap(image, trimap));
  } else if (!a.semat.empty()) {
    // SEMat: boxes batched through the network; --sam then only supplies base SAM weights.
    results = semat_mattes(a, image, boxes);
  } else if (!a.sam.empty()) {
    // Matte-Anything style baseline: SAM's box masks (one encoder pass, boxes decoded together)
    // enter the same mask-to-matte pipeline in place of GrabCut.
    const std::vector<cv::Mat> masks = sam_box_masks(a, image, boxes);
    for (size_t i = 0; i < boxes.size(); ++i) {
      try {
        results.push_back(matting::matte_from_mask(image, masks[i], boxes[i]));
      } catch (const DataError& e) {
        throw DataError("--box " + std::to_string(i + 1) + ": " + e.what());
      }
    }
  } else {
    for (size_t i = 0; i < boxes.size(); ++i) {
      try {
        results.push_back(matting::matte_from_box(image, boxes[i]));
      } catch (const DataError& e) {
        throw DataError("--box " + std::to_string(i + 1) + ": " + e.what());
      } catch (const InvalidArgument& e) {
        throw InvalidArgument("--box " + std::to_string(i + 1) + ": " + e.what());
      }
    }
  }

  // All files of all instances appear together or not at all.
  io::StagedFiles files;
  nlohmann::json report = {{"image", a.image}, {"out", a.out}, {"instances", nlohmann::json::array()}};
  for (size_t i = 0; i < results.size(); ++i) {
    const matting::MatteResult& r = results[i];
    const std::string suffix = results.size() > 1 ? "_" + std::to_string(i) : "";
    auto path = [&](const char* stem) { return (fs::path(a.out) / (stem + suffix + ".png")).string(); };
    files.add(path("alpha"), io::encode_png(matting::quantize_alpha(r.alpha, a.alpha_depth)));
    files.add(path("cutout"), io::encode_png(matting::cutout(r.foreground, r.alpha)));
    files.add(path("composite"), io::encode_png(matting::composite(r.foreground, r.alpha, background)));
    files.add(path("trimap"), io::encode_png(r.trimap));
    files.add(path("overlay"), io::encode_png(matting::overlay(image, r.alpha, r.box)));
    nlohmann::json inst = {{"omega", r.omega},
                           {"unknown_pixels", r.solve.unknown},
                           {"cg_iterations", r.solve.iterations},
                           {"relative_residual", r.solve.relative_residual},
                           {"seconds", r.seconds}};
    if (r.box) inst["box"] = {r.box->x0, r.box->y0, r.box->x1, r.box->y1};
    report["instances"].push_back(inst);
  }
  files.commit();
  report["files"] = files.paths();
  report["seconds"] = total.seconds();
  if (a.json) {
    std::cout << report.dump() << '\n';
  } else {
    for (size_t i = 0; i < results.size(); ++i)
      SEMAT_LOG_INFO("", "instance " << i << ": omega " << results[i].omega << ", "
                                     << results[i].solve.unknown << " unknown px, "
                                     << results[i].seconds << " s");
    std::cout << "semat: wrote " << files.paths().size() << " files to " << a.out << "/ ("
              << total.seconds() << " s)\n";
    for (const std::string& p : files.paths()) std::cout << "  " << p << '\n';
  }
}

}  // namespace

void register_matte(CLI::App& app) {
  auto args = std::make_shared<MatteArgs>();
  CLI::App* cmd = app.add_subcommand(
      "matte", "Alpha matte, cut-out and composite of the subject in each box (no weights needed)");
  cmd->add_option("image", args->image, "input image (PNG, JPEG, WebP, BMP, TIFF)")->required();
  cmd->add_option("--box", args->boxes,
                  "subject box X0,Y0,X1,Y1 in pixels (repeatable; outputs get _0, _1... suffixes)")
      ->allow_extra_args(false);
  cmd->add_option("--trimap", args->trimap,
                  "trimap PNG (black background, grey unknown, white foreground): skips the "
                  "box-to-trimap steps");
  cmd->add_option("--out", args->out, "output folder")->capture_default_str();
  cmd->add_option("--background", args->background,
                  "composite background: colour (#RRGGBB, R,G,B, name) or image file")
      ->capture_default_str();
  cmd->add_option("--alpha-depth", args->alpha_depth, "bits per alpha.png sample")
      ->check(CLI::IsMember({8, 16}))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "print a JSON report on stdout");
  cmd->add_option("--sam", args->sam,
                  "SAM checkpoint (sam_vit_{b,l,h}_*.pth or .safetensors): its box mask replaces GrabCut");
  cmd->add_option("--model-type", args->model_type,
                  "SAM type (auto, vit_b, vit_l, vit_h); with --semat: auto or semat-vit-b/l/h")
      ->capture_default_str();
  cmd->add_option("--device", args->device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--semat", args->semat,
                  "SEMat checkpoint (official SEMat_SAM .pth or .safetensors): the network's alpha "
                  "replaces the classical pipeline; --sam then supplies SAM weights the checkpoint "
                  "lacks");
  cmd->add_flag("--refine", args->refine,
                "with --semat: closed-form pass against the full-resolution image inside the "
                "predicted trimap's unknown band");
  cmd->add_option("--resize", args->resize,
                  "with --semat: cv2 (official demo: reproduces the official numbers), pil, torch")
      ->check(CLI::IsMember({"cv2", "opencv", "pil", "torch"}))
      ->capture_default_str();
  cmd->add_option("--batch", args->batch,
                  "with --semat: boxes per encoder pass (0 = auto: 4 on CUDA, 1 on CPU)")
      ->capture_default_str();
  cmd->callback([args] { run_matte(*args); });
}

}  // namespace semat::cli
