// conv2d on the implicit-GEMM engine, and the three shared passes (correlate, its adjoint, the weight gradient) that
// conv_transpose2d.cu reuses; conv_engine.cuh plans and builds them, this file runs them. All engine instantiations
// live here, each × 2 maths: the gather on 2 tiles, the weight gradient and the three dense layouts on the 64 tile.
#include "kernels/cuda/conv2d.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_engine.cuh"
#include "kernels/cuda/conv_igemm.cuh"

namespace gancu::cuda {
namespace detail {
namespace {

using LargeTile = TileShape<kLargeTile, kLargeTile>;
using SmallTile = TileShape<kSmallTile, kSmallTile>;

template <class Problem, class Tile>
void launch_in_mode(MathMode mode, const ProblemSet<Problem>& set, cudaStream_t stream) {
  if (mode == MathMode::kTf32)
    launch_implicit_gemm<Problem, Tile, MathMode::kTf32>(set, stream);
  else
    launch_implicit_gemm<Problem, Tile, MathMode::kFp32>(set, stream);
}

__global__ void sum_splits_kernel(const SplitSum sum) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < sum.count; i += int64_t(gridDim.x) * blockDim.x)
    sum.out[i] = sum.value(i);
}

// The engine launches of a pass, then its split sum. Only the gather has the 128×128 tile.
template <class Problem> void run_on_gpu(MathMode mode, const GemmPass<Problem>& pass, cudaStream_t stream) {
  for (const ProblemSet<Problem>& set : pass.launches) {
    if constexpr (std::is_same_v<Problem, ConvGatherProblem>) {
      if (pass.large_tile) {
        launch_in_mode<Problem, LargeTile>(mode, set, stream);
        continue;
      }
    }
    launch_in_mode<Problem, SmallTile>(mode, set, stream);
  }
  if (pass.sum.splits > 1 && pass.sum.count > 0) {
    const int blocks = int(std::min<int64_t>((pass.sum.count + 255) / 256, 4096));
    sum_splits_kernel<<<blocks, 256, 0, stream>>>(pass.sum);
    GANCU_CUDA_CHECK_LAUNCH();
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
               void* workspace, cudaStream_t stream) {
  correlate_pass(g, x, w, bias, y, workspace, [&](const auto& pass) { run_on_gpu(mode, pass, stream); });
}

void correlate_adjoint(MathMode mode, const ConvGeometry& g, const float* dy, const float* w, const float* bias,
                       float* dx, void* workspace, cudaStream_t stream) {
  adjoint_pass(g, dy, w, bias, dx, workspace, [&](const auto& pass) { run_on_gpu(mode, pass, stream); });
}

void correlate_weight_grad(MathMode mode, const ConvGeometry& g, const float* x, const float* dy, float* dw,
                           void* workspace, cudaStream_t stream) {
  weight_grad_pass(g, x, dy, dw, workspace, [&](const auto& pass) { run_on_gpu(mode, pass, stream); });
}

}  // namespace detail

size_t conv2d_forward_workspace_bytes(const Conv2dParams& p) {
  return detail::correlate_workspace_bytes(detail::geometry_of(p));
}

void conv2d_forward(const Conv2dParams& p, MathMode mode, const float* x, const float* w, const float* bias, float* y,
                    void* workspace, cudaStream_t stream) {
  detail::correlate(mode, detail::geometry_of(p), x, w, bias, y, workspace, stream);
}

size_t conv2d_backward_input_workspace_bytes(const Conv2dParams& p) {
  return detail::adjoint_workspace_bytes(detail::geometry_of(p));
}

void conv2d_backward_input(const Conv2dParams& p, MathMode mode, const float* dy, const float* w, float* dx,
                           void* workspace, cudaStream_t stream) {
  detail::correlate_adjoint(mode, detail::geometry_of(p), dy, w, nullptr, dx, workspace, stream);
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
