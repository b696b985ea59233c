// Fused batch_norm2d + activation kernels; the design is described in batch_norm2d.h, the split plan, traversal and
// per-element math live in batch_norm2d_plan.h (shared with the host tests).
#include "kernels/cuda/batch_norm2d.h"

#include <cub/block/block_reduce.cuh>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/batch_norm2d_plan.h"
#include "kernels/cuda/check.h"

namespace gancu::cuda {
namespace {

using detail::BnChannelConsts;
using detail::BnChannelWalk;
using detail::BnSplitPlan;
using detail::BnWalkShape;
using detail::GradSums;
using detail::kBackwardSums;
using detail::kBnBlocksPerSm;
using detail::kBnThreads;
using detail::kForwardSums;
using detail::ShiftedSums;

// ---- vector loads -------------------------------------------------------------------------------------------------

// kVec consecutive floats of one row; kVec = 4 is used when every row of the channel starts 16-byte aligned.
template <int kVec> struct Floats {
  float v[kVec];
};
template <int kVec> __device__ __forceinline__ Floats<kVec> load(const float* base, int64_t i) {
  Floats<kVec> r;
  if constexpr (kVec == 4) {
    const float4 q = __ldg(reinterpret_cast<const float4*>(base + i));
    r.v[0] = q.x; r.v[1] = q.y; r.v[2] = q.z; r.v[3] = q.w;
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) r.v[k] = __ldg(base + i + k);
  }
  return r;
}
template <int kVec> __device__ __forceinline__ void store(float* base, int64_t i, const Floats<kVec>& r) {
  if constexpr (kVec == 4) {
    *reinterpret_cast<float4*>(base + i) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) base[i + k] = r.v[k];
  }
}

struct Plus {
  template <class T> __device__ __forceinline__ T operator()(const T& a, const T& b) const { return a + b; }
};

// ---- one block's share of a channel: units [first, last) of the walk, strided over the block's threads -----------

template <int kVec>
__device__ __forceinline__ ShiftedSums split_sums(const BnChannelWalk& walk, const float* x, double pivot,
                                                  int first, int last) {
  ShiftedSums s{0.0, 0.0};
#pragma unroll 4
  for (int u = first + int(threadIdx.x); u < last; u += kBnThreads) {
    const Floats<kVec> v = load<kVec>(x, walk.offset(u));
#pragma unroll
    for (int j = 0; j < kVec; ++j) s.add(v.v[j], pivot);
  }
  return s;
}

template <Activation kAct, int kVec>
__device__ __forceinline__ void normalize_split(const BnChannelWalk& walk, const float* x, float* y,
                                                const BnChannelConsts& k, int first, int last) {
#pragma unroll 4
  for (int u = first + int(threadIdx.x); u < last; u += kBnThreads) {
    const int64_t i = walk.offset(u);
    Floats<kVec> v = load<kVec>(x, i);
#pragma unroll
    for (int j = 0; j < kVec; ++j) v.v[j] = detail::activate<kAct>(detail::pre_activation(v.v[j], k), k.slope);
    store<kVec>(y, i, v);
  }
}

template <Activation kAct, int kVec>
__device__ __forceinline__ GradSums split_grad_sums(const BnChannelWalk& walk, const float* x, const float* dy,
                                                    const BnChannelConsts& k, int first, int last) {
  GradSums s{0.0, 0.0, 0.0};
#pragma unroll 4
  for (int u = first + int(threadIdx.x); u < last; u += kBnThreads) {
    const int64_t i = walk.offset(u);
    const Floats<kVec> xv = load<kVec>(x, i), dyv = load<kVec>(dy, i);
#pragma unroll
    for (int j = 0; j < kVec; ++j) detail::add_grad<kAct>(s, xv.v[j], dyv.v[j], k);
  }
  return s;
}

// ---- kernels (grid: x = channel, y = split of the channel; kBnThreads threads) ------------------------------------

