// Throughput of `build-dataset` with the closed-form backend on COCO-sized synthetic data:
// 640 x 480 images with textured backgrounds and 1-6 people each (COCO train2017 averages ~4.1
// person instances per image that has people), people with textured clothes, soft edges and a
// fuzzy hair boundary, some carrying a bag. Person areas follow COCO's size mix by count
// (41% small < 32^2, 34% medium < 96^2, 25% large; the large ones log-uniform up to 120k px),
// since the solve time grows with the unknown band and so with the area.
//
// Reports instances/s over the whole pipeline (decode, fusion, trimap, solve, PNG writes, index
// fsyncs). Run: build with -DSEMAT_BUILD_BENCHMARKS=ON, then
//   semat_data_bench --benchmark_filter=BuildDataset
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "semat/core/log.h"
#include "semat/data/builder.h"
#include "semat/data/index.h"
#include "semat/data/rle.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kW = 640, kH = 480;

// Smooth noise at several scales, like the clutter of a photo's background.
cv::Mat textured(cv::Scalar base, double amplitude) {
  cv::Mat acc(kH, kW, CV_32FC3, cv::Scalar(0, 0, 0));
  for (double sigma : {40.0, 12.0, 3.0, 0.8}) {
    cv::Mat n(kH, kW, CV_32FC3);
    cv::randn(n, cv::Scalar::all(0), cv::Scalar::all(1));
    cv::GaussianBlur(n, n, {0, 0}, sigma);
    double mn, mx;
    cv::minMaxLoc(n.reshape(1), &mn, &mx);
    acc += n * (amplitude / std::max(1e-6, mx - mn)) * (sigma > 5 ? 1.0 : 0.35);
  }
  acc += base;
  return acc;
}

// A person silhouette of roughly `area` pixels at (cx, cy): head, torso, arms, legs.
cv::Mat silhouette(double area, int cx, int cy, std::mt19937& rng) {
  cv::Mat m(kH, kW, CV_8U, cv::Scalar(0));
  // A standing person's mask fills ~45% of a box of aspect 1:2.6.
  const double h = std::sqrt(area / 0.45 * 2.6), w = h / 2.6;
  auto P = [&](double fx, double fy) {
    return cv::Point(static_cast<int>(cx + fx * w), static_cast<int>(cy + fy * h));
  };
  const int t = std::max(1, static_cast<int>(w * 0.14));
  std::uniform_real_distribution<double> u(-0.15, 0.15);
  cv::circle(m, P(0, -0.42), std::max(1, static_cast<int>(w * 0.2)), 255, cv::FILLED);
  cv::ellipse(m, P(0, -0.12), cv::Size(std::max(1, int(w * 0.3)), std::max(1, int(h * 0.2))), 0, 0,
              360, 255, cv::FILLED);
  cv::line(m, P(-0.25, -0.25), P(-0.45 + u(rng), 0.05), 255, t);
  cv::line(m, P(0.25, -0.25), P(0.45 + u(rng), 0.05 + u(rng)), 255, t);
  cv::line(m, P(-0.12, 0.05), P(-0.18 + u(rng), 0.48), 255, int(t * 1.3) + 1);
  cv::line(m, P(0.12, 0.05), P(0.18 + u(rng), 0.48), 255, int(t * 1.3) + 1);
  return m;
}

struct Dataset {
  fs::path dir;
  int instances = 0;
};

