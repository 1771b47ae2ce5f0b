// Closed-form solve time on the 800 px alphamatting.com images with trimap1, peak memory on a
// 4096 x 4096 image with a 10% unknown band, and the whole box pipeline on the sample photo.
// Run: make bench BENCH_ARGS=--benchmark_filter=ClosedForm
#include <sys/resource.h>

#include <cmath>

#include <benchmark/benchmark.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "dev_data.h"
#include "semat/io/image_io.h"
#include "semat/matting/closed_form.h"
#include "semat/matting/pipeline.h"
#include "semat/matting/trimap.h"

using namespace semat;

namespace {

double peak_rss_gib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / (1024.0 * 1024.0);  // ru_maxrss is in KiB on Linux
}

void BM_ClosedFormDevTrimap1(benchmark::State& state) {
  const auto samples = bench::dev_samples();
  const size_t i = static_cast<size_t>(state.range(0));
  if (i >= samples.size() || samples[i].set != "alphamatting") {
    state.SkipWithError("development data not found (set SEMAT_DEV_DATA)");
    return;
  }
  const cv::Mat image = io::read_color(samples[i].image);
  const cv::Mat tri = matting::canonical_trimap(io::read_gray8(samples[i].trimaps[0]), samples[i].trimaps[0]);
  matting::SolveStats st;
  for (auto _ : state) benchmark::DoNotOptimize(matting::closed_form_alpha(image, tri, {}, &st));
  state.SetLabel(samples[i].name + " " + std::to_string(image.cols) + "x" + std::to_string(image.rows));
  state.counters["unknown_px"] = st.unknown;
  state.counters["cg_iters"] = st.iterations;
  state.counters["levels"] = st.levels;
  state.counters["peak_rss_GiB"] = peak_rss_gib();
}
BENCHMARK(BM_ClosedFormDevTrimap1)->DenseRange(0, 4)->Unit(benchmark::kMillisecond)->UseRealTime();

// A 4096 x 4096 textured scene whose trimap has exactly a 10% unknown band around a disc.
void BM_ClosedFormLarge(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  cv::Mat image(n, n, CV_8UC3), trimap(n, n, CV_8U);
  const double cx = n / 2.0, r_in = n * 0.30;
  const double band = 0.10 * n * n / (2 * M_PI * r_in);  // area of the ring ~= 10% of the image
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const double d = std::hypot(x - cx, y - cx);
      const double a = std::clamp((r_in + band - d) / band, 0.0, 1.0);
      const double t = 0.5 + 0.2 * std::sin(x / 13.0) * std::cos(y / 17.0);
      const cv::Vec3d f(0.2, 0.3, 0.5 + 0.1 * t), b(0.8 * t, 0.7, 0.4 * t + 0.3);
      const cv::Vec3d c = a * f + (1 - a) * b;
      image.at<cv::Vec3b>(y, x) = cv::Vec3b(cv::saturate_cast<uchar>(255 * c[0]),
                                            cv::saturate_cast<uchar>(255 * c[1]),
                                            cv::saturate_cast<uchar>(255 * c[2]));
      trimap.at<uchar>(y, x) = d < r_in ? matting::kForeground
                               : d < r_in + band ? matting::kUnknown : matting::kBackground;
    }
  matting::SolveStats st;
  for (auto _ : state) benchmark::DoNotOptimize(matting::closed_form_alpha(image, trimap, {}, &st));
  state.counters["unknown_frac"] = static_cast<double>(st.unknown) / (static_cast<double>(n) * n);
  state.counters["cg_iters"] = st.iterations;
  state.counters["peak_rss_GiB"] = peak_rss_gib();
}
BENCHMARK(BM_ClosedFormLarge)->Arg(4096)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_BoxPipelineSample(benchmark::State& state) {
  const cv::Mat image = io::read_color(std::string(SEMAT_SOURCE_DIR) + "/examples/astronaut.png");
  matting::MatteResult r;
  for (auto _ : state) r = matting::matte_from_box(image, Box{15, 10, 375, 512});
  state.counters["unknown_px"] = r.solve.unknown;
  state.counters["cg_iters"] = r.solve.iterations;
  state.counters["peak_rss_GiB"] = peak_rss_gib();
}
BENCHMARK(BM_BoxPipelineSample)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
