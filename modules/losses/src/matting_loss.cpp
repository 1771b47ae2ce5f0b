#include "semat/losses/matting_loss.h"

#include <torch/torch.h>

namespace semat::losses {
namespace {

void check_pair(const at::Tensor& pred, const at::Tensor& target, const char* what) {
  TORCH_CHECK(pred.defined() && target.defined(), what, ": undefined input tensor");
  TORCH_CHECK(pred.dim() == 4, what, ": pred must be [B, C, H, W], got ", pred.sizes());
  TORCH_CHECK(target.sizes() == pred.sizes(), what, ": target ", target.sizes(),
              " does not match pred ", pred.sizes());
}

void check_alpha_and_mask(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& mask,
                          const char* what) {
  check_pair(pred, target, what);
  TORCH_CHECK(pred.size(1) == 1, what, ": alpha must be [B, 1, H, W], got ", pred.sizes());
  TORCH_CHECK(mask.defined() && mask.sizes() == pred.sizes(), what, ": mask ",
              mask.defined() ? mask.sizes() : at::IntArrayRef{}, " does not match pred ",
              pred.sizes());
}

// Normalising by max(area, 1) instead of branching on an empty region keeps the loss free of
// host synchronisation; with a 0/1 mask the numerator is 0 whenever the area is.
at::Tensor per_area(const at::Tensor& masked_sum, const at::Tensor& mask) {
  return masked_sum / mask.sum().clamp_min(1.0);
}

at::Tensor sobel(const at::Tensor& x, bool along_x) {
  const auto gx = torch::tensor({-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0},
                                torch::dtype(x.scalar_type()).device(x.device()))
                      .view({3, 3});
  const auto kernel = (along_x ? gx : gx.t()).contiguous().view({1, 1, 3, 3});
  return at::conv2d(x, kernel, /*bias=*/{}, /*stride=*/{1, 1}, /*padding=*/{1, 1});
}

at::Tensor binomial_kernel(const at::Tensor& like) {
  const auto k1 = torch::tensor({1.0, 4.0, 6.0, 4.0, 1.0}, torch::kDouble);
  return (at::outer(k1, k1) / 256.0).to(like.device(), like.scalar_type()).view({1, 1, 5, 5});
}

at::Tensor blur(const at::Tensor& x, const at::Tensor& kernel) {
  return at::conv2d(at::reflection_pad2d(x, {2, 2, 2, 2}), kernel);
}

// [N, 1, h, w] -> [N, 1, 2h, 2w] with x on the even rows and columns and zeros elsewhere.
at::Tensor zero_insert(const at::Tensor& x) {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  const auto cols = at::stack({x, at::zeros_like(x)}, -1).reshape({n, 1, h, 2 * w});
  return at::stack({cols, at::zeros_like(cols)}, 3).reshape({n, 1, 2 * h, 2 * w});
}

}  // namespace

at::Tensor trimap_classes(const at::Tensor& trimap) {
  TORCH_CHECK(trimap.defined(), "trimap_classes: undefined trimap");
  auto classes = at::ones_like(trimap, trimap.options().dtype(at::kLong));
  classes.masked_fill_(trimap < 0.25, 0);
  classes.masked_fill_(trimap > 0.75, 2);
  return classes;
}

at::Tensor unknown_mask(const at::Tensor& trimap) {
  return trimap_classes(trimap).eq(1).to(trimap.scalar_type());
}

at::Tensor masked_l1_loss(const at::Tensor& pred, const at::Tensor& target,
                          const at::Tensor& mask) {
  check_alpha_and_mask(pred, target, mask, "masked_l1_loss");
  return per_area(((pred - target).abs() * mask).sum(), mask);
}

at::Tensor gradient_penalty_loss(const at::Tensor& pred, const at::Tensor& target,
                                 const at::Tensor& mask, double lambda) {
  check_alpha_and_mask(pred, target, mask, "gradient_penalty_loss");
  TORCH_CHECK(lambda >= 0.0, "gradient_penalty_loss: lambda must be >= 0, got ", lambda);
  const auto px = sobel(pred, true), py = sobel(pred, false);
  const auto gx = sobel(target, true), gy = sobel(target, false);
  const auto sum = ((px - gx).abs() * mask).sum() + ((py - gy).abs() * mask).sum() +
                   lambda * ((px.abs() * mask).sum() + (py.abs() * mask).sum());
  return per_area(sum, mask);
}

at::Tensor laplacian_loss(const at::Tensor& pred, const at::Tensor& target, int64_t levels) {
  check_pair(pred, target, "laplacian_loss");
  TORCH_CHECK(levels >= 1, "laplacian_loss: levels must be >= 1, got ", levels);
  for (int64_t l = 0, h = pred.size(2), w = pred.size(3); l < levels; ++l, h /= 2, w /= 2) {
    h -= h % 2;
    w -= w % 2;
    // Reflect padding by 2 needs at least 3 pixels, cropping to even makes that 4.
    TORCH_CHECK(h >= 4 && w >= 4, "laplacian_loss: input ", pred.sizes(), " is too small for ",
                levels, " pyramid levels (level ", l, " would be ", h, "x", w,
                "; need H, W >= ", int64_t{1} << (levels + 1), ")");
  }
  // The pyramid is linear, so one pyramid of the difference gives lap(pred) - lap(target) at
  // half the cost.
  const auto kernel = binomial_kernel(pred);
  auto current = (pred - target).reshape({-1, 1, pred.size(2), pred.size(3)});
  auto loss = at::zeros({}, pred.options());
  for (int64_t l = 0; l < levels; ++l) {
    current = current.slice(2, 0, current.size(2) - current.size(2) % 2)
                  .slice(3, 0, current.size(3) - current.size(3) % 2);
    const auto blurred = blur(current, kernel);
    const auto down = blurred.slice(2, 0, blurred.size(2), 2).slice(3, 0, blurred.size(3), 2);
    const auto up = blur(zero_insert(down * 4.0), kernel);
    loss = loss + static_cast<double>(int64_t{1} << l) * (current - up).abs().mean();
    current = down;
  }
  return loss / static_cast<double>(levels);
}

MattingLosses matting_losses(const at::Tensor& pred, const at::Tensor& target,
                             const at::Tensor& trimap, const MattingLossOptions& options) {
  check_pair(pred, target, "matting_losses");
  TORCH_CHECK(pred.size(1) == 1, "matting_losses: alpha must be [B, 1, H, W], got ", pred.sizes());
  TORCH_CHECK(trimap.defined() && trimap.sizes() == pred.sizes(), "matting_losses: trimap ",
              trimap.defined() ? trimap.sizes() : at::IntArrayRef{}, " does not match alpha ",
              pred.sizes());
  const auto unknown = unknown_mask(trimap).to(pred.scalar_type());
  const auto known = 1.0 - unknown;
  MattingLosses out;
  out.unknown_l1 = masked_l1_loss(pred, target, unknown);
  out.known_l1 = masked_l1_loss(pred, target, known);
  out.gradient = gradient_penalty_loss(pred, target, unknown, options.gradient_lambda);
  out.laplacian = laplacian_loss(pred, target, options.laplacian_levels);
  out.total = options.unknown_l1_weight * out.unknown_l1 + options.known_l1_weight * out.known_l1 +
              options.gradient_weight * out.gradient + options.laplacian_weight * out.laplacian;
  return out;
}

}  // namespace semat::losses