const Dataset& dataset() {
  static const Dataset ds = [] {
    Dataset d;
    d.dir = fs::temp_directory_path() / "semat_bench_build_dataset";
    fs::remove_all(d.dir);
    fs::create_directories(d.dir / "images");
    std::mt19937 rng(2024);
    std::uniform_real_distribution<double> u01(0, 1);
    json doc = {
        {"images", json::array()},
        {"annotations", json::array()},
        {"categories", {{{"id", 1}, {"name", "person"}}, {{"id", 31}, {"name", "handbag"}}}}};
    std::int64_t ann = 1;
    for (int i = 1; i <= 24; ++i) {
      cv::Mat img = textured(cv::Scalar(90 + 60 * u01(rng), 100 + 50 * u01(rng), 110), 120);
      const int people = 1 + static_cast<int>(rng() % 6);
      cv::Mat taken(kH, kW, CV_8U, cv::Scalar(0));
      doc["images"].push_back(
          {{"id", i}, {"file_name", std::to_string(i) + ".jpg"}, {"width", kW}, {"height", kH}});
      for (int p = 0; p < people; ++p) {
        const double r = u01(rng);
        double area;
        if (r < 0.41)
          area = 300 + u01(rng) * (1024 - 300);
        else if (r < 0.75)
          area = 1024 * std::pow(9.0, u01(rng));
        else
          area = 9216 * std::pow(120000.0 / 9216, u01(rng));
        const double h = std::sqrt(area / 0.45 * 2.6);
        const int cx = static_cast<int>(40 + u01(rng) * (kW - 80));
        const int cy = static_cast<int>(std::min(kH - h / 2, std::max(h / 2, u01(rng) * kH)));
        cv::Mat m = silhouette(area, cx, cy, rng);
        m.setTo(0, taken);  // later people are behind earlier ones, as masks never overlap
        if (cv::countNonZero(m) < 50) continue;
        taken |= m;
        // Soft edge plus a fuzzy hair fringe on the head.
        cv::Mat a;
        m.convertTo(a, CV_32F, 1.0 / 255);
        cv::GaussianBlur(a, a, {0, 0}, 0.5 + std::sqrt(area) / 120);
        const cv::Mat clothes =
            textured(cv::Scalar(255 * u01(rng), 255 * u01(rng), 255 * u01(rng)), 90);
        cv::Mat a3;
        cv::merge(std::vector<cv::Mat>{a, a, a}, a3);
        img = img.mul(cv::Scalar::all(1) - a3) + clothes.mul(a3);
        const cv::Rect b = cv::boundingRect(m);
        doc["annotations"].push_back(
            {{"id", ann++},
             {"image_id", i},
             {"category_id", 1},
             {"iscrowd", 0},
             {"bbox", {b.x, b.y, b.width, b.height}},
             {"segmentation",
              {{"size", {kH, kW}},
               {"counts", semat::data::rle_to_string(semat::data::rle_from_mask(m))}}}});
        ++d.instances;
        if (u01(rng) < 0.3 && b.width > 8) {  // a bag at the hip
          cv::Mat bag(kH, kW, CV_8U, cv::Scalar(0));
          const cv::Rect br(b.x + b.width * 3 / 4, b.y + b.height / 2, std::max(3, b.width / 4),
                            std::max(3, b.height / 8));
          bag(br & cv::Rect(0, 0, kW, kH)).setTo(255);
          bag.setTo(0, taken);
          if (cv::countNonZero(bag) > 0) {
            taken |= bag;
            img.setTo(cv::Scalar(30, 60, 120), bag);
            const cv::Rect bb = cv::boundingRect(bag);
            doc["annotations"].push_back(
                {{"id", ann++},
                 {"image_id", i},
                 {"category_id", 31},
                 {"iscrowd", 0},
                 {"bbox", {bb.x, bb.y, bb.width, bb.height}},
                 {"segmentation",
                  {{"size", {kH, kW}},
                   {"counts", semat::data::rle_to_string(semat::data::rle_from_mask(bag))}}}});
          }
        }
      }
      cv::Mat out;
      img.convertTo(out, CV_8UC3);
      cv::imwrite((d.dir / "images" / (std::to_string(i) + ".jpg")).string(), out,
                  {cv::IMWRITE_JPEG_QUALITY, 90});
    }
    std::ofstream(d.dir / "ann.json") << doc.dump();
    return d;
  }();
  return ds;
}

void BM_BuildDataset(benchmark::State& state) {
  const Dataset& d = dataset();
  semat::log::set_level(semat::log::Level::kWarn);
  semat::data::BuildOptions o;
  o.annotations = (d.dir / "ann.json").string();
  o.images = (d.dir / "images").string();
  o.out = (d.dir / "out").string();
  o.jobs = static_cast<int>(state.range(0));
  o.min_score = 0;  // every instance is solved and written
  o.progress = semat::data::ProgressMode::kOff;
  // Process CPU seconds as well as wall time: on a shared, busy machine the wall-clock rate
  // understates what a dedicated core does, while CPU time per instance stays comparable.
  auto cpu_seconds = [] {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  };
  double kept = 0, score = 0, cpu = 0;
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(o.out);
    state.ResumeTiming();
    const double c0 = cpu_seconds();
    const json s = semat::data::build_dataset(o);
    cpu += cpu_seconds() - c0;
    kept = s["kept"].get<double>();
  }
  for (const json& j : semat::data::read_journal(o.out + "/index.jsonl", false).lines)
    score += j["score"].get<double>();
  state.SetItemsProcessed(state.iterations() * d.instances);
  state.counters["instances"] = d.instances;
  state.counters["mean_score"] = kept > 0 ? score / kept : 0;
  state.counters["inst_per_cpu_s"] = cpu > 0 ? state.iterations() * d.instances / cpu : 0;
  state.counters["per_core_inst_per_s"] =
      benchmark::Counter(static_cast<double>(d.instances) / static_cast<double>(state.range(0)),
                         benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_BuildDataset)->Arg(1)->Arg(2)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(2);

}  // namespace
