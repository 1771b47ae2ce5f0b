// Quality of the default pipeline on the development data: SAD (sum |a - gt| / 1000) and MSE over
// the given trimap's unknown region, for closed-form with the given trimaps and for the box-only
// pipeline (box = tight box of gt > 0). Usage: semat_quality [--prior-weights w1,w2,...]
//
// Box-only coarse-mask stages through the matting engine (issue #13's comparison):
//   semat_quality --prior grabcut,isnet [--isnet FILE] [--only NAME] [--dump DIR] [--side-evidence P]
//                 [--maps DIR]   (IS-Net's maps cached there: computed once, read back later)
// prints, per image and as means, SAD over the whole image and over trimap1's unknown region for
// each --prior, and checks the targets against grabcut: mean whole-image SAD at most half of
// GrabCut's, no image more than 25% worse. "oracle" is a stand-in network whose map is the ground
// truth blurred (sigma 2 px) and cut to the crop: an upper bound for the fusion/trimap/closed-form
// half, not a result of any network. "isnet_bf16" (needs --maps) is IS-Net run in bfloat16, its
// maps cached under the name bf16_<image>.png; with both isnet and isnet_bf16 in --prior, a second
// table gives per image the largest |p_bf16 - p_fp32| over the crop, the share of crop pixels
// whose p >= 0.5 flips, and the SAD of the final mattes both ways (issue #17's accuracy check).
#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "dev_data.h"
#include "semat/core/error.h"
#include "semat/engine/engine.h"
#include "semat/engine/prior_model.h"
#include "semat/io/image_io.h"
#include "semat/io/model_store.h"
#include "semat/onnx/isnet.h"
#include "semat/matting/pipeline.h"
#include "semat/matting/trimap.h"

using namespace semat;

namespace {

struct Score {
  double sad = 0, mse = 0, sad_all = 0, seconds = 0;
};

Score score(const cv::Mat& alpha, const cv::Mat& gt, const cv::Mat& unknown, double seconds) {
  cv::Mat d;
  cv::absdiff(alpha, gt, d);
  d.convertTo(d, CV_64F);
  Score s;
  cv::Mat du = cv::Mat::zeros(d.size(), CV_64F);
  d.copyTo(du, unknown);
  s.sad = cv::sum(du)[0] / 1000.0;
  s.mse = cv::mean(d.mul(d), unknown)[0];
  s.sad_all = cv::sum(d)[0] / 1000.0;
  s.seconds = seconds;
  return s;
}

// The stand-in network of "oracle": the ground truth, blurred, for one crop.
class OracleModel : public engine::ProbabilityModel {
 public:
  OracleModel(const cv::Mat& gt, const cv::Rect& crop, const cv::Vec4i& pad) {
    cv::Mat blurred;
    cv::GaussianBlur(gt, blurred, {0, 0}, 2.0);
    cv::copyMakeBorder(blurred(crop), map_, pad[1], pad[3], pad[0], pad[2], cv::BORDER_REFLECT101);
  }
  std::string name() const override { return "isnet"; }
  cv::Mat probability(const cv::Mat& input, ChannelOrder) override {
    SEMAT_CHECK(input.size() == map_.size(), StateError, "oracle asked about an unexpected crop");
    return map_.clone();
  }

 private:
  cv::Mat map_;
};

// IS-Net with its maps cached on disk (16-bit PNG per image, the crop's size): the network runs
// once per image; later runs of the table (tuning the fusion) read its maps back.
class CachedIsnet : public engine::ProbabilityModel {
 public:
  CachedIsnet(std::string path, std::string file, std::string precision = "fp32")
      : path_(std::move(path)), file_(std::move(file)), precision_(std::move(precision)) {}
  std::string name() const override { return "isnet"; }
  cv::Mat probability(const cv::Mat& crop, ChannelOrder order) override {
    cv::Mat p16 = cv::imread(file_, cv::IMREAD_UNCHANGED), p;
    if (!p16.empty() && p16.size() == crop.size()) {
      p16.convertTo(p, CV_32F, 1.0 / 65535);
      return p;
    }
    auto& net = nets_[precision_];
    if (!net) net = std::make_unique<onnx::IsNet>(path_, "cpu", precision_);
    p = net->probability(crop, order);
    p.convertTo(p16, CV_16U, 65535.0);
    cv::imwrite(file_, p16);
    return p;
  }
  void set_file(std::string file) { file_ = std::move(file); }