// Pass 2 of a split channel walks the blocks in the reverse of pass 1's order (blocks start roughly in index order):
// what pass 1 read last is the likeliest to be still in L2, and DCGAN's widest backward (x and dy of 128x64x32x32,
// 64 MB) exceeds the H200's L2.
struct BlockOf {
  int channel, split;
};
template <bool kReversed> __device__ __forceinline__ BlockOf block_of() {
  if constexpr (kReversed) return BlockOf{int(gridDim.x - 1 - blockIdx.x), int(gridDim.y - 1 - blockIdx.y)};
  else return BlockOf{int(blockIdx.x), int(blockIdx.y)};
}

struct ForwardArgs {
  double eps;
  float momentum, leaky_slope;
  const float* prelu_slope;
  const float* x;
  const float* gamma;
  const float* beta;
  float* running_mean;
  float* running_var;
  float* y;
  float* save_mean;
  float* save_invstd;
  double* partials;  // [channels][splits][kForwardSums]; unused with one split
};

struct BackwardArgs {
  float leaky_slope;
  const float* prelu_slope;
  const float* dy;
  const float* x;
  const float* gamma;
  const float* beta;
  const float* save_mean;
  const float* save_invstd;
  float* dx;
  float* dgamma;
  float* dbeta;
  float* dprelu_slope;
  double* partials;  // [channels][splits][kBackwardSums]; unused with one split
};

__device__ __forceinline__ double* partial_of(double* partials, const BnSplitPlan& plan, int c, int split, int sums) {
  return partials + (int64_t(c) * plan.splits + split) * sums;
}

// Pass 1 of a split channel: Σd, Σd² of this block's share, to the workspace.
template <int kVec>
__global__ void __launch_bounds__(kBnThreads, kBnBlocksPerSm)
    forward_partials_kernel(BnSplitPlan plan, BnWalkShape shape, ForwardArgs a) {
  using BlockReduce = cub::BlockReduce<ShiftedSums, kBnThreads>;
  __shared__ typename BlockReduce::TempStorage reduce_storage;
  const int c = int(blockIdx.x), split = int(blockIdx.y);
  const BnChannelWalk walk = shape.channel(c);
  const float pivot = __ldg(a.x + walk.channel_offset);  // the channel's first value, k = 0
  const ShiftedSums mine = split_sums<kVec>(walk, a.x, pivot, plan.begin(split) / kVec, plan.end(split) / kVec);
  const ShiftedSums total = BlockReduce(reduce_storage).Reduce(mine, Plus());
  if (threadIdx.x == 0) {
    double* out = partial_of(a.partials, plan, c, split, kForwardSums);
    out[0] = total.sum;
    out[1] = total.sum_sq;
  }
}

