#include "semat/losses/ghm_loss.h"

#include <torch/torch.h>

#include "semat/core/error.h"

namespace semat::losses {

GhmClassificationLoss::GhmClassificationLoss(GhmOptions options) : options_(options) {
  SEMAT_CHECK(options_.bins >= 1, ConfigError, "GHM bins must be >= 1, got " << options_.bins);
  SEMAT_CHECK(options_.momentum >= 0.0 && options_.momentum < 1.0, ConfigError,
              "GHM momentum must be in [0, 1), got " << options_.momentum);
  reset();
}

void GhmClassificationLoss::reset() { acc_ = at::zeros({options_.bins}, at::kDouble); }

at::Tensor GhmClassificationLoss::accumulators() const { return acc_.to(at::kCPU).clone(); }

void GhmClassificationLoss::set_accumulators(const at::Tensor& acc) {
  SEMAT_CHECK(acc.defined() && acc.dim() == 1 && acc.size(0) == options_.bins, InvalidArgument,
              "GHM accumulators must have shape ["
                  << options_.bins << "], got "
                  << (acc.defined() ? acc.sizes() : at::IntArrayRef{}));
  const auto cpu = acc.to(at::kCPU, at::kDouble).clone();
  SEMAT_CHECK(cpu.ge(0).all().item<bool>() && cpu.isfinite().all().item<bool>(), InvalidArgument,
              "GHM accumulators must be finite and >= 0");
  acc_ = cpu;
}

at::Tensor GhmClassificationLoss::operator()(const at::Tensor& logits, const at::Tensor& classes) {
  TORCH_CHECK(logits.defined() && classes.defined(), "GHM loss: undefined input tensor");
  TORCH_CHECK(logits.dim() == 4 || logits.dim() == 2,
              "GHM loss: logits must be [B, C, H, W] or [N, C], got ", logits.sizes());
  const int64_t c = logits.size(1);
  const auto flat = logits.dim() == 4 ? logits.permute({0, 2, 3, 1}).reshape({-1, c}) : logits;
  TORCH_CHECK(classes.numel() == flat.size(0), "GHM loss: classes ", classes.sizes(), " have ",
              classes.numel(), " elements but logits ", logits.sizes(), " have ", flat.size(0),
              " pixels");
  TORCH_CHECK(!at::isFloatingType(classes.scalar_type()),
              "GHM loss: classes must be integer class indices, got ", classes.scalar_type());
  const auto target = classes.reshape({-1}).to(at::kLong);
  // One host sync per step; a bad index would otherwise fail deep inside gather on CUDA.
  TORCH_CHECK(!(target.lt(0) | target.ge(c)).any().item<bool>(),
              "GHM loss: class indices must be in [0, ", c, ")");

  const auto log_p = at::log_softmax(flat, 1).gather(1, target.unsqueeze(1)).squeeze(1);
  // Binned in float32 like the reference, whatever precision the logits come in.
  const auto p =
      at::softmax(flat.detach().to(at::kFloat), 1).gather(1, target.unsqueeze(1)).squeeze(1);
  const auto g = (1.0 - p).abs();

  // Bin i holds edges[i] <= g < edges[i + 1]; the last edge is nudged past 1 so g = 1 has a bin.
  auto edges = at::arange(options_.bins + 1, g.options()) / static_cast<double>(options_.bins);
  edges[options_.bins].add_(1e-6);
  const auto bin = (at::bucketize(g, edges, /*out_int32=*/false, /*right=*/true) - 1)
                       .clamp(0, options_.bins - 1);
  const auto counts = at::bincount(bin, {}, options_.bins).to(at::kDouble);
  const auto nonempty = counts.gt(0);

  // Kept on the device, as tensors, so no host round-trip per step.
  acc_ = acc_.to(g.device());
  at::Tensor density;
  if (options_.momentum > 0.0) {
    acc_ = at::where(nonempty, options_.momentum * acc_ + (1.0 - options_.momentum) * counts, acc_);
    density = acc_;
  } else {
    density = counts;
  }
  const auto bin_weight =
      at::where(nonempty, 1.0 / density.clamp_min(1e-12), at::zeros_like(density));
  auto weights = bin_weight.index_select(0, bin) / nonempty.sum().clamp_min(1).to(at::kDouble);
  if (options_.normalize) weights = weights / weights.sum().clamp_min(1e-12);
  return -(weights.to(log_p.scalar_type()) * log_p).sum();
}

}  // namespace semat::losses
