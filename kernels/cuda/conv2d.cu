// conv2d on the implicit-GEMM engine, and the three shared passes (correlate, its adjoint, the weight gradient) that
// conv_transpose2d.cu reuses. All engine instantiations live in this file: 2 tiles × 2 maths for the gather problem,
// 1 tile × 2 maths for the weight gradient.
#include "kernels/cuda/conv2d.h"

#include <stdexcept>
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_engine.cuh"
#include "kernels/cuda/conv_igemm.cuh"

namespace gancu::cuda {
namespace detail {
namespace {

using LargeTile = TileShape<128, 128>;
using SmallTile = TileShape<64, 64>;
using WeightGradTile = TileShape<kWeightGradTileM, kWeightGradTileN>;

template <class Problem, class Tile>
void launch_in_mode(MathMode mode, const ProblemSet<Problem>& set, cudaStream_t stream) {
  if (mode == MathMode::kTf32)
    launch_implicit_gemm<Problem, Tile, MathMode::kTf32>(set, stream);
  else
    launch_implicit_gemm<Problem, Tile, MathMode::kFp32>(set, stream);
}

// The 128×128 tile does 4× the work per block; take it only when it still fills the GPU and N is not mostly padding.
void launch_gather(MathMode mode, const ProblemSet<ConvGatherProblem>& set, cudaStream_t stream) {
  int64_t large_blocks = 0;
  for (int i = 0; i < set.count; ++i) {
    const ConvGatherProblem& p = set.items[i];
    large_blocks += int64_t((p.M + LargeTile::BM - 1) / LargeTile::BM) * ((p.N + LargeTile::BN - 1) / LargeTile::BN);
  }
  const bool large = set.count > 0 && set.items[0].N > 64 && large_blocks >= kTargetBlocks;
  if (large)
    launch_in_mode<ConvGatherProblem, LargeTile>(mode, set, stream);
  else
    launch_in_mode<ConvGatherProblem, SmallTile>(mode, set, stream);
}

// Adds the split-K partial sums in a fixed order (deterministic, unlike atomics).
__global__ void sum_splits_kernel(int64_t count, int splits, const float* __restrict__ partial, float* __restrict__ out) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) sum += partial[int64_t(s) * count + i];
    out[i] = sum;
  }
}

constexpr int kBiasThreads = 256;

// One block per channel; each thread sums a strided subset in double, then a fixed-shape tree reduction.
__global__ void __launch_bounds__(kBiasThreads) bias_grad_kernel(int batch, int channels, FastDivmod spatial,
                                                                 const float* __restrict__ dy, float* __restrict__ dbias) {
  const int c = int(blockIdx.x);
  const int total = batch * int(spatial.divisor);
  double sum = 0.0;
  for (int i = int(threadIdx.x); i < total; i += kBiasThreads) {
    int n, s;
    spatial.divmod(i, n, s);
    sum += double(dy[(int64_t(n) * channels + c) * spatial.divisor + s]);
  }
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  __shared__ double warp_sums[kBiasThreads / 32];
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    double block_sum = 0.0;
    for (int w = 0; w < kBiasThreads / 32; ++w) block_sum += warp_sums[w];
    dbias[c] = float(block_sum);
  }
}

}  // namespace

void correlate(MathMode mode, const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y,
               cudaStream_t stream) {
  ProblemSet<ConvGatherProblem> set;
  set.items[0] = make_correlate_problem(g, x, w, bias, y);
  set.count = 1;
  set.k_chunk = set.items[0].K;
  launch_gather(mode, set, stream);
}

void correlate_adjoint(MathMode mode, const ConvGeometry& g, const float* dy, const float* w, const float* bias,
                       float* dx, cudaStream_t stream) {
  // stride² phases, up to four per launch (all of a stride-2 layer at once).
  ProblemSet<ConvGatherProblem> set;
  for (int phase = 0; phase < g.stride * g.stride; ++phase) {
    ConvGatherProblem& p = set.items[set.count++];
    p = make_adjoint_phase_problem(g, phase / g.stride, phase % g.stride, dy, w, bias, dx);
    set.k_chunk = std::max(set.k_chunk, p.K);
    if (set.count == kMaxProblemsPerLaunch || phase + 1 == g.stride * g.stride) {
      launch_gather(mode, set, stream);
      set.count = 0;
      set.k_chunk = 0;
    }
  }
}

size_t weight_grad_workspace_bytes(const ConvGeometry& g) {
  return size_t(weight_grad_workspace_floats(g)) * sizeof(float);
}

void correlate_weight_grad(MathMode mode, const ConvGeometry& g, const float* x, const float* dy, float* dw,
                           void* workspace, cudaStream_t stream) {
  WeightGradProblem p = make_weight_grad_problem(g, x, dy, dw);
  if (p.M == 0 || p.N == 0) return;
  const WeightGradPlan plan = plan_weight_grad(g);
  if (plan.splits > 1) {
    if (workspace == nullptr)
      throw std::invalid_argument("conv weight gradient: needs a workspace of " +
                                  std::to_string(weight_grad_workspace_bytes(g)) + " bytes, got null");
    p.partial = static_cast<float*>(workspace);
  }
  ProblemSet<WeightGradProblem> set;
  set.items[0] = p;
  set.count = 1;
  set.splits = plan.splits;
  set.k_chunk = plan.k_chunk;
  launch_in_mode<WeightGradProblem, WeightGradTile>(mode, set, stream);  // K = 0 still writes zeros
  if (plan.splits > 1) {
    const int64_t count = int64_t(p.M) * p.N;
    const int blocks = int(std::min<int64_t>((count + 255) / 256, 4096));
    sum_splits_kernel<<<blocks, 256, 0, stream>>>(count, plan.splits, p.partial, dw);
    GANCU_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace detail

void conv2d_forward(const Conv2dParams& p, MathMode mode, const float* x, const float* w, const float* bias, float* y,
                    cudaStream_t stream) {
  detail::correlate(mode, detail::geometry_of(p), x, w, bias, y, stream);
}

void conv2d_backward_input(const Conv2dParams& p, MathMode mode, const float* dy, const float* w, float* dx,
                           cudaStream_t stream) {
  detail::correlate_adjoint(mode, detail::geometry_of(p), dy, w, nullptr, dx, stream);
}

size_t conv2d_backward_weight_workspace_bytes(const Conv2dParams& p) {
  return detail::weight_grad_workspace_bytes(detail::geometry_of(p));
}

void conv2d_backward_weight(const Conv2dParams& p, MathMode mode, const float* x, const float* dy, float* dw,
                            void* workspace, cudaStream_t stream) {
  detail::correlate_weight_grad(mode, detail::geometry_of(p), x, dy, dw, workspace, stream);
}

void bias2d_backward(int batch, int channels, int spatial, const float* dy, float* dbias, cudaStream_t stream) {
  if (channels == 0) return;
  if (batch == 0 || spatial == 0) {
    GANCU_CUDA_CHECK(cudaMemsetAsync(dbias, 0, sizeof(float) * size_t(channels), stream));
    return;
  }
  detail::bias_grad_kernel<<<channels, detail::kBiasThreads, 0, stream>>>(batch, channels, detail::FastDivmod(spatial),
                                                                          dy, dbias);
  GANCU_CUDA_CHECK_LAUNCH();
}

}  // namespace gancu::cuda