// The channel's statistics, then y for this block's share. kOneSplit: the block reduces its (whole) channel itself;
// otherwise it merges the channel's partials, one per thread, in the fixed tree order of cub::BlockReduce, so every
// block of the channel gets bit-identical statistics. Block 0 of the channel writes the saved and running statistics.
template <Activation kAct, int kVec, bool kOneSplit>
__global__ void __launch_bounds__(kBnThreads, kBnBlocksPerSm)
    forward_normalize_kernel(BnSplitPlan plan, BnWalkShape shape, ForwardArgs a) {
  using BlockReduce = cub::BlockReduce<ShiftedSums, kBnThreads>;
  __shared__ typename BlockReduce::TempStorage reduce_storage;
  __shared__ float shared_mean, shared_invstd;
  const BlockOf block = block_of<!kOneSplit>();
  const int c = block.channel, split = block.split;
  const BnChannelWalk walk = shape.channel(c);
  const int first = plan.begin(split) / kVec, last = plan.end(split) / kVec;
  const float pivot = __ldg(a.x + walk.channel_offset);

  ShiftedSums mine{0.0, 0.0};
  if constexpr (kOneSplit) {
    mine = split_sums<kVec>(walk, a.x, pivot, first, last);
  } else if (int(threadIdx.x) < plan.splits) {
    const double* in = partial_of(a.partials, plan, c, int(threadIdx.x), kForwardSums);
    mine = ShiftedSums{in[0], in[1]};
  }
  const ShiftedSums total = BlockReduce(reduce_storage).Reduce(mine, Plus());
  if (threadIdx.x == 0) {
    const detail::ChannelMoments m = detail::channel_moments(total, pivot, plan.count);
    const detail::SavedStats stats = detail::saved_stats(m, a.eps);
    shared_mean = stats.mean;
    shared_invstd = stats.invstd;
    if (split == 0) {
      a.save_mean[c] = stats.mean;
      a.save_invstd[c] = stats.invstd;
      if (a.running_mean != nullptr)
        a.running_mean[c] = detail::running_update(a.running_mean[c], stats.mean, a.momentum);
      if (a.running_var != nullptr)
        a.running_var[c] = detail::running_update(a.running_var[c], float(m.unbiased_var), a.momentum);
    }
  }
  __syncthreads();

  const BnChannelConsts k = detail::train_consts<kAct>(detail::SavedStats{shared_mean, shared_invstd}, a.gamma[c],
                                                       a.beta[c], a.leaky_slope,
                                                       kAct == Activation::kPrelu ? a.prelu_slope[c] : 0.0f);
  normalize_split<kAct, kVec>(walk, a.x, a.y, k, first, last);
}

// The constants forward used for channel c, rebuilt from the saved statistics (same floats, same products).
template <Activation kAct> __device__ __forceinline__ BnChannelConsts backward_consts(const BackwardArgs& a, int c) {
  return detail::train_consts<kAct>(detail::SavedStats{a.save_mean[c], a.save_invstd[c]}, a.gamma[c],
                                    kAct == Activation::kNone ? 0.0f : a.beta[c], a.leaky_slope,
                                    kAct == Activation::kPrelu ? a.prelu_slope[c] : 0.0f);
}

// Pass 1 of a split channel: this block's Σg, Σg·x̂ (and PReLU's Σz·dy) to the workspace.
template <Activation kAct, int kVec>
__global__ void __launch_bounds__(kBnThreads, kBnBlocksPerSm)
    backward_partials_kernel(BnSplitPlan plan, BnWalkShape shape, BackwardArgs a) {
  using BlockReduce = cub::BlockReduce<GradSums, kBnThreads>;
  __shared__ typename BlockReduce::TempStorage reduce_storage;
  const int c = int(blockIdx.x), split = int(blockIdx.y);
  const BnChannelConsts k = backward_consts<kAct>(a, c);
  const GradSums mine = split_grad_sums<kAct, kVec>(shape.channel(c), a.x, a.dy, k, plan.begin(split) / kVec,
                                                    plan.end(split) / kVec);
  const GradSums total = BlockReduce(reduce_storage).Reduce(mine, Plus());
  if (threadIdx.x == 0) {
    double* out = partial_of(a.partials, plan, c, split, kBackwardSums);
    out[0] = total.g;
    out[1] = total.g_xhat;
    out[2] = total.slope;
  }
}

