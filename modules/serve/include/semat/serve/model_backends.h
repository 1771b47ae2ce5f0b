// Model backends for the server (library semat_serve_models, built only with LibTorch). The
// header and the implementations use only the torch-free predictor facades of semat_models.
#pragma once

#include <memory>
#include <string>

#include "semat/serve/backend.h"

namespace semat::serve {

struct ModelBackendOptions {
  std::string model_type = "auto";  ///< auto (from tensor shapes) or a named type/preset
  std::string device = "auto";      ///< auto, cpu, cuda
};

/// Loads the SAM checkpoint (throws CheckpointError / IoError). Each box's SAM mask enters the
/// closed-form mask-to-matte pipeline. The image embedding of the last stored image is kept, so
/// refining boxes on one uploaded image runs only SAM's light decoder.
std::shared_ptr<MattingBackend> make_sam_backend(const std::string& checkpoint,
                                                 const ModelBackendOptions& options = {});

/// Loads a SEMat checkpoint (with `sam_checkpoint`, may be empty, for slim checkpoints). The
/// model's alpha is used as is; foreground colours are estimated from it.
std::shared_ptr<MattingBackend> make_semat_backend(const std::string& checkpoint,
                                                   const std::string& sam_checkpoint,
                                                   const ModelBackendOptions& options = {});

}  // namespace semat::serve
