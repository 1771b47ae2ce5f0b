// The five matting metrics on one 1024 x 1024 pair, one core (the reference Python takes about
// 1.3 s for all five: Grad 0.8 s, Conn 0.47 s).
// Run: semat_metrics_bench --benchmark_filter=Metric
#include <cmath>

#include <benchmark/benchmark.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/metrics/metrics.h"
#include "semat/metrics/protocol.h"

using namespace semat;

namespace {

struct Pair {
  cv::Mat pred, gt;
};

// A soft subject with hair-like strands as GT, and a blurred, noisy, 8-bit version as prediction:
// many Conn components and a busy gradient, like a real matte.
const Pair& pair_1024() {
  static const Pair p = [] {
    cv::Mat g(1024, 1024, CV_64FC1, cv::Scalar(0));
    cv::ellipse(g, {512, 600}, {300, 380}, 0, 0, 360, cv::Scalar(1.0), cv::FILLED);
    cv::RNG rng(7);
    for (int i = 0; i < 300; ++i) {
      const cv::Point a(rng.uniform(150, 870), rng.uniform(200, 400));
      const cv::Point b(a.x + rng.uniform(-120, 120), a.y - rng.uniform(40, 190));
      cv::line(g, a, b, cv::Scalar(rng.uniform(0.3, 1.0)), 1, cv::LINE_AA);
    }
    cv::GaussianBlur(g, g, {0, 0}, 2.0);
    cv::Mat noise(g.size(), CV_64FC1);
    rng.fill(noise, cv::RNG::NORMAL, 0.0, 0.03);
    cv::Mat pr;
    cv::GaussianBlur(g, pr, {0, 0}, 1.5);
    pr += noise;
    Pair out;
    out.gt = cv::min(cv::max(g, 0.0), 1.0);
    out.pred = metrics::quantize_alpha(pr);
    return out;
  }();
  return p;
}

template <typename F>
void run(benchmark::State& state, F f) {
  cv::setNumThreads(1);
  const Pair& p = pair_1024();
  for (auto _ : state) benchmark::DoNotOptimize(f(p));
}

const cv::Mat kAll;

void BM_MetricSad(benchmark::State& s) {
  run(s, [](const Pair& p) { return metrics::sum_abs_error(p.pred, p.gt, kAll) / 1000; });
}
void BM_MetricMse(benchmark::State& s) {
  run(s, [](const Pair& p) { return metrics::sum_squared_error(p.pred, p.gt, kAll) / p.gt.total(); });
}
void BM_MetricMad(benchmark::State& s) {
  run(s, [](const Pair& p) { return metrics::sum_abs_error(p.pred, p.gt, kAll) / p.gt.total(); });
}
void BM_MetricGrad(benchmark::State& s) {
  run(s, [](const Pair& p) { return metrics::sum_gradient_error(p.pred, p.gt, kAll) / 1000; });
}
void BM_MetricConn(benchmark::State& s) {
  run(s, [](const Pair& p) {
    return metrics::sum_connectivity_error(p.pred, p.gt, kAll, metrics::ConnRule::kLargestWithBackground) / 1000;
  });
}
// All five as `semat eval --protocol semat` computes them (already at 1024, so no resize).
void BM_MetricAllFive(benchmark::State& s) {
  run(s, [](const Pair& p) { return metrics::score_semat(p.pred, p.gt).conn; });
}

BENCHMARK(BM_MetricSad)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MetricMse)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MetricMad)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MetricGrad)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MetricConn)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MetricAllFive)->Unit(benchmark::kMillisecond);

}  // namespace
