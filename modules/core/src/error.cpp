#include "semat/core/error.h"

namespace semat {

int exit_code_for(const std::exception& e) noexcept {
  if (dynamic_cast<const ConfigError*>(&e) || dynamic_cast<const InvalidArgument*>(&e)) return 2;
  if (dynamic_cast<const IoError*>(&e) || dynamic_cast<const DataError*>(&e) ||
      dynamic_cast<const CheckpointError*>(&e))
    return 3;
  return 1;
}

}  // namespace semat
