// Fused batch_norm2d + activation kernels; the design is described in batch_norm2d.h.
#include "kernels/cuda/batch_norm2d.h"

#include <cub/block/block_reduce.cuh>
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/check.h"

namespace gancu::cuda {
namespace {

constexpr int kThreads = 512;

// ---- per-channel traversal --------------------------------------------------------------------------------------

// kVec consecutive floats of one row; kVec = 4 is used when every row of the channel starts 16-byte aligned.
template <int kVec> struct Floats {
  float v[kVec];
};
template <int kVec> __device__ __forceinline__ Floats<kVec> load(const float* base, int64_t i) {
  Floats<kVec> r;
  if constexpr (kVec == 4) {
    const float4 q = *reinterpret_cast<const float4*>(base + i);
    r.v[0] = q.x; r.v[1] = q.y; r.v[2] = q.z; r.v[3] = q.w;
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) r.v[k] = base[i + k];
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

// Calls f(i) for the first element index i of every kVec-group of channel c, the block's threads striding over the
// batch·spatial/kVec groups (spatial % kVec == 0 is guaranteed by the caller).
template <int kVec, class F>
__device__ __forceinline__ void for_each_group(const BatchNorm2dParams& p, int c, F&& f) {
  const int groups_per_row = p.spatial / kVec;
  const int64_t groups = int64_t(p.batch) * groups_per_row;
  for (int64_t k = threadIdx.x; k < groups; k += blockDim.x) {
    const int64_t n = k / groups_per_row;
    const int s = int(k - n * groups_per_row) * kVec;
    f((n * p.channels + c) * p.spatial + s);
  }
}

// ---- activation -------------------------------------------------------------------------------------------------

// z = (x − mean)·(gamma·invstd) + beta. forward and backward both call this, so backward's recomputed z (and the sign
// that selects the activation branch) is bit-identical to forward's.
__device__ __forceinline__ float pre_activation(float x, float mean, float scale, float beta) {
  return fmaf(x - mean, scale, beta);
}

// Negative-side factor of the activation (the slope for z ≤ 0; PyTorch takes this branch at z == 0).
template <Activation kAct> __device__ __forceinline__ float negative_slope(float leaky, float prelu) {
  if constexpr (kAct == Activation::kNone) return 1.0f;
  if constexpr (kAct == Activation::kRelu) return 0.0f;
  if constexpr (kAct == Activation::kLeakyRelu) return leaky;
  return prelu;
}

template <Activation kAct> __device__ __forceinline__ float activate(float z, float slope) {
  if constexpr (kAct == Activation::kNone) return z;
  else if constexpr (kAct == Activation::kRelu) return z > 0.0f ? z : 0.0f;
  else return z > 0.0f ? z : slope * z;
}

// ---- reductions -------------------------------------------------------------------------------------------------

// Welford running state: count, mean, sum of squared deviations from the mean.
struct Welford {
  float count, mean, m2;
};
__device__ __forceinline__ void welford_add(Welford& w, float x) {
  w.count += 1.0f;
  const float delta = x - w.mean;
  w.mean += delta / w.count;
  w.m2 += delta * (x - w.mean);
}
// Chan et al.'s pairwise merge; exact for empty sides (threads that saw no element).
struct WelfordMerge {
  __device__ __forceinline__ Welford operator()(const Welford& a, const Welford& b) const {
    if (b.count == 0.0f) return a;
    if (a.count == 0.0f) return b;
    const float count = a.count + b.count;
    const float b_share = b.count / count;
    const float delta = b.mean - a.mean;
    return Welford{count, a.mean + delta * b_share, a.m2 + b.m2 + delta * delta * a.count * b_share};
  }
};

// Backward's three per-channel sums.
struct GradSums {
  float g, g_xhat, slope;  // Σg, Σg·x̂, Σ_{z≤0} z·dy (PReLU only)
};
struct GradSumsAdd {
  __device__ __forceinline__ GradSums operator()(const GradSums& a, const GradSums& b) const {
    return GradSums{a.g + b.g, a.g_xhat + b.g_xhat, a.slope + b.slope};
  }
};

// ---- kernels (grid: one block per channel) ----------------------------------------------------------------------

template <Activation kAct, int kVec>
__global__ void __launch_bounds__(kThreads)
    forward_train_kernel(BatchNorm2dParams p, float eps, float momentum, float leaky_slope, const float* prelu_slope,
                         const float* __restrict__ x, const float* __restrict__ gamma,
                         const float* __restrict__ beta, float* running_mean, float* running_var,
                         float* __restrict__ y, float* save_mean, float* save_invstd) {
  using BlockReduce = cub::BlockReduce<Welford, kThreads>;
  __shared__ typename BlockReduce::TempStorage reduce_storage;
  __shared__ float shared_mean, shared_invstd;
  const int c = blockIdx.x;

  Welford w{0.0f, 0.0f, 0.0f};
  for_each_group<kVec>(p, c, [&](int64_t i) {
    const Floats<kVec> v = load<kVec>(x, i);
#pragma unroll
    for (int k = 0; k < kVec; ++k) welford_add(w, v.v[k]);
  });
  const Welford total = BlockReduce(reduce_storage).Reduce(w, WelfordMerge());
  if (threadIdx.x == 0) {
    const float var = total.m2 / total.count;  // biased: what normalisation uses
    const float invstd = 1.0f / sqrtf(var + eps);
    shared_mean = total.mean;
    shared_invstd = invstd;
    save_mean[c] = total.mean;
    save_invstd[c] = invstd;
    if (running_mean != nullptr) running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * total.mean;
    if (running_var != nullptr) {
      const float unbiased = total.m2 / (total.count - 1.0f);
      running_var[c] = (1.0f - momentum) * running_var[c] + momentum * unbiased;
    }
  }
  __syncthreads();

  const float mean = shared_mean;
  const float scale = gamma[c] * shared_invstd;
  const float shift = beta[c];
  const float slope = negative_slope<kAct>(leaky_slope, kAct == Activation::kPrelu ? prelu_slope[c] : 0.0f);
  for_each_group<kVec>(p, c, [&](int64_t i) {
    Floats<kVec> v = load<kVec>(x, i);
#pragma unroll
    for (int k = 0; k < kVec; ++k) v.v[k] = activate<kAct>(pre_activation(v.v[k], mean, scale, shift), slope);
    store<kVec>(y, i, v);
  });
}

template <Activation kAct, int kVec>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(BatchNorm2dParams p, float leaky_slope, const float* prelu_slope, const float* __restrict__ dy,
                    const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta,
                    const float* __restrict__ save_mean, const float* __restrict__ save_invstd,
                    float* __restrict__ dx, float* dgamma, float* dbeta, float* dprelu_slope) {
  using BlockReduce = cub::BlockReduce<GradSums, kThreads>;
  __shared__ typename BlockReduce::TempStorage reduce_storage;
  __shared__ float shared_mean_g, shared_mean_g_xhat;
  const int c = blockIdx.x;
  const float mean = save_mean[c], invstd = save_invstd[c];
  const float scale = gamma[c] * invstd;
  const float shift = kAct == Activation::kNone ? 0.0f : beta[c];  // beta only matters for the activation's branch
  const float slope = negative_slope<kAct>(leaky_slope, kAct == Activation::kPrelu ? prelu_slope[c] : 0.0f);

  // g = dy·act′(z); for PReLU also z·dy on the negative side (the slope's gradient).
  GradSums sums{0.0f, 0.0f, 0.0f};
  for_each_group<kVec>(p, c, [&](int64_t i) {
    const Floats<kVec> xv = load<kVec>(x, i), dyv = load<kVec>(dy, i);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      float g = dyv.v[k];
      if constexpr (kAct != Activation::kNone) {
        const float z = pre_activation(xv.v[k], mean, scale, shift);
        if (!(z > 0.0f)) {
          g *= slope;
          if constexpr (kAct == Activation::kPrelu) sums.slope += z * dyv.v[k];
        }
      }
      sums.g += g;
      sums.g_xhat += g * ((xv.v[k] - mean) * invstd);
    }
  });
  const GradSums total = BlockReduce(reduce_storage).Reduce(sums, GradSumsAdd());
  if (threadIdx.x == 0) {
    const float count = float(int64_t(p.batch) * p.spatial);
    dbeta[c] = total.g;
    dgamma[c] = total.g_xhat;
    if constexpr (kAct == Activation::kPrelu) dprelu_slope[c] = total.slope;
    shared_mean_g = total.g / count;
    shared_mean_g_xhat = total.g_xhat / count;
  }
  __syncthreads();

  // dx = gamma·invstd·(g − mean(g) − x̂·mean(g·x̂)).
  const float mean_g = shared_mean_g, mean_g_xhat = shared_mean_g_xhat;
  for_each_group<kVec>(p, c, [&](int64_t i) {
    const Floats<kVec> xv = load<kVec>(x, i), dyv = load<kVec>(dy, i);
    Floats<kVec> out;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      float g = dyv.v[k];
      if constexpr (kAct != Activation::kNone) {
        if (!(pre_activation(xv.v[k], mean, scale, shift) > 0.0f)) g *= slope;
      }
      const float xhat = (xv.v[k] - mean) * invstd;
      out.v[k] = scale * (g - mean_g - xhat * mean_g_xhat);
    }
    store<kVec>(dx, i, out);
  });
}

// Inference is a per-element affine map, so it is a flat grid-stride loop (no reduction).
template <Activation kAct>
__global__ void forward_infer_kernel(BatchNorm2dParams p, float eps, float leaky_slope, const float* prelu_slope,
                                     const float* __restrict__ x, const float* __restrict__ gamma,
                                     const float* __restrict__ beta, const float* __restrict__ running_mean,
                                     const float* __restrict__ running_var, float* __restrict__ y) {
  const int64_t n = int64_t(p.batch) * p.channels * p.spatial;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int c = int(i / p.spatial % p.channels);
    const float scale = gamma[c] / sqrtf(running_var[c] + eps);
    const float slope = negative_slope<kAct>(leaky_slope, kAct == Activation::kPrelu ? prelu_slope[c] : 0.0f);
    y[i] = activate<kAct>(pre_activation(x[i], running_mean[c], scale, beta[c]), slope);
  }
}