// The channel's gradient sums (reduced here or merged from the partials, as in forward_normalize_kernel), then dx for
// this block's share; block 0 of the channel writes dgamma, dbeta and the PReLU slope's gradient.
template <Activation kAct, int kVec, bool kOneSplit>
__global__ void __launch_bounds__(kBnThreads, kBnBlocksPerSm)
    backward_dx_kernel(BnSplitPlan plan, BnWalkShape shape, BackwardArgs a) {
  using BlockReduce = cub::BlockReduce<GradSums, kBnThreads>;
  __shared__ typename BlockReduce::TempStorage reduce_storage;
  __shared__ float shared_mean_g, shared_mean_g_xhat;
  const BlockOf block = block_of<!kOneSplit>();
  const int c = block.channel, split = block.split;
  const BnChannelWalk walk = shape.channel(c);
  const int first = plan.begin(split) / kVec, last = plan.end(split) / kVec;
  const BnChannelConsts k = backward_consts<kAct>(a, c);

  GradSums mine{0.0, 0.0, 0.0};
  if constexpr (kOneSplit) {
    mine = split_grad_sums<kAct, kVec>(walk, a.x, a.dy, k, first, last);
  } else if (int(threadIdx.x) < plan.splits) {
    const double* in = partial_of(a.partials, plan, c, int(threadIdx.x), kBackwardSums);
    mine = GradSums{in[0], in[1], in[2]};
  }
  const GradSums total = BlockReduce(reduce_storage).Reduce(mine, Plus());
  if (threadIdx.x == 0) {
    shared_mean_g = detail::channel_mean(total.g, plan.count);
    shared_mean_g_xhat = detail::channel_mean(total.g_xhat, plan.count);
    if (split == 0) {
      a.dbeta[c] = float(total.g);
      a.dgamma[c] = float(total.g_xhat);
      if constexpr (kAct == Activation::kPrelu) a.dprelu_slope[c] = float(total.slope);
    }
  }
  __syncthreads();

  const float mean_g = shared_mean_g, mean_g_xhat = shared_mean_g_xhat;
#pragma unroll 4
  for (int u = first + int(threadIdx.x); u < last; u += kBnThreads) {
    const int64_t i = walk.offset(u);
    const Floats<kVec> xv = load<kVec>(a.x, i), dyv = load<kVec>(a.dy, i);
    Floats<kVec> out;
#pragma unroll
    for (int j = 0; j < kVec; ++j) out.v[j] = detail::input_grad<kAct>(xv.v[j], dyv.v[j], k, mean_g, mean_g_xhat);
    store<kVec>(a.dx, i, out);
  }
}

// Inference is a per-element affine map: the same split grid, constants once per thread, no reduction.
template <Activation kAct, int kVec>
__global__ void __launch_bounds__(kBnThreads, kBnBlocksPerSm)
    forward_infer_kernel(BnSplitPlan plan, BnWalkShape shape, float eps, float leaky_slope, const float* prelu_slope,
                         const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta,
                         const float* __restrict__ running_mean, const float* __restrict__ running_var,
                         float* __restrict__ y) {
  const int c = int(blockIdx.x), split = int(blockIdx.y);
  BnChannelConsts k;
  k.mean = running_mean[c];
  k.invstd = 0.0f;  // unused
  k.scale = gamma[c] / sqrtf(running_var[c] + eps);
  k.shift = beta[c];
  k.slope = detail::negative_slope<kAct>(leaky_slope, kAct == Activation::kPrelu ? prelu_slope[c] : 0.0f);
  normalize_split<kAct, kVec>(shape.channel(c), x, y, k, plan.begin(split) / kVec, plan.end(split) / kVec);
}

// ---- host side --------------------------------------------------------------------------------------------------

void check_params(const BatchNorm2dParams& p, const BnActivation& act, const char* what) {
  if (p.batch < 1 || p.channels < 1 || p.spatial < 1)
    throw std::invalid_argument(std::string(what) + ": batch, channels and spatial must be ≥ 1");
  if (int64_t(p.batch) * p.spatial > detail::kBnMaxChannelValues)
    throw std::invalid_argument(std::string(what) + ": more than 2^30 values per channel");
  if (!(p.eps >= 0)) throw std::invalid_argument(std::string(what) + ": eps must be ≥ 0");
  if (act.kind == Activation::kPrelu && act.prelu_slope == nullptr)
    throw std::invalid_argument(std::string(what) + ": PReLU needs its slope pointer");
}

bool aligned(const void* ptr, size_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; }

