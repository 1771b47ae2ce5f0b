// The .safetensors format: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the tensor bytes (offsets relative to the end of the header). Internal to semat_io.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "semat/io/checkpoint.h"

namespace semat::io::detail {

/// Fills out->tensors (in data order) and out->metadata from the `size` bytes at `data`.
/// `release(p, n)` is called once a byte range is no longer needed (to drop mapped pages).
void read_safetensors(const std::uint8_t* data, std::size_t size, Checkpoint* out,
                      const std::function<void(const std::uint8_t*, std::size_t)>& release);

}  // namespace semat::io::detail