// ---- host side --------------------------------------------------------------------------------------------------

void check_params(const BatchNorm2dParams& p, const BnActivation& act, const char* what) {
  if (p.batch < 1 || p.channels < 1 || p.spatial < 1)
    throw std::invalid_argument(std::string(what) + ": batch, channels and spatial must be ≥ 1");
  if (!(p.eps >= 0)) throw std::invalid_argument(std::string(what) + ": eps must be ≥ 0");
  if (act.kind == Activation::kPrelu && act.prelu_slope == nullptr)
    throw std::invalid_argument(std::string(what) + ": PReLU needs its slope pointer");
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

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
  static void run(const BatchNorm2dParams& p, const BnActivation& act, const float* x, const float* gamma,
                  const float* beta, float* running_mean, float* running_var, float* y, float* save_mean,
                  float* save_invstd, cudaStream_t stream) {
    forward_train_kernel<kAct, kVec><<<p.channels, kThreads, 0, stream>>>(
        p, float(p.eps), float(p.momentum), act.leaky_slope, act.prelu_slope, x, gamma, beta, running_mean,
        running_var, y, save_mean, save_invstd);
    GANCU_CUDA_CHECK_LAUNCH();
  }
};

template <Activation kAct, int kVec> struct BackwardLauncher {
  static void run(const BatchNorm2dParams& p, const BnActivation& act, const float* dy, const float* x,
                  const float* gamma, const float* beta, const float* save_mean, const float* save_invstd, float* dx,
                  float* dgamma, float* dbeta, float* dprelu_slope, cudaStream_t stream) {
    backward_kernel<kAct, kVec><<<p.channels, kThreads, 0, stream>>>(p, act.leaky_slope, act.prelu_slope, dy, x,
                                                                      gamma, beta, save_mean, save_invstd, dx,
                                                                      dgamma, dbeta, dprelu_slope);
    GANCU_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace

void batch_norm2d_forward_train(const BatchNorm2dParams& p, const BnActivation& act, const float* x, const float* gamma,
                                const float* beta, float* running_mean, float* running_var, float* y, float* save_mean,
                                float* save_invstd, cudaStream_t stream) {
  check_params(p, act, "batch_norm2d_forward_train");
  // PyTorch refuses this too: the unbiased variance of a single value is undefined.
  if (int64_t(p.batch) * p.spatial < 2)
    throw std::invalid_argument("batch_norm2d training needs more than one value per channel");
  const bool vec4 = p.spatial % 4 == 0 && aligned16(x) && aligned16(y);
  dispatch<ForwardTrainLauncher>(act.kind, vec4, p, act, x, gamma, beta, running_mean, running_var, y, save_mean,
                                 save_invstd, stream);
}

void batch_norm2d_backward(const BatchNorm2dParams& p, const BnActivation& act, const float* dy, const float* x,
                           const float* gamma, const float* beta, const float* save_mean, const float* save_invstd,
                           float* dx, float* dgamma, float* dbeta, float* dprelu_slope, cudaStream_t stream) {
  check_params(p, act, "batch_norm2d_backward");
  if (act.kind == Activation::kPrelu && dprelu_slope == nullptr)
    throw std::invalid_argument("batch_norm2d_backward: PReLU needs dprelu_slope");
  const bool vec4 = p.spatial % 4 == 0 && aligned16(x) && aligned16(dy) && aligned16(dx);
  dispatch<BackwardLauncher>(act.kind, vec4, p, act, dy, x, gamma, beta, save_mean, save_invstd, dx, dgamma, dbeta,
                             dprelu_slope, stream);
}

void batch_norm2d_forward_infer(const BatchNorm2dParams& p, const BnActivation& act, const float* x,
                                const float* gamma, const float* beta, const float* running_mean,
                                const float* running_var, float* y, cudaStream_t stream) {
  check_params(p, act, "batch_norm2d_forward_infer");
  constexpr int kInferThreads = 256;
  const unsigned blocks = unsigned(std::min<int64_t>((p.size() + kInferThreads - 1) / kInferThreads, 1 << 16));
  const float eps = float(p.eps);
  switch (act.kind) {
    case Activation::kNone:
      forward_infer_kernel<Activation::kNone><<<blocks, kInferThreads, 0, stream>>>(
          p, eps, act.leaky_slope, act.prelu_slope, x, gamma, beta, running_mean, running_var, y);
      break;
    case Activation::kRelu:
      forward_infer_kernel<Activation::kRelu><<<blocks, kInferThreads, 0, stream>>>(
          p, eps, act.leaky_slope, act.prelu_slope, x, gamma, beta, running_mean, running_var, y);
      break;
    case Activation::kLeakyRelu:
      forward_infer_kernel<Activation::kLeakyRelu><<<blocks, kInferThreads, 0, stream>>>(
          p, eps, act.leaky_slope, act.prelu_slope, x, gamma, beta, running_mean, running_var, y);
      break;
    case Activation::kPrelu:
      forward_infer_kernel<Activation::kPrelu><<<blocks, kInferThreads, 0, stream>>>(
          p, eps, act.leaky_slope, act.prelu_slope, x, gamma, beta, running_mean, running_var, y);
      break;
  }
  GANCU_CUDA_CHECK_LAUNCH();
}

}  // namespace gancu::cuda