void check_workspace(const BnSplitPlan& plan, void* workspace, const char* what) {
  if (plan.splits > 1 && (workspace == nullptr || !aligned(workspace, alignof(double))))
    throw std::invalid_argument(std::string(what) + ": needs an 8-byte aligned workspace of " +
                                "batch_norm2d_*_workspace_bytes(params) bytes");
}

dim3 grid_of(const BnSplitPlan& plan) { return dim3(unsigned(plan.channels), unsigned(plan.splits)); }

// Picks the kernel instantiation for the activation and vector width known only at run time.
template <template <Activation, int> class Launcher, class... Args>
void dispatch(Activation kind, bool vec4, Args&&... args) {
  switch (kind) {
    case Activation::kNone:
      return vec4 ? Launcher<Activation::kNone, 4>::run(args...) : Launcher<Activation::kNone, 1>::run(args...);
    case Activation::kRelu:
      return vec4 ? Launcher<Activation::kRelu, 4>::run(args...) : Launcher<Activation::kRelu, 1>::run(args...);
    case Activation::kLeakyRelu:
      return vec4 ? Launcher<Activation::kLeakyRelu, 4>::run(args...)
                  : Launcher<Activation::kLeakyRelu, 1>::run(args...);
    case Activation::kPrelu:
      return vec4 ? Launcher<Activation::kPrelu, 4>::run(args...) : Launcher<Activation::kPrelu, 1>::run(args...);
  }
  throw std::invalid_argument("batch_norm2d: unknown activation");
}

template <Activation kAct, int kVec> struct ForwardTrainLauncher {
  static void run(const BnSplitPlan& plan, const BnWalkShape& shape, const ForwardArgs& a, cudaStream_t stream) {
    if (plan.splits == 1) {
      forward_normalize_kernel<kAct, kVec, true><<<grid_of(plan), kBnThreads, 0, stream>>>(plan, shape, a);
      GANCU_CUDA_CHECK_LAUNCH();
      return;
    }
    forward_partials_kernel<kVec><<<grid_of(plan), kBnThreads, 0, stream>>>(plan, shape, a);
    GANCU_CUDA_CHECK_LAUNCH();
    forward_normalize_kernel<kAct, kVec, false><<<grid_of(plan), kBnThreads, 0, stream>>>(plan, shape, a);
    GANCU_CUDA_CHECK_LAUNCH();
  }
};

template <Activation kAct, int kVec> struct BackwardLauncher {
  static void run(const BnSplitPlan& plan, const BnWalkShape& shape, const BackwardArgs& a, cudaStream_t stream) {
    if (plan.splits == 1) {
      backward_dx_kernel<kAct, kVec, true><<<grid_of(plan), kBnThreads, 0, stream>>>(plan, shape, a);
      GANCU_CUDA_CHECK_LAUNCH();
      return;
    }
    backward_partials_kernel<kAct, kVec><<<grid_of(plan), kBnThreads, 0, stream>>>(plan, shape, a);
    GANCU_CUDA_CHECK_LAUNCH();
    backward_dx_kernel<kAct, kVec, false><<<grid_of(plan), kBnThreads, 0, stream>>>(plan, shape, a);
    GANCU_CUDA_CHECK_LAUNCH();
  }
};

