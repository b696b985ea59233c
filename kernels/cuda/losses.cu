// Loss kernels: elementwise value and gradient fused with a deterministic two-level sum (see losses.h).
#include "kernels/cuda/losses.h"

#include <cub/block/block_reduce.cuh>
#include <algorithm>
#include <stdexcept>

#include "kernels/cuda/check.h"

namespace gancu::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1024;  // partial sums; enough to saturate memory bandwidth with a grid-stride loop

enum class LossKind { kBceWithLogits, kMse, kL1 };

int blocks_for(int64_t n) { return int(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, kMaxBlocks)); }

// Per-element loss value and its derivative with respect to x (before the dloss/n factor).
struct Elementwise {
  float value, slope;
};
template <LossKind kKind> __device__ __forceinline__ Elementwise evaluate(float x, float t) {
  if constexpr (kKind == LossKind::kBceWithLogits) {
    const float e = expf(-fabsf(x));  // never overflows
    const float sigmoid = x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    return {fmaxf(x, 0.0f) - x * t + log1pf(e), sigmoid - t};
  } else if constexpr (kKind == LossKind::kMse) {
    const float d = x - t;
    return {d * d, 2.0f * d};
  } else {
    const float d = x - t;
    return {fabsf(d), d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f)};
  }
}

// Writes dx (if requested) and this block's partial sum of the loss values (accumulated in double).
template <LossKind kKind>
__global__ void __launch_bounds__(kThreads) loss_kernel(int64_t n, const float* __restrict__ x,
                                                        const float* __restrict__ target, float grad_scale,
                                                        float* __restrict__ dx, double* __restrict__ partials) {
  using BlockReduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename BlockReduce::TempStorage reduce_storage;
  double sum = 0.0;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads) {
    const Elementwise e = evaluate<kKind>(x[i], target[i]);
    sum += double(e.value);
    if (dx != nullptr) dx[i] = grad_scale * e.slope;
  }
  const double block_sum = BlockReduce(reduce_storage).Sum(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = block_sum;
}

// One block: sums `blocks` partials (or cross_entropy's row losses) in a fixed order and stores the total / n.
__global__ void __launch_bounds__(kThreads) finish_mean_kernel(int blocks, int64_t n, const double* partials,
                                                               float* loss_out) {
  using BlockReduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename BlockReduce::TempStorage reduce_storage;
  double sum = 0.0;
  for (int b = threadIdx.x; b < blocks; b += kThreads) sum += partials[b];
  const double total = BlockReduce(reduce_storage).Sum(sum);
  if (threadIdx.x == 0) *loss_out = float(total / double(n));
}

template <LossKind kKind>
void run_loss(int64_t n, const float* x, const float* target, float dloss, float* dx, float* loss_out,
              void* workspace, cudaStream_t stream) {
  if (n < 1) throw std::invalid_argument("loss: the mean of zero elements is undefined");
  if (loss_out == nullptr || workspace == nullptr) throw std::invalid_argument("loss: loss_out and workspace needed");
  const int blocks = blocks_for(n);
  auto* partials = static_cast<double*>(workspace);
  const float grad_scale = float(double(dloss) / double(n));
  loss_kernel<kKind><<<blocks, kThreads, 0, stream>>>(n, x, target, grad_scale, dx, partials);
  GANCU_CUDA_CHECK_LAUNCH();
  finish_mean_kernel<<<1, kThreads, 0, stream>>>(blocks, n, partials, loss_out);
  GANCU_CUDA_CHECK_LAUNCH();
}

// One thread per example: its row's loss into row_losses[n], its gradient row into dlogits when asked.
__global__ void __launch_bounds__(kThreads) cross_entropy_kernel(int batch, int classes,
                                                                 const float* __restrict__ logits,
                                                                 const float* __restrict__ labels, double grad_scale,
                                                                 float* __restrict__ dlogits,
                                                                 double* __restrict__ row_losses) {
  const int n = int(blockIdx.x) * kThreads + int(threadIdx.x);
  if (n >= batch) return;
  const int64_t offset = int64_t(n) * classes;
  row_losses[n] = detail::cross_entropy_row(classes, logits + offset, labels[n], grad_scale,
                                            dlogits != nullptr ? dlogits + offset : nullptr);
}

}  // namespace

size_t cross_entropy_workspace_bytes(int batch) { return size_t(std::max(batch, 1)) * sizeof(double); }

void cross_entropy(int batch, int classes, const float* logits, const float* labels, float dloss, float* dlogits,
                   float* loss_out, void* workspace, cudaStream_t stream) {
  if (batch < 1 || classes < 1) throw std::invalid_argument("cross_entropy: needs batch and classes ≥ 1");
  if (loss_out == nullptr || workspace == nullptr)
    throw std::invalid_argument("cross_entropy: loss_out and workspace needed");
  auto* row_losses = static_cast<double*>(workspace);
  const double grad_scale = double(dloss) / double(batch);  // as the reference: the 1/batch in double
  cross_entropy_kernel<<<(batch + kThreads - 1) / kThreads, kThreads, 0, stream>>>(batch, classes, logits, labels,
                                                                                  grad_scale, dlogits, row_losses);
  GANCU_CUDA_CHECK_LAUNCH();
  finish_mean_kernel<<<1, kThreads, 0, stream>>>(batch, batch, row_losses, loss_out);
  GANCU_CUDA_CHECK_LAUNCH();
}

size_t loss_workspace_bytes(int64_t n) { return size_t(blocks_for(n)) * sizeof(double); }

void bce_with_logits(int64_t n, const float* x, const float* target, float dloss, float* dx, float* loss_out,
                     void* workspace, cudaStream_t stream) {
  run_loss<LossKind::kBceWithLogits>(n, x, target, dloss, dx, loss_out, workspace, stream);
}
void mse(int64_t n, const float* x, const float* target, float dloss, float* dx, float* loss_out, void* workspace,
         cudaStream_t stream) {
  run_loss<LossKind::kMse>(n, x, target, dloss, dx, loss_out, workspace, stream);
}
void l1(int64_t n, const float* x, const float* target, float dloss, float* dx, float* loss_out, void* workspace,
        cudaStream_t stream) {
  run_loss<LossKind::kL1>(n, x, target, dloss, dx, loss_out, workspace, stream);
}

}  // namespace gancu::cuda
