// Custom CUDA losses, mean-reduced, fp32 data with fp64 accumulation. Semantics of kernels/cpu/losses.h: the loss is
// the mean over n elements; the gradient is dx = dloss · ∂mean/∂x (it already includes the 1/n).
//
// Each loss is two launches and no host synchronisation: a grid-stride kernel writes dx (when dx is not null) and one
// partial sum per block into `workspace` (cub::BlockReduce), then a one-block kernel sums the partials in a fixed
// order and writes the mean to the device scalar *loss_out. The grid size depends only on n, so the result is
// bit-identical from run to run and the pair can be captured in a CUDA graph.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

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

}  // namespace gancu::cuda
