// Checkpoint readers: PyTorch zip (+ restricted unpickler) and safetensors, detected from the
// bytes as load_checkpoint does. Any input must give a Checkpoint or a semat::Error, within
// memory bounded by a small multiple of the input (libFuzzer's -rss_limit_mb catches blow-ups).
#include <cstddef>
#include <cstdint>

#include "semat/core/error.h"
#include "semat/io/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const semat::io::Checkpoint c = semat::io::load_checkpoint_from_memory(data, size, "fuzz");
    std::size_t total = 0;
    for (const auto& t : c.tensors) total += t.bytes.size();
    // Materialised bytes stay within the readers' bound (2x the file + 1 MiB).
    if (total > 2 * size + (std::size_t{1} << 20)) __builtin_trap();
  } catch (const semat::Error&) {
  }
  return 0;
}
