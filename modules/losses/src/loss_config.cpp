#include "semat/losses/loss_config.h"

#include <cmath>

#include "semat/core/error.h"

namespace semat::losses {
namespace {

void check_weight(double w, const char* key) {
  SEMAT_CHECK(std::isfinite(w) && w >= 0.0, ConfigError,
              "loss option '" << key << "' must be finite and >= 0, got " << w);
}

}  // namespace

void LossConfig::validate() const {
  check_weight(matting.unknown_l1_weight, "unknown_l1_weight");
  check_weight(matting.known_l1_weight, "known_l1_weight");
  check_weight(matting.gradient_weight, "gradient_weight");
  check_weight(matting.laplacian_weight, "laplacian_weight");
  check_weight(matting.gradient_lambda, "gradient_lambda");
  check_weight(reg_weight, "reg_weight");
  check_weight(trimap_weight, "trimap_weight");
  SEMAT_CHECK(matting.laplacian_levels >= 1, ConfigError,
              "loss option 'laplacian_levels' must be >= 1, got " << matting.laplacian_levels);
  SEMAT_CHECK(ghm.bins >= 1, ConfigError, "loss option 'ghm_bins' must be >= 1, got " << ghm.bins);
  SEMAT_CHECK(ghm.momentum >= 0.0 && ghm.momentum < 1.0, ConfigError,
              "loss option 'ghm_momentum' must be in [0, 1), got " << ghm.momentum);
}

}  // namespace semat::losses
