// Quality of the default pipeline on the development data: SAD (sum |a - gt| / 1000) and MSE over
// the given trimap's unknown region, for closed-form with the given trimaps and for the box-only
// pipeline (box = tight box of gt > 0). Usage: semat_quality [--prior-weights w1,w2,...]
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "dev_data.h"
#include "semat/core/error.h"
#include "semat/io/image_io.h"
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

}  // namespace

int main(int argc, char** argv) {
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
