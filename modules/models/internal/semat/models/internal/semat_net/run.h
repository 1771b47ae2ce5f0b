// SEMat inference on a model that is already built: what SematPredictor does after loading, and
// what the trainer's periodic evaluation runs on the model it is training (no checkpoint round
// trip). Internal (torch) header.
#pragma once

#include <vector>

#include <torch/types.h>
#include <opencv2/core/mat.hpp>

#include "semat/core/channel_order.h"
#include "semat/core/geometry.h"
#include "semat/models/internal/semat_net/semat_model.h"
#include "semat/models/semat_predictor.h"

namespace semat::models::semat_net {

/// One matte per box for a CV_8UC3 image in `order` (boxes in its pixels, checked to lie inside). The
/// model should be in eval mode; gradients are off inside. `batch_size`: boxes per encoder pass,
/// 0 = 4 on CUDA, 1 on CPU.
std::vector<models::SematMatte> predict_mattes(SematModelImpl& model, torch::Device device,
                                               models::SematResize resize, int batch_size,
                                               const cv::Mat& image, const std::vector<Box>& boxes,
                                               ChannelOrder order = ChannelOrder::kBGR);

}  // namespace semat::models::semat_net
