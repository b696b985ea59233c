// Hand-written CUDA conv2d (PyTorch Conv2d semantics): implicit GEMM with shared-memory tiles, strict fp32 (FFMA) or
// TF32 tensor cores (MathMode). Device pointers, contiguous NCHW, weight [out_channels, in_channels, k, k].
// Outputs are overwritten, never accumulated. Nothing here synchronises; every launch is checked.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/cuda/math_mode.h"
#include "kernels/params.h"

namespace gancu::cuda {

// Every pass is a GEMM. When it has too few output tiles to fill the GPU and a long reduction, the reduction is split:
// each split writes a partial result to `workspace` and a second kernel sums them in a fixed order (bit-identical
// run to run; the split depends on the shape alone, never on the device). `workspace` must hold the pass's
// *_workspace_bytes(p) bytes; it may be null when that is 0, and a null one that is needed throws
// std::invalid_argument. A layer whose 1×1 output covers its whole input (k×k input, pad 0) runs as a dense GEMM.

// y = conv(x, w) + bias (bias may be null).
size_t conv2d_forward_workspace_bytes(const Conv2dParams& p);
void conv2d_forward(const Conv2dParams& p, MathMode mode, const float* x, const float* w, const float* bias, float* y,
                    void* workspace, cudaStream_t stream);
// dx = ∂L/∂x: a transposed convolution of dy, computed per stride phase (no work on inserted zeros).
size_t conv2d_backward_input_workspace_bytes(const Conv2dParams& p);
void conv2d_backward_input(const Conv2dParams& p, MathMode mode, const float* dy, const float* w, float* dx,
                           void* workspace, cudaStream_t stream);
// dw = ∂L/∂w: a GEMM over batch·out_h·out_w.
size_t conv2d_backward_weight_workspace_bytes(const Conv2dParams& p);
void conv2d_backward_weight(const Conv2dParams& p, MathMode mode, const float* x, const float* dy, float* dw,
                            void* workspace, cudaStream_t stream);
// dbias[c] = Σ_{n, s} dy[n, c, s] for conv2d and conv_transpose2d alike (double accumulation, fixed order).
void bias2d_backward(int batch, int channels, int spatial, const float* dy, float* dbias, cudaStream_t stream);

}  // namespace gancu::cuda
