// The ONNX reader (IS-Net's learned prior): protobuf parse, initializers, attributes, graph
// checks and ordering; then, when the graph loads, one run on a tiny input so the shape
// computations (Shape/Slice/Gather/Concat/Unsqueeze on int64 values), Conv/MaxPool/Resize
// attribute checks and the evaluator's error paths are reached too. Any input must give a
// model or a semat::Error (never a c10::Error, std::bad_alloc or a signal), within libFuzzer's
// -rss_limit_mb.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "semat/core/error.h"
#include "semat/onnx/model.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const semat::onnx::Model m = semat::onnx::Model::from_bytes(bytes, "fuzz.onnx");
    // Every input at a tiny size: symbolic dimensions 1 (batch) or 4; fixed ones as declared
    // while the whole input stays small (a model declaring a large input is not run).
    std::vector<std::pair<std::string, semat::onnx::Tensor>> in;
    for (const auto& vi : m.inputs()) {
      semat::onnx::Tensor t;
      std::int64_t n = 1;
      for (std::size_t k = 0; k < vi.shape.size(); ++k) {
        const std::int64_t d = vi.shape[k] >= 0 ? vi.shape[k] : (k == 0 ? 1 : 4);
        if (d > 4096 || n * d > 4096) return 0;
        n *= d;
        t.shape.push_back(d);
      }
      if (vi.shape.empty()) t.shape = {1, 1, 4, 4}, n = 16;
      t.data.assign(static_cast<std::size_t>(n), 0.5f);
      in.emplace_back(vi.name, std::move(t));
    }
    (void)m.run(in);
    if (std::getenv("SEMAT_FUZZ_VERBOSE")) std::fprintf(stderr, "fuzz_onnx: loaded and ran\n");
  } catch (const semat::Error& e) {
    // SEMAT_FUZZ_VERBOSE=1 ./fuzz_onnx -runs=0 corpus/onnx: why each seed stops (checking seeds).
    if (std::getenv("SEMAT_FUZZ_VERBOSE")) std::fprintf(stderr, "fuzz_onnx: %s\n", e.what());
  }
  return 0;
}
