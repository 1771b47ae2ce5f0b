#include "distributed.h"

#include <chrono>
#include <cstdlib>
#include <map>

#include <torch/torch.h>

#include "semat/core/error.h"

// The Gloo headers (found at configure time) are not enough: LibTorch itself must have been
// built with Gloo, which it says through USE_C10D_GLOO.
#if defined(SEMAT_HAVE_C10D) && defined(USE_C10D_GLOO)
#define SEMAT_C10D 1
#endif

#ifdef SEMAT_C10D
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace semat::train {
namespace {

const char* env_or(const char* a, const char* b) {
  const char* v = std::getenv(a);
  return v && *v ? v : (b ? std::getenv(b) : nullptr);
}

int env_int(const char* a, const char* b, int fallback) {
  const char* v = env_or(a, b);
  if (!v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (end == v || *end != '\0')
    throw ConfigError(std::string("environment variable ") + a + " is '" + v + "': expected an integer");
  return static_cast<int>(x);
}

}  // namespace

DistributedEnv distributed_env_from_environment() {
  DistributedEnv e;
  e.world = env_int("WORLD_SIZE", "SLURM_NTASKS", 1);
  e.rank = env_int("RANK", "SLURM_PROCID", 0);
  e.local_rank = env_int("LOCAL_RANK", "SLURM_LOCALID", 0);
  if (const char* a = env_or("MASTER_ADDR", nullptr)) e.master_addr = a;
  e.master_port = env_int("MASTER_PORT", nullptr, e.master_port);
  SEMAT_CHECK(e.world >= 1 && e.rank >= 0 && e.rank < e.world, ConfigError,
              "RANK " << e.rank << " / WORLD_SIZE " << e.world << ": need 0 <= RANK < WORLD_SIZE");
  return e;
}

#ifdef SEMAT_C10D

struct Distributed::Impl {
  torch::Device device{torch::kCPU};  // where the collectives' buffers live (NCCL: this rank's GPU)
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef USE_C10D_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif

  void allreduce(std::vector<at::Tensor>& t, c10d::ReduceOp op) {
    c10d::AllreduceOptions o;
    o.reduceOp = op;
#ifdef USE_C10D_NCCL
    if (nccl) {
      nccl->allreduce(t, o)->wait();
      return;
    }
#endif
    gloo->allreduce(t, o)->wait();
  }
};

Distributed::Distributed(const DistributedEnv& env, bool cuda) : env_(env), impl_(std::make_unique<Impl>()) {
  // Evaluation and checkpoints run on rank 0 while the others wait in the next collective.
  const auto timeout = std::chrono::minutes(60);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env.world);
    so.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::minutes(5));
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
#ifdef USE_C10D_NCCL
    if (cuda) {
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(env.local_rank));
      impl_->device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = timeout;
      impl_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world, o);
      return;
    }
#else
    SEMAT_CHECK(!cuda, ConfigError,
                "this LibTorch has no NCCL: several CUDA processes would fall back to Gloo over host memory; "
                "rebuild semat against a LibTorch with NCCL");
#endif
    auto o = c10d::ProcessGroupGloo::Options::create(timeout);
    // Each rank binds its own interface: GLOO_SOCKET_IFNAME as in PyTorch, loopback for a
    // single-machine run, else the address this host's name resolves to.
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost")
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    o->threads = 2;
    impl_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world, o);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw StateError("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world) +
                     ": cannot join the process group at " + env.master_addr + ":" +
                     std::to_string(env.master_port) + " (" + e.what() +
                     "): check MASTER_ADDR / MASTER_PORT and that every rank started");
  }
}

Distributed::~Distributed() = default;

void Distributed::allreduce_mean(const std::vector<torch::Tensor>& tensors) {
  if (env_.world == 1 || tensors.empty()) return;
  torch::NoGradGuard no_grad;
  // One bucket per dtype (gradients are float32, GHM state float64).
  std::map<c10::ScalarType, std::vector<torch::Tensor>> by_type;
  for (const auto& t : tensors) by_type[t.scalar_type()].push_back(t);
  for (auto& [type, ts] : by_type) {
    std::vector<torch::Tensor> flat_parts;
    for (const auto& t : ts) flat_parts.push_back(t.reshape({-1}));
    std::vector<at::Tensor> bucket{torch::cat(flat_parts).to(impl_->device)};
    impl_->allreduce(bucket, c10d::ReduceOp::SUM);
    bucket[0].div_(env_.world);
    int64_t offset = 0;
    for (auto& t : ts) {
      t.copy_(bucket[0].narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}

std::pair<double, double> Distributed::max_min(double value) {
  if (env_.world == 1) return {value, value};
  const auto one = torch::tensor({value}, torch::kDouble).to(impl_->device);
  std::vector<at::Tensor> hi{one.clone()}, lo{one.clone()};
  impl_->allreduce(hi, c10d::ReduceOp::MAX);
  impl_->allreduce(lo, c10d::ReduceOp::MIN);
  return {hi[0].item<double>(), lo[0].item<double>()};
}

void Distributed::barrier() {
  if (env_.world == 1) return;
  // A tiny all-reduce doubles as a barrier on every backend.
  std::vector<at::Tensor> t{torch::zeros({1}, torch::TensorOptions().device(impl_->device))};
  impl_->allreduce(t, c10d::ReduceOp::SUM);
}

#else  // no c10d: Gloo headers missing at configure time, or a LibTorch without Gloo

struct Distributed::Impl {};

Distributed::Distributed(const DistributedEnv& env, bool) : env_(env) {
  SEMAT_CHECK(env.world == 1, ConfigError,
              "WORLD_SIZE is " << env.world
                               << " but this semat was built without c10d (install libgloo-dev and rebuild)");
}
Distributed::~Distributed() = default;
void Distributed::allreduce_mean(const std::vector<torch::Tensor>&) {}
std::pair<double, double> Distributed::max_min(double value) { return {value, value}; }
void Distributed::barrier() {}

#endif

}  // namespace semat::train
