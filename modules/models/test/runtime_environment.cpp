// Linked into every LibTorch test executable (models, losses, train): the tests run under the
// semat CLI's runtime set-up (semat/models/runtime.h), so they take the time the program would
// (LibTorch alone uses one thread per physical core).
#include <gtest/gtest.h>

#include "semat/models/runtime.h"

namespace {

class RuntimeEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    semat::models::configure_runtime(semat::models::runtime_options_from_environment());
  }
};
::testing::Environment* const kRuntime = ::testing::AddGlobalTestEnvironment(new RuntimeEnvironment);

}  // namespace
