// semat models [--json] [--verify]: the models semat can fetch (make models), whether each is
// installed, where, its size and sha256. Listing succeeds when a model is simply not installed;
// a file that is there but wrong (truncated, or a sha256 mismatch under --verify) is listed and
// then reported as the error, so scripts can rely on the exit code.
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "semat/core/error.h"
#include "semat/io/model_store.h"

namespace semat::cli {
namespace {

struct ModelsArgs {
  bool json = false;
  bool verify = false;
};

std::string origin_note(const std::string& origin) {
  if (origin == "SEMAT_MODELS") return "from SEMAT_MODELS";
  if (origin == "XDG_DATA_HOME") return "$XDG_DATA_HOME/semat/models; SEMAT_MODELS overrides";
  return "default ~/.local/share/semat/models; SEMAT_MODELS overrides";
}

void run_models(const ModelsArgs& a) {
  const std::string dir = io::models_dir();
  const std::string origin = io::models_dir_origin();
  std::string first_problem;
  nlohmann::json rows = nlohmann::json::array();
  if (!a.json) std::cout << "models folder: " << dir << " (" << origin_note(origin) << ")\n";
  for (const io::KnownModel& m : io::known_models()) {
    const io::ModelCheck c = io::check_model(m, dir, a.verify);
    const bool present = c.state != io::ModelState::missing;
    const bool good = c.state == io::ModelState::installed || c.state == io::ModelState::verified;
    if (present && !good && first_problem.empty()) first_problem = c.problem;
    if (a.json) {
      rows.push_back({{"name", m.name},
                      {"file", m.file},
                      {"path", c.path},
                      {"state", io::to_string(c.state)},
                      {"installed", good},
                      {"verified", c.state == io::ModelState::verified},
                      {"size", present ? nlohmann::json(c.size) : nlohmann::json(nullptr)},
                      {"sha256", c.sha256.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.sha256)},
                      {"expected_size", m.size},
                      {"expected_sha256", m.sha256},
                      {"format", m.format},
                      {"source", m.source},
                      {"licence", m.licence}});
      continue;
    }
    std::cout << m.name << ": ";
    switch (c.state) {
      case io::ModelState::missing: std::cout << "not installed (run 'make models')\n"; break;
      case io::ModelState::installed:
        std::cout << "installed, " << c.size << " bytes (size checked; --verify hashes it)\n";
        break;
      case io::ModelState::verified:
        std::cout << "installed, " << c.size << " bytes, sha256 verified\n";
        break;
      case io::ModelState::wrong_size:
        std::cout << "WRONG SIZE, " << c.size << " bytes, expected " << m.size << "\n";
        break;
      case io::ModelState::wrong_hash:
        std::cout << "WRONG SHA256 " << c.sha256 << "\n";
        break;
    }
    std::cout << "  path:    " << c.path << "\n"
              << "  size:    " << m.size << " bytes\n"
              << "  sha256:  " << m.sha256 << "\n"
              << "  format:  " << m.format << "\n"
              << "  source:  " << m.source << "\n"
              << "  licence: " << m.licence << "\n";
  }
  if (a.json) {
    std::cout << nlohmann::json{{"models_dir", dir}, {"models_dir_from", origin}, {"models", rows}}.dump(2)
              << '\n';
  }
  std::cout.flush();
  if (!first_problem.empty()) throw IoError(first_problem);
}

}  // namespace

void register_models(CLI::App& app) {
  auto args = std::make_shared<ModelsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "models", "Fetchable models (make models): installed or not, where, sizes and sha256");
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->add_flag("--verify", args->verify,
                "hash each installed file and compare with the pinned sha256 (about 0.5 s per 100 MB)");
  cmd->callback([args] { run_models(*args); });
}

}  // namespace semat::cli