 private:
  std::string path_, file_, precision_;
  static inline std::map<std::string, std::unique_ptr<onnx::IsNet>> nets_;  // one graph per precision
};

std::string map_file(const std::string& maps, const bench::DevSample& s, bool bf16) {
  return maps + "/" + (bf16 ? "bf16_" : "") + s.set + "_" + s.name.substr(0, s.name.size() - 4) + ".png";
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string w; std::getline(ss, w, ',');) out.push_back(w);
  return out;
}

int compare_priors(const std::vector<std::string>& priors, const std::string& isnet, const std::string& only,
                   const std::string& dump, double side_evidence, const std::string& maps) {
  const auto samples = bench::dev_samples();
  if (samples.empty()) {
    std::fprintf(stderr, "no development data under %s (set SEMAT_DEV_DATA)\n", bench::dev_data_root().c_str());
    return 1;
  }
  std::printf("%-13s %-8s %-8s %10s %10s %7s\n", "set", "image", "prior", "SAD(all)", "SAD(unk1)", "sec");
  struct Row {
    double all = -1, unk = -1;
  };
  std::vector<std::vector<Row>> table(samples.size(), std::vector<Row>(priors.size()));
  std::vector<std::unique_ptr<engine::Engine>> engines(priors.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    if (!only.empty() && s.name != only) continue;
    const cv::Mat image = io::read_color(s.image);
    const cv::Mat gt = io::read_unit_gray(s.gt);
    const cv::Mat tri1 = matting::canonical_trimap(io::read_gray8(s.trimaps[0]), s.trimaps[0]);
    const cv::Rect tight = cv::boundingRect(gt > 0);
    const Box box{double(tight.x), double(tight.y), double(tight.x + tight.width), double(tight.y + tight.height)};
    for (size_t j = 0; j < priors.size(); ++j) {
      engine::EngineSpec spec;
      if (side_evidence >= 0) spec.prior_params.side_evidence = side_evidence;
      if (const char* c = std::getenv("SEMAT_QUALITY_CLIPPED_MARGIN")) spec.prior_params.clipped_margin_fraction = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_SIDE_REACH")) spec.prior_params.side_reach_fraction = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_PRIOR_WEIGHT")) spec.prior_params.prior_weight = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_EDGE_REACH")) spec.prior_params.edge_reach_fraction = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_EDGE_BAND")) spec.prior_params.edge_band_fraction = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_EDGE_THRESHOLD")) spec.prior_params.edge_threshold = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_UNSURE_REACH")) spec.prior_params.unsure_reach_fraction = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_AGREE")) spec.prior_params.agree_iou = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_SIDE_BONUS")) spec.prior_params.side_bonus = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_SEED_BACKGROUND")) spec.prior_params.seed_background = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_FAINT")) spec.prior_params.faint = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_FILL")) spec.prior_params.fill_fraction = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_ROUGH_BAND")) spec.prior_params.rough_band_fraction = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_REGROW_PASSES")) spec.prior_params.regrow_passes = std::atoi(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_REGROW_GAP")) spec.prior_params.regrow_gap = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_DISAGREE")) spec.prior_params.disagree_reach_fraction = std::atof(c);
      if (const char* c = std::getenv("SEMAT_QUALITY_REGROW")) spec.prior_params.regrow_fraction = std::atof(c);
      try {
        std::unique_ptr<engine::Engine> eng;
        if ((priors[j] == "isnet" || priors[j] == "isnet_bf16") && !maps.empty()) {
          const bool bf16 = priors[j] == "isnet_bf16";
          const std::string path = isnet.empty() ? io::find_model("isnet-medium").value_or("") : isnet;
          eng = std::make_unique<engine::Engine>(
              spec, engine::make_prior_box_model(
                        std::make_shared<CachedIsnet>(path, map_file(maps, s, bf16), bf16 ? "bf16" : "fp32"),
                        spec.prior_params));
        } else if (priors[j] == "isnet_bf16") {
          throw InvalidArgument("isnet_bf16 needs --maps DIR");
        } else if (priors[j] == "oracle") {
          const cv::Rect crop = matting::prior_crop(image.size(), box, spec.prior_params.margin_fraction);
          const cv::Vec4i pad =
              matting::prior_padding(image.size(), box, crop, spec.prior_params.clipped_margin_fraction);
          eng = std::make_unique<engine::Engine>(
              spec, engine::make_prior_box_model(std::make_shared<OracleModel>(gt, crop, pad), spec.prior_params));
        } else if (!engines[j]) {  // loaded once (IS-Net's graph takes a while to import)
          spec.prior = priors[j];
          if (priors[j] == "isnet") spec.isnet = isnet;
          engines[j] = std::make_unique<engine::Engine>(spec);
        }
        const engine::Engine& e = eng ? *eng : *engines[j];
        const auto r = e.run(image, {engine::Prompt::from_box(box)});
        const Score sc = score(r[0].alpha, gt, tri1 == matting::kUnknown, r[0].seconds);
        table[i][j] = {sc.sad_all, sc.sad};
        if (!dump.empty()) {  // mask, trimap and alpha, to look at
          const std::string stem = dump + "/" + s.set + "_" + s.name.substr(0, s.name.size() - 4) + "_" + priors[j];
          cv::imwrite(stem + "_mask.png", r[0].mask);
          cv::imwrite(stem + "_trimap.png", r[0].trimap);
          cv::Mat a8;
          r[0].alpha.convertTo(a8, CV_8U, 255.0);
          cv::imwrite(stem + "_alpha.png", a8);
        }
        std::printf("%-13s %-8s %-8s %10.3f %10.3f %7.2f\n", s.set.c_str(), s.name.c_str(), priors[j].c_str(),
                    sc.sad_all, sc.sad, sc.seconds);
      } catch (const Error& e) {
        std::printf("%-13s %-8s %-8s failed: %s\n", s.set.c_str(), s.name.c_str(), priors[j].c_str(), e.what());
      }
      std::fflush(stdout);
    }
  }
  std::printf("\nmeans over the images every prior matted\n");
  std::vector<double> mean_all(priors.size(), 0), mean_unk(priors.size(), 0);
  int n = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    bool all_ok = true;
    for (const Row& r : table[i]) all_ok = all_ok && r.all >= 0;
    if (!all_ok) continue;
    ++n;
    for (size_t j = 0; j < priors.size(); ++j) mean_all[j] += table[i][j].all, mean_unk[j] += table[i][j].unk;
  }
  for (size_t j = 0; j < priors.size(); ++j)
    std::printf("%-8s n=%2d  SAD(all) %8.3f  SAD(unk1) %8.3f\n", priors[j].c_str(), n, n ? mean_all[j] / n : 0.0,
                n ? mean_unk[j] / n : 0.0);
  // The targets, for each prior against grabcut.
  const auto g = std::find(priors.begin(), priors.end(), "grabcut");
  if (g != priors.end() && n > 0) {
    const size_t gi = static_cast<size_t>(g - priors.begin());
    for (size_t j = 0; j < priors.size(); ++j) {
      if (j == gi) continue;
      int worse = 0;
      for (size_t i = 0; i < samples.size(); ++i)
        if (table[i][j].all >= 0 && table[i][gi].all >= 0 && table[i][j].all > 1.25 * table[i][gi].all) ++worse;
      std::printf("%s vs grabcut: mean SAD(all) ratio %.3f (target <= 0.5), images > 1.25x grabcut: %d (target 0)\n",
                  priors[j].c_str(), mean_all[gi] > 0 ? mean_all[j] / mean_all[gi] : 0.0, worse);
    }
  }
  // bf16 against float32: the cached maps (16-bit PNGs, so differences below 1.5e-5 are rounding).
  const auto f = std::find(priors.begin(), priors.end(), "isnet");
  const auto b = std::find(priors.begin(), priors.end(), "isnet_bf16");
  if (f != priors.end() && b != priors.end() && !maps.empty()) {
    const size_t fi = static_cast<size_t>(f - priors.begin()), bi = static_cast<size_t>(b - priors.begin());
    std::printf("\nIS-Net bf16 against float32 (probability over the crop; SAD of the final mattes)\n");
    std::printf("%-13s %-8s %10s %10s %10s %10s %8s\n", "set", "image", "max|dp|", "flip@0.5", "SAD fp32", "SAD bf16",
                "change");
    double worst = 0, sum_f = 0, sum_b = 0;
    for (size_t i = 0; i < samples.size(); ++i) {
      const auto& s = samples[i];
      if (table[i][fi].all < 0 || table[i][bi].all < 0) continue;
      cv::Mat pf = cv::imread(map_file(maps, s, false), cv::IMREAD_UNCHANGED);
      cv::Mat pb = cv::imread(map_file(maps, s, true), cv::IMREAD_UNCHANGED);
      if (pf.empty() || pb.empty() || pf.size() != pb.size()) continue;
      pf.convertTo(pf, CV_32F, 1.0 / 65535);
      pb.convertTo(pb, CV_32F, 1.0 / 65535);
      double lo = 0, hi = 0;
      cv::minMaxLoc(cv::abs(pf - pb), &lo, &hi);
      const double flips = cv::countNonZero((pf >= 0.5f) != (pb >= 0.5f)) / double(pf.total());
      worst = std::max(worst, hi);
      sum_f += table[i][fi].all, sum_b += table[i][bi].all;
      std::printf("%-13s %-8s %10.5f %9.4f%% %10.3f %10.3f %+7.2f%%\n", s.set.c_str(), s.name.c_str(), hi,
                  100 * flips, table[i][fi].all, table[i][bi].all,
                  100 * (table[i][bi].all - table[i][fi].all) / std::max(table[i][fi].all, 1e-9));
    }
    std::printf("largest |dp| %.5f; summed SAD(all) fp32 %.3f bf16 %.3f (%+.2f%%, target <= +1%%)\n", worst, sum_f,
                sum_b, sum_f > 0 ? 100 * (sum_b - sum_f) / sum_f : 0.0);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  {
    std::vector<std::string> priors;
    std::string isnet, only, dump, maps;
    double side_evidence = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string a = argv[i];
      if (a == "--prior") priors = split(argv[i + 1]);
      else if (a == "--isnet") isnet = argv[i + 1];
      else if (a == "--only") only = argv[i + 1];
      else if (a == "--dump") dump = argv[i + 1];
      else if (a == "--maps") maps = argv[i + 1];
      else if (a == "--side-evidence") side_evidence = std::stod(argv[i + 1]);
    }
    if (!priors.empty()) return compare_priors(priors, isnet, only, dump, side_evidence, maps);
  }
  std::vector<double> weights = {0.0, 0.02};
  if (argc == 3 && std::string(argv[1]) == "--prior-weights") {
    weights.clear();
    std::stringstream ss(argv[2]);
    for (std::string w; std::getline(ss, w, ',');) weights.push_back(std::stod(w));
  }
  const auto samples = bench::dev_samples();
  if (samples.empty()) {
    std::fprintf(stderr, "no development data under %s (set SEMAT_DEV_DATA)\n", bench::dev_data_root().c_str());
    return 1;
  }
  std::printf("%-13s %-8s %-22s %9s %9s %9s %7s\n", "set", "image", "method", "SAD(unk)", "MSE(unk)", "SAD(all)", "sec");
  std::vector<std::pair<std::string, Score>> rows;
  for (const auto& s : samples) {
    const cv::Mat image = io::read_color(s.image);
    const cv::Mat gt = io::read_unit_gray(s.gt);
    const cv::Mat tri1 = matting::canonical_trimap(io::read_gray8(s.trimaps[0]), s.trimaps[0]);
    const cv::Mat unknown1 = tri1 == matting::kUnknown;
    auto report = [&](const std::string& method, const Score& sc) {
      std::printf("%-13s %-8s %-22s %9.3f %9.5f %9.3f %7.2f\n", s.set.c_str(), s.name.c_str(),
                  method.c_str(), sc.sad, sc.mse, sc.sad_all, sc.seconds);
      rows.push_back({s.set + "/" + method, sc});
    };
    for (size_t t = 0; t < s.trimaps.size(); ++t) {
      const cv::Mat tri = matting::canonical_trimap(io::read_gray8(s.trimaps[t]), s.trimaps[t]);
      const auto r = matting::matte_from_trimap(image, tri);
      report("closed-form trimap" + std::to_string(t + 1), score(r.alpha, gt, tri == matting::kUnknown, r.solve.seconds));
    }
    const cv::Rect tight = cv::boundingRect(gt > 0);
    const Box box{double(tight.x), double(tight.y), double(tight.x + tight.width), double(tight.y + tight.height)};
    for (double w : weights) {
      matting::MatteOptions o;
      o.mask_prior_weight = w;
      char name[64];
      std::snprintf(name, sizeof name, "box-only prior %.3g", w);
      try {
        const auto r = matting::matte_from_box(image, box, o);
        report(name, score(r.alpha, gt, unknown1, r.seconds));
      } catch (const Error& e) {
        std::printf("%-13s %-8s %-22s failed: %s\n", s.set.c_str(), s.name.c_str(), name, e.what());
      }
    }
  }
  // Means per set and method.
  std::printf("\nmeans (SAD over trimap1's unknown region for box-only rows)\n");
  std::vector<std::string> keys;
  for (const auto& [k, v] : rows)
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  for (const auto& k : keys) {
    Score m;
    int n = 0;
    for (const auto& [kk, v] : rows)
      if (kk == k) m.sad += v.sad, m.mse += v.mse, m.sad_all += v.sad_all, m.seconds += v.seconds, ++n;
    std::printf("%-40s n=%2d SAD %8.3f MSE %8.5f SAD(all) %8.3f sec %6.2f\n", k.c_str(), n, m.sad / n,
                m.mse / n, m.sad_all / n, m.seconds / n);
  }
  return 0;
}
