#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "semat/core/error.h"
#include "semat/core/log.h"
#ifdef SEMAT_WITH_MODELS
#include "semat/models/runtime.h"
#endif

int main(int argc, char** argv) {
  CLI::App app{"semat: interactive natural image matting (SEMat + COCO-Matting)", "semat"};
  app.require_subcommand(1);
  app.fallthrough();  // global options such as --log-level may follow the subcommand
  app.set_version_flag("--version", std::string("semat ") + SEMAT_VERSION);
  app.add_option_function<std::string>(
      "--log-level",
      [](const std::string& name) { semat::log::set_level(semat::log::parse_level(name)); },
      "debug, info, warn, error or off (default info, or $SEMAT_LOG_LEVEL)");
  semat::cli::register_matte(app);
#ifdef SEMAT_WITH_MODELS
  semat::cli::register_segment(app);
  semat::cli::register_info(app);
#ifdef SEMAT_WITH_TRAIN
  semat::cli::register_train(app);
#endif
#endif
  semat::cli::register_eval(app);
  semat::cli::register_serve(app);
  semat::cli::register_build_dataset(app);
  semat::cli::register_models(app);
  try {
#ifdef SEMAT_WITH_MODELS
    // Every core for LibTorch and large blocks kept in the heap, for every subcommand (serve
    // included) before any model runs; SEMAT_THREADS / OMP_NUM_THREADS override the thread count.
    semat::models::configure_runtime(semat::models::runtime_options_from_environment());
#endif
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "semat: error: " << e.what() << " (run 'semat --help' for usage)\n";
    return 2;
  } catch (const semat::Error& e) {
    std::cerr << "semat: error: " << e.what() << '\n';
    return semat::exit_code_for(e);
  } catch (const std::exception& e) {
    std::cerr << "semat: internal error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
