// The engine's flags, registered the same way on every subcommand that mattes (matte, serve,
// build-dataset), so --sam/--semat/--refine and every model option mean the same everywhere.
#pragma once

#include "semat/engine/spec.h"

namespace CLI {
class App;
}

namespace semat::cli {

/// Adds --sam, --semat, --vitmatte, --vitmatte-max-pixels, --diffmatte, --diffmatte-steps, --refine,
/// --prior, --isnet, --mask, --trimap-from, --alpha, --model-type, --device,
/// --precision, --resize and --batch to `cmd`, writing into `spec` (which must outlive parsing).
void add_engine_flags(CLI::App* cmd, engine::EngineSpec& spec);

}  // namespace semat::cli
