// semat segment IMAGE --sam CKPT [--model-type auto|vit_b|vit_l|vit_h|hq_vit_b|...] [--box X0,Y0,X1,Y1]
//                     [--point X,Y,LABEL ...] [--multimask] [--hq-token-only] [--out DIR]
//                     [--dump-tensors FILE]
// SAM (sam_vit_*.pth), HQ-SAM (sam_hq_vit_*.pth) or SAM 2 (sam2_hiera_*.pt, sam2.1_hiera_*.pt),
// told apart by the checkpoint's tensors.
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "semat/core/error.h"
#include "semat/core/geometry.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"
#include "semat/io/checkpoint.h"
#include "semat/io/files.h"
#include "semat/io/image_io.h"
#include "semat/models/sam2_predictor.h"
#include "semat/models/sam_predictor.h"

namespace fs = std::filesystem;

namespace semat::cli {
namespace {

struct SegmentArgs {
  std::string image, sam, model_type = "auto", device = "auto", precision = "auto", out = "out", dump;
  std::string box;
  std::vector<std::string> points;
  bool multimask = false;
  bool hq_token_only = false;
};

// "X,Y,LABEL" with LABEL 1 (foreground) or 0 (background).
void parse_point(const std::string& text, const std::string& what, models::SamPrompt& p) {
  double v[3];
  size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    const size_t comma = text.find(',', pos);
    SEMAT_CHECK((i == 2) == (comma == std::string::npos), InvalidArgument,
                what << " '" << text << "' must be X,Y,LABEL");
    const std::string f = text.substr(pos, i == 2 ? std::string::npos : comma - pos);
    char* end = nullptr;
    v[i] = std::strtod(f.c_str(), &end);
    SEMAT_CHECK(!f.empty() && end == f.c_str() + f.size(), InvalidArgument,
                what << " '" << text << "': '" << f << "' is not a number");
    pos = comma + 1;
  }
  SEMAT_CHECK(v[2] == 0 || v[2] == 1, InvalidArgument,
              what << " '" << text << "' has label " << v[2] << ": use 1 (foreground) or 0 (background)");
  p.points.emplace_back(static_cast<float>(v[0]), static_cast<float>(v[1]));
  p.labels.push_back(static_cast<int>(v[2]));
}

io::TensorData stack(const std::string& name, const std::vector<cv::Mat>& mats) {
  io::TensorData t;
  t.name = name;
  t.shape = {static_cast<int64_t>(mats.size()), mats[0].rows, mats[0].cols};
  for (const cv::Mat& m : mats) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(m.ptr<float>());
    t.bytes.insert(t.bytes.end(), p, p + m.total() * sizeof(float));
  }
  return t;
}

// The rest is the same for SAM / HQ-SAM (SamPredictor) and SAM 2 (Sam2Predictor).
template <class Predictor>
void segment_with(Predictor& sam, const SegmentArgs& a, const cv::Mat& image, const models::SamPrompt& prompt);

void run_segment(const SegmentArgs& a) {
  models::SamPrompt prompt;
  if (!a.box.empty()) prompt.box = parse_box(a.box, "--box");
  for (size_t i = 0; i < a.points.size(); ++i)
    parse_point(a.points[i], "--point " + std::to_string(i + 1), prompt);
  SEMAT_CHECK(prompt.box || !prompt.points.empty(), ConfigError,
              "give a --box X0,Y0,X1,Y1 and/or --point X,Y,LABEL prompts");
  Timer t;
  const cv::Mat image = io::read_color(a.image);
  SEMAT_LOG_DEBUG("segment", "image read in " << t.seconds() << " s");
  if (prompt.box) check_box_in_image(*prompt.box, image.cols, image.rows, "--box of '" + a.image + "'");
  io::ensure_writable_dir(a.out);

  t.reset();
  // Dropped as soon as the model holds its weights: the tensors' bytes would otherwise stay in
  // memory beside the model's own copy for the whole encoder pass.
  auto ck = std::make_unique<io::Checkpoint>(io::load_checkpoint(a.sam));
  SEMAT_LOG_DEBUG("segment", "checkpoint read in " << t.seconds() << " s");
  t.reset();
  if (models::is_sam2_checkpoint(*ck)) {
    SEMAT_CHECK(!a.hq_token_only, ConfigError,
                "--hq-token-only needs an HQ-SAM checkpoint (sam_hq_vit_*.pth); '" << a.sam << "' is SAM 2");
    models::Sam2Predictor::Options o;
    o.model_type = a.model_type;
    o.device = a.device;
    o.precision = a.precision;
    models::Sam2Predictor sam(*ck, o);
    ck.reset();
    return segment_with(sam, a, image, prompt);
  }
  models::SamPredictor::Options o;
  o.model_type = a.model_type;
  o.device = a.device;
  o.precision = a.precision;
  o.hq_token_only = a.hq_token_only;
  models::SamPredictor sam(*ck, o);
  ck.reset();
  SEMAT_LOG_DEBUG("segment", "model ready in " << t.seconds() << " s");
  SEMAT_CHECK(!a.hq_token_only || sam.config().hq, ConfigError,
              "--hq-token-only needs an HQ-SAM checkpoint (sam_hq_vit_*.pth); '" << a.sam
                                                                                 << "' is plain SAM");
  segment_with(sam, a, image, prompt);
}