struct InferArgs {
  float eps, leaky_slope;
  const float *prelu_slope, *x, *gamma, *beta, *running_mean, *running_var;
  float* y;
};
template <Activation kAct, int kVec> struct InferLauncher {
  static void run(const BnSplitPlan& plan, const BnWalkShape& shape, const InferArgs& a, cudaStream_t stream) {
    forward_infer_kernel<kAct, kVec><<<grid_of(plan), kBnThreads, 0, stream>>>(
        plan, shape, a.eps, a.leaky_slope, a.prelu_slope, a.x, a.gamma, a.beta, a.running_mean, a.running_var, a.y);
    GANCU_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace

size_t batch_norm2d_forward_train_workspace_bytes(const BatchNorm2dParams& p) {
  check_params(p, {}, "batch_norm2d_forward_train_workspace_bytes");
  return size_t(detail::bn_partial_doubles(detail::plan_batch_norm2d(p), kForwardSums)) * sizeof(double);
}

size_t batch_norm2d_backward_workspace_bytes(const BatchNorm2dParams& p) {
  check_params(p, {}, "batch_norm2d_backward_workspace_bytes");
  return size_t(detail::bn_partial_doubles(detail::plan_batch_norm2d(p), kBackwardSums)) * sizeof(double);
}

void batch_norm2d_forward_train(const BatchNorm2dParams& p, const BnActivation& act, const float* x, const float* gamma,
                                const float* beta, float* running_mean, float* running_var, float* y, float* save_mean,
                                float* save_invstd, void* workspace, cudaStream_t stream) {
  check_params(p, act, "batch_norm2d_forward_train");
  // PyTorch refuses this too: the unbiased variance of a single value is undefined.
  if (int64_t(p.batch) * p.spatial < 2)
    throw std::invalid_argument("batch_norm2d training needs more than one value per channel");
  const BnSplitPlan plan = detail::plan_batch_norm2d(p);
  check_workspace(plan, workspace, "batch_norm2d_forward_train");
  const bool vec4 = plan.unit == 4 && aligned(x, 16) && aligned(y, 16);
  const ForwardArgs a{p.eps,        float(p.momentum), act.leaky_slope, act.prelu_slope, x,
                      gamma,        beta,              running_mean,    running_var,     y,
                      save_mean,    save_invstd,       static_cast<double*>(workspace)};
  dispatch<ForwardTrainLauncher>(act.kind, vec4, plan, detail::make_walk_shape(p, vec4 ? 4 : 1), a, stream);
}

void batch_norm2d_backward(const BatchNorm2dParams& p, const BnActivation& act, const float* dy, const float* x,
                           const float* gamma, const float* beta, const float* save_mean, const float* save_invstd,
                           float* dx, float* dgamma, float* dbeta, float* dprelu_slope, void* workspace,
                           cudaStream_t stream) {
  check_params(p, act, "batch_norm2d_backward");
  if (act.kind == Activation::kPrelu && dprelu_slope == nullptr)
    throw std::invalid_argument("batch_norm2d_backward: PReLU needs dprelu_slope");
  if (act.kind != Activation::kNone && beta == nullptr)
    throw std::invalid_argument("batch_norm2d_backward: a fused activation needs beta");
  const BnSplitPlan plan = detail::plan_batch_norm2d(p);
  check_workspace(plan, workspace, "batch_norm2d_backward");
  const bool vec4 = plan.unit == 4 && aligned(x, 16) && aligned(dy, 16) && aligned(dx, 16);
  const BackwardArgs a{act.leaky_slope, act.prelu_slope, dy,     x,     gamma,        beta, save_mean,
                       save_invstd,     dx,              dgamma, dbeta, dprelu_slope, static_cast<double*>(workspace)};
  dispatch<BackwardLauncher>(act.kind, vec4, plan, detail::make_walk_shape(p, vec4 ? 4 : 1), a, stream);
}

void batch_norm2d_forward_infer(const BatchNorm2dParams& p, const BnActivation& act, const float* x,
                                const float* gamma, const float* beta, const float* running_mean,
                                const float* running_var, float* y, cudaStream_t stream) {
  check_params(p, act, "batch_norm2d_forward_infer");
  const BnSplitPlan plan = detail::plan_batch_norm2d(p);
  const bool vec4 = plan.unit == 4 && aligned(x, 16) && aligned(y, 16);
  const InferArgs a{float(p.eps), act.leaky_slope, act.prelu_slope, x, gamma, beta, running_mean, running_var, y};
  dispatch<InferLauncher>(act.kind, vec4, plan, detail::make_walk_shape(p, vec4 ? 4 : 1), a, stream);
}

}  // namespace gancu::cuda
