// Where fetched model files live and how semat checks them. Models that semat fetches (never
// ships: see README, "Licences") are installed by scripts/fetch-models.sh (`make models`) into
// one folder; this is the C++ side of the same rules: the folder, the table of known models with
// their pinned sizes and sha256, and checks that turn a missing, truncated or corrupt file into
// one error line that names the file and the fix.
//
//   if (auto path = semat::io::find_model("isnet-medium")) { ... load *path ... }
//   else { /* not installed: semat::io::install_hint("isnet-medium") says how */ }
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace semat::io {

/// A model file semat knows how to fetch and check.
struct KnownModel {
  std::string name;     ///< what users type, e.g. "isnet-medium"
  std::string file;     ///< file name inside the models folder
  std::uint64_t size;   ///< exact size in bytes
  std::string sha256;   ///< 64 lowercase hex digits
  std::string format;   ///< e.g. "onnx (fp16 weights, opset 15)"
  std::string source;   ///< where scripts/fetch-models.sh gets it
  std::string licence;  ///< one line: the terms it comes under
};

/// The models semat can fetch (scripts/fetch-models.sh pins the same values).
const std::vector<KnownModel>& known_models();

/// The entry named `name`. Throws ConfigError listing the known names if there is none.
const KnownModel& known_model(const std::string& name);

/// The models folder: $SEMAT_MODELS if set and not empty, else $XDG_DATA_HOME/semat/models, else
/// $HOME/.local/share/semat/models (the same rule as scripts/fetch-models.sh). Throws ConfigError
/// when none of the three variables is set. The folder may not exist.
std::string models_dir();

/// Which variable decided models_dir(): "SEMAT_MODELS", "XDG_DATA_HOME" or "HOME".
std::string models_dir_origin();

/// `dir`/`model.file`.
std::string model_path(const KnownModel& model, const std::string& dir);

/// What is on disk for one model.
enum class ModelState {
  missing,     ///< no file (or no folder)
  wrong_size,  ///< a file whose size is not the pinned one (truncated, or another file)
  installed,   ///< the pinned size; content not hashed (check_model with verify = false)
  verified,    ///< the pinned size and sha256
  wrong_hash,  ///< the pinned size but another sha256 (corrupt, or another file)
};

/// "missing", "wrong-size", "installed", "verified", "wrong-hash".
const char* to_string(ModelState s);

struct ModelCheck {
  ModelState state = ModelState::missing;
  std::string path;           ///< where the file is or would be
  std::uint64_t size = 0;     ///< bytes on disk (0 when missing)
  std::string sha256;         ///< computed digest (only when hashed: verified or wrong_hash)
  /// One line for a person: what is wrong and the fix; empty for installed and verified.
  std::string problem;
};

/// Looks at `model` in `dir` without throwing for what it finds: the size always (cheap), the
/// sha256 only when `verify` (about 0.5 s per 100 MB). Throws IoError only if an existing file
/// cannot be read while hashing.
ModelCheck check_model(const KnownModel& model, const std::string& dir, bool verify);

/// The path of `name` in models_dir() if a file of the pinned size is there, else nullopt.
/// Cheap (no hashing): for deciding whether a feature is available. Throws ConfigError for an
/// unknown name.
std::optional<std::string> find_model(const std::string& name);

/// The path of `model` in `dir`; throws IoError with ModelCheck::problem when the file is
/// missing or has the wrong size (and, with `verify`, the wrong sha256).
std::string require_model(const KnownModel& model, const std::string& dir, bool verify = false);

/// require_model(known_model(name), models_dir(), verify).
std::string require_model(const std::string& name, bool verify = false);

/// Hashes `model` in `dir` and throws IoError (naming the file, both digests and the fix) unless
/// it is the pinned file.
void verify_model(const KnownModel& model, const std::string& dir);

/// One line telling a person how to install `name` and where it goes, e.g. "IS-Net model
/// isnet-medium is not installed in /root/.local/share/semat/models: run 'make models'".
std::string install_hint(const std::string& name);

}  // namespace semat::io