template <class Predictor>
void segment_with(Predictor& sam, const SegmentArgs& a, const cv::Mat& image, const models::SamPrompt& prompt) {
  Timer t;
  sam.set_image(image);
  const double encode_s = t.seconds();
  t.reset();
  const models::SamMasks m = sam.predict(prompt, a.multimask);
  const double decode_s = t.seconds();
  t.reset();

  io::StagedFiles files;
  const auto out = [&](const std::string& n) { return (fs::path(a.out) / n).string(); };
  if (a.multimask) {
    for (size_t i = 0; i < m.logits.size(); ++i)
      files.add(out("mask_" + std::to_string(i) + ".png"), io::encode_png(m.mask(static_cast<int>(i))));
  } else {
    files.add(out("mask.png"), io::encode_png(m.mask(0)));
  }
  if (!a.dump.empty()) {
    std::vector<io::TensorData> tensors;
    for (auto& td : sam.image_tensors())
      if (td.name != "resized_image") tensors.push_back(std::move(td));
    tensors.push_back(stack("low_res_logits", m.low_res_logits));
    tensors.push_back(stack("mask_logits", m.logits));
    io::TensorData iou;
    iou.name = "iou_predictions";
    iou.shape = {static_cast<int64_t>(m.iou.size())};
    const auto* p = reinterpret_cast<const std::uint8_t*>(m.iou.data());
    iou.bytes.assign(p, p + m.iou.size() * sizeof(float));
    tensors.push_back(iou);
    files.add(a.dump, io::encode_safetensors(tensors, {{"producer", "semat segment"}}));
  }
  files.commit();
  SEMAT_LOG_DEBUG("segment", "outputs written in " << t.seconds() << " s");
  std::cout << "semat: " << sam.config().name << " on " << sam.device() << " in " << sam.precision()
            << ": encoder " << encode_s
            << " s, decoder " << decode_s << " s; best mask " << m.best() << " (IoU " << m.iou[m.best()]
            << ")\n";
  for (const auto& p : files.paths()) std::cout << "  " << p << '\n';
}

}  // namespace

void register_segment(CLI::App& app) {
  auto args = std::make_shared<SegmentArgs>();
  CLI::App* cmd = app.add_subcommand("segment", "Segment Anything masks from a box and/or points");
  cmd->add_option("image", args->image, "input image")->required();
  cmd->add_option("--sam", args->sam, "SAM, HQ-SAM or SAM 2 checkpoint (.pth, .pt or .safetensors)")->required();
  cmd->add_option("--model-type", args->model_type,
                  "auto (tells SAM, HQ-SAM and SAM 2 apart), vit_b, vit_l, vit_h, hq_vit_b, hq_vit_l, "
                  "hq_vit_h, tiny, hq_tiny; for SAM 2 sam2_hiera_t, sam2_hiera_s, sam2_hiera_b+, "
                  "sam2_hiera_l or sam2_tiny")
      ->capture_default_str();
  cmd->add_option("--device", args->device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--precision", args->precision,
                  "image encoder's arithmetic: bf16, fp32, or auto (bf16 where the CPU has AMX / "
                  "AVX512-BF16 or the GPU is Ampere or later); the mask decoder stays fp32")
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "float32", "bfloat16"}))
      ->capture_default_str();
  cmd->add_option("--box", args->box, "box X0,Y0,X1,Y1 in pixels");
  cmd->add_option("--point", args->points, "point X,Y,LABEL (1 foreground, 0 background), repeatable");
  cmd->add_flag("--multimask", args->multimask,
                "write the three candidate masks mask_0..2.png (HQ-SAM: one mask, from the SAM "
                "token with the best predicted IoU plus the HQ token)");
  cmd->add_flag("--hq-token-only", args->hq_token_only,
                "HQ-SAM: the HQ token's mask alone (the official predictor's hq_token_only), not "
                "SAM's + HQ's logits");
  cmd->add_option("--out", args->out, "output folder")->capture_default_str();
  cmd->add_option("--dump-tensors", args->dump,
                  "also write input_tensor, image_embeddings, low_res_logits, mask_logits and "
                  "iou_predictions to this .safetensors file");
  cmd->callback([args] { run_segment(*args); });
}

}  // namespace semat::cli
