// Data-parallel training over several processes (one per GPU, or several CPU processes): c10d
// process groups from LibTorch, driven by hand because Python's DistributedDataParallel does not
// exist in C++. Only SEMat's ~18M parameters train, so one flattened all-reduce of their
// gradients per step is all the communication needed. Internal (torch) header.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "semat/train/trainer.h"

namespace semat::train {

class Distributed {
 public:
  /// Joins the group `env` describes: rank 0 hosts the TCP store at master_addr:master_port.
  /// NCCL for CUDA devices when LibTorch has it, Gloo otherwise. Throws ConfigError when this
  /// build has no c10d, StateError when the rendezvous fails (naming the address).
  Distributed(const DistributedEnv& env, bool cuda);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const { return env_.rank; }
  int world() const { return env_.world; }

  /// Every tensor becomes the mean of its values over the ranks (in place). The tensors are
  /// packed into one buffer per dtype, so this is one collective per dtype.
  void allreduce_mean(const std::vector<torch::Tensor>& tensors);
  /// Max and min of one number over the ranks.
  std::pair<double, double> max_min(double value);
  void barrier();

 private:
  struct Impl;
  DistributedEnv env_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semat::train
