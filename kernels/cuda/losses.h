// Custom CUDA losses, mean-reduced, fp32 data with fp64 accumulation. Semantics of kernels/cpu/losses.h: the loss is
// the mean over n elements; the gradient is dx = dloss · ∂mean/∂x (it already includes the 1/n).
//
// Each loss is two launches and no host synchronisation: a grid-stride kernel writes dx (when dx is not null) and one
// partial sum per block into `workspace` (cub::BlockReduce), then a one-block kernel sums the partials in a fixed
// order and writes the mean to the device scalar *loss_out. The grid size depends only on n, so the result is
// bit-identical from run to run and the pair can be captured in a CUDA graph.
//
// cross_entropy is laid out by rows instead: one thread per example computes its row's loss (and gradient row) into
// `workspace`, and the same one-block kernel sums those row losses in a fixed order. Classifier heads are narrow
// (K = 10): a thread walks its whole row, which costs less than a block-wide reduction over ten values would.
#pragma once
#include <cuda_runtime.h>
#include <math.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/conv_problems.cuh"  // GANCU_HD

namespace gancu::cuda {

// Bytes of device workspace the losses below need for n elements (at most 8 KiB).
size_t loss_workspace_bytes(int64_t n);

// ℓ = max(x,0) − x·t + log(1 + exp(−|x|)) per element (stable for any x); ∂ℓ/∂x = σ(x) − t. t is in [0, 1].
void bce_with_logits(int64_t n, const float* x, const float* target, float dloss, float* dx, float* loss_out,
                     void* workspace, cudaStream_t stream);
// ℓ = (x − t)²; ∂ℓ/∂x = 2(x − t).
void mse(int64_t n, const float* x, const float* target, float dloss, float* dx, float* loss_out, void* workspace,
         cudaStream_t stream);
// ℓ = |x − t|; ∂ℓ/∂x = sign(x − t), 0 at x == t (PyTorch).
void l1(int64_t n, const float* x, const float* target, float dloss, float* dx, float* loss_out, void* workspace,
        cudaStream_t stream);

// Bytes of device workspace cross_entropy needs for `batch` rows (one double each).
size_t cross_entropy_workspace_bytes(int batch);

// Softmax cross-entropy of logits [batch, classes] against labels [batch] (class indices held as floats), the mean
// over the batch (kernels/cpu/losses.h); dlogits (when not null) = dloss · (softmax − onehot) / batch. A kernel cannot
// throw as ref::cross_entropy_forward does: a label that is not a class index (NaN included) makes its row's loss and
// gradient NaN, so the mean is NaN and the trainer's non-finite-loss check stops the run.
void cross_entropy(int batch, int classes, const float* logits, const float* labels, float dloss, float* dlogits,
                   float* loss_out, void* workspace, cudaStream_t stream);

namespace detail {

// One example's loss, log Σ_k exp(x_k) − x_label with the row maximum subtracted before exp, in double; and, when
// dlogits_row is not null, its gradient row grad_scale · (softmax_k − [k = label]). Private to cross_entropy's kernel,
// and plain C++ so the host tests run the very same arithmetic (tests/gpu/test_losses_cuda.cpp, CrossEntropyRows).
GANCU_HD double cross_entropy_row(int classes, const float* row, float label, double grad_scale, float* dlogits_row) {
  const bool is_class = label >= 0.0f && label < float(classes) && label == floorf(label);
  float top = row[0];
  for (int k = 1; k < classes; ++k) top = row[k] > top ? row[k] : top;
  double sum = 0.0;
  for (int k = 0; k < classes; ++k) sum += exp(double(row[k]) - double(top));
  const double log_sum_exp = double(top) + log(sum);
  const int target = is_class ? int(label) : -1;
  if (dlogits_row != nullptr)
    for (int k = 0; k < classes; ++k) {
      const double softmax = exp(double(row[k]) - log_sum_exp);
      dlogits_row[k] = is_class ? float(grad_scale * (softmax - (k == target ? 1.0 : 0.0))) : float(NAN);
    }
  return is_class ? log_sum_exp - double(row[target]) : double(NAN);
}

}  // namespace detail
}  // namespace gancu::cuda
