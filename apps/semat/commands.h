// Each subcommand registers its flags on the top-level CLI11 app and runs through a callback
// that throws semat::Error on failure; main() turns errors into exit codes.
#pragma once

namespace CLI {
class App;
}

namespace semat::cli {

void register_matte(CLI::App& app);
/// Only in builds with LibTorch (SEMAT_WITH_MODELS).
void register_segment(CLI::App& app);
/// `semat info`: model architectures and parameter counts (SEMAT_WITH_MODELS only).
void register_info(CLI::App& app);
/// `semat train`: SEMat training (SEMAT_WITH_TRAIN builds, i.e. with modules/train).
void register_train(CLI::App& app);
void register_eval(CLI::App& app);
void register_serve(CLI::App& app);
/// build-dataset and merge-index (COCO-Matting builder).
void register_build_dataset(CLI::App& app);
/// `semat models`: fetchable models, installed or not (torch-free).
void register_models(CLI::App& app);

}  // namespace semat::cli
