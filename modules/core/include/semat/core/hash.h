// splitmix64 (Steele, Lea, Flood 2014): a bijective 64-bit mixer. semat derives every seed from
// it (dataset shards from image ids, generator seeds from (seed, sample index), per-iteration
// torch seeds), so results depend on the numbers alone, never on call order or thread.
#pragma once

#include <cstdint>

namespace semat {

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace semat
