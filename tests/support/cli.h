// Running the semat executable from tests, the way a person does in a shell.
#pragma once

#include <filesystem>
#include <string>

namespace semat::test {

struct CliRun {
  int code = -1;    ///< exit status (-1 if the process did not exit normally)
  std::string out;  ///< standard output
  std::string err;  ///< standard error
};

/// Runs `semat ARGS` (`binary` is the executable's path) with stdout and stderr captured in
/// files under `scratch`, which must exist.
CliRun run_cli(const std::string& binary, const std::string& args,
               const std::filesystem::path& scratch);

}  // namespace semat::test
