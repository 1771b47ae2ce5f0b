// SEMat on CPU: one box and 4 batched boxes on a 1024 x 1024 image (the network's frame; the
// tiny config's frame is 256), random weights of the real shapes, with the box-independent patch
// embedding computed once per image as SematPredictor does. Reports seconds per box and peak RSS.
// Run: semat_models_bench --benchmark_filter=Semat
#include <chrono>
#include <sys/resource.h>

#include <torch/torch.h>

#include <benchmark/benchmark.h>

#include "semat/models/internal/semat_net/lora.h"
#include "semat/models/internal/semat_net/semat_model.h"
#include "semat/models/semat_config.h"

namespace {

double peak_rss_gib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / (1024.0 * 1024.0);
}

void BM_Semat(benchmark::State& state, const std::string& preset, bool bf16 = false) {
  torch::InferenceMode guard;
  const int64_t boxes_n = state.range(0);
  const auto cfg = semat::models::semat_preset(preset);
  semat::models::semat_net::SematModel model(cfg);
  for (auto& p : model->parameters()) p.normal_(0, 0.02);
  semat::models::semat_net::merge_lora(*model);  // as SematPredictor does by default
  model->eval();
  // --precision bf16 as SematPredictor sets it up: the ViT converted once (LoRA merged above).
  if (bf16) model->sam_model->vit->set_compute_dtype(torch::kBFloat16);
  const int64_t S = cfg.sam.encoder.img_size;
  const auto image = model->normalize(torch::rand({1, 3, S, S}));
  std::vector<float> xy;
  for (int64_t i = 0; i < boxes_n; ++i)
    for (float v : {0.1f + 0.05f * i, 0.1f, 0.8f, 0.9f - 0.05f * i}) xy.push_back(v * S);
  const auto boxes = torch::tensor(xy).view({-1, 4});
  // Where the time goes: the encoder (patch embedding, Feature-Aligned Transformer, neck) and the
  // decoders (Matte-Aligned Decoder + UNet matting decoder), seconds per iteration.
  double encode_s = 0, decode_s = 0;
  using clock = std::chrono::steady_clock;
  for (auto _ : state) {
    const auto t0 = clock::now();
    const auto patch = model->patch_embed(image);
    const auto imgs = image.expand({boxes_n, -1, -1, -1});
    const auto enc = model->encode(imgs, boxes, patch);
    const auto t1 = clock::now();
    benchmark::DoNotOptimize(model->decode(imgs, boxes, enc).alpha);
    encode_s += std::chrono::duration<double>(t1 - t0).count();
    decode_s += std::chrono::duration<double>(clock::now() - t1).count();
  }
  state.counters["s_encode"] = encode_s / static_cast<double>(state.iterations());
  state.counters["s_decode"] = decode_s / static_cast<double>(state.iterations());
  state.counters["s_per_box"] = benchmark::Counter(
      static_cast<double>(boxes_n),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["peak_rss_GiB"] = peak_rss_gib();
  state.counters["threads"] = torch::get_num_threads();
}
BENCHMARK_CAPTURE(BM_Semat, tiny, std::string("semat-tiny"))
    ->Arg(1)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Semat, vit_b, std::string("semat-vit-b"))
    ->Arg(1)
    ->Arg(4)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Semat, vit_l, std::string("semat-vit-l"))
    ->Arg(1)
    ->Arg(4)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
// --precision bf16 (AMX / AVX512-BF16 CPUs): the ViT in bf16, decoders float32.
BENCHMARK_CAPTURE(BM_Semat, vit_l_bf16, std::string("semat-vit-l"), true)
    ->Arg(1)
    ->Iterations(2)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
// SEMat (HQ-SAM), the official demo's default model: the SAM variant plus the HQ token and
// fusion layers in the decoder.
BENCHMARK_CAPTURE(BM_Semat, hq_tiny, std::string("semat-hq-tiny"))
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Semat, hq_vit_l, std::string("semat-hq-vit-l"))
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
// SEMat (SAM2): Hiera trunk + FPN neck, the SAM 2 matting decoder, the matting decoder on the
// SAM 2 features (the official SEMat_SAM2 is Hiera-L).
BENCHMARK_CAPTURE(BM_Semat, sam2_tiny, std::string("semat-sam2-tiny"))
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Semat, sam2_hiera_l, std::string("semat-sam2-hiera-l"))
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Semat, vit_h, std::string("semat-vit-h"))
    ->Arg(1)
    ->Arg(4)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

}  // namespace
