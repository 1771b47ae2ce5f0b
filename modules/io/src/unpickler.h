// A strict unpickler for the subset of pickle that torch.save writes for a state dict: dicts,
// lists, tuples, strings, numbers, collections.OrderedDict, torch._utils._rebuild_tensor_v2 /
// _rebuild_parameter and typed storages referenced by persistent ids. Any other global raises
// CheckpointError naming it, so no code is ever "executed". Internal to semat_io.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "semat/io/checkpoint.h"

namespace semat::io::detail {

/// A storage referenced by a persistent id ('storage', torch.XStorage, key, location, numel):
/// its bytes are the archive entry `<archive>/data/<key>`.
struct PickledStorage {
  DType dtype = DType::F32;
  std::string key;
  std::int64_t numel = 0;  ///< elements of `dtype`
};

/// A tensor as torch saves it: a strided view into a storage (offset and strides in elements).
struct PickledTensor {
  std::size_t storage = 0;  ///< index into PickledStateDict::storages
  std::int64_t offset = 0;
  std::vector<std::int64_t> size, stride;
};

struct PickledStateDict {
  std::vector<PickledStorage> storages;  ///< one per distinct key
  std::vector<PickledTensor> tensors;
  std::vector<std::pair<std::string, std::size_t>> entries;  ///< name -> index into tensors
  std::vector<std::string> unwrapped;  ///< wrapper keys removed, e.g. "['model']"
};

/// Unpickles `data` and returns its state dict: the top-level dict itself or, when it holds a
/// "model" or "state_dict" dict, that one. `where` prefixes error messages (file and entry).
PickledStateDict unpickle_state_dict(const std::uint8_t* data, std::size_t size,
                                     const std::string& where);

}  // namespace semat::io::detail
