// semat matte IMAGE --box X0,Y0,X1,Y1 [--box ...] [--trimap T] [--out DIR]
//                   [--background COLOR|IMAGE] [--alpha-depth 8|16] [engine flags: --sam,
//                   --semat, --refine, --mask, --trimap-from, --alpha, --model-type, ...]
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
#include "engine_flags.h"
#include "semat/engine/engine.h"
#include "semat/matting/compose.h"
#include "semat/matting/trimap.h"

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
  engine::EngineSpec engine;
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

void run_matte(const MatteArgs& a) {
  Timer total;
  SEMAT_CHECK(a.boxes.empty() || a.trimap.empty(), ConfigError,
              "--box and --trimap cannot be combined: a trimap already says where the subject is");
  SEMAT_CHECK(!a.boxes.empty() || !a.trimap.empty(), ConfigError,
              "give the subject with --box X0,Y0,X1,Y1 (repeatable) or with --trimap FILE");

  // Cheap checks first, so a typo never costs a model load or a solve.
  const engine::Stages stages = engine::resolve(a.engine);
  SEMAT_CHECK(a.trimap.empty() || stages.model.empty(), ConfigError,
              (a.engine.semat.empty() ? "--sam" : "--semat")
                  << " needs at least one --box (with --trimap no model is run)");
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

  const engine::Engine engine(a.engine);
  std::vector<engine::Prompt> prompts;
  if (!trimap.empty()) {
    engine::Prompt p;
    p.trimap = trimap;
    prompts.push_back(p);
  }
  for (size_t i = 0; i < boxes.size(); ++i)
    prompts.push_back(engine::Prompt::from_box(boxes[i], "--box " + std::to_string(i + 1)));
  const std::vector<matting::MatteResult> results = engine.run(image, prompts);

  // All files of all instances appear together or not at all.
  io::StagedFiles files;
  nlohmann::json report = {{"image", a.image},
                           {"out", a.out},
                           {"engine", engine.description()},
                           {"model", engine.model_variant()},
                           {"precision", engine.precision()},
                           {"instances", nlohmann::json::array()}};
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
  add_engine_flags(cmd, args->engine);
  cmd->callback([args] { run_matte(*args); });
}

}  // namespace semat::cli
