// Hand-written CUDA conv_transpose2d (PyTorch ConvTranspose2d semantics, weight [in_channels, out_channels, k, k]).
// It shares conv2d's kernels: forward is conv2d's backward_input (split into stride phases), backward_input is a
// conv2d forward, backward_weight is conv2d's weight gradient with the roles of x and dy swapped.
// Bias gradient: cuda::bias2d_backward in conv2d.h. Outputs overwritten; nothing synchronises. Workspaces as in
// conv2d.h: each pass needs its *_workspace_bytes(p) bytes (null allowed when 0; a needed one missing throws). A layer
// on a 1×1 input with pad 0 and output_pad 0 (DCGAN's projection from z) runs as a dense GEMM.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/cuda/math_mode.h"
#include "kernels/params.h"

namespace gancu::cuda {

size_t conv_transpose2d_forward_workspace_bytes(const ConvTranspose2dParams& p);
void conv_transpose2d_forward(const ConvTranspose2dParams& p, MathMode mode, const float* x, const float* w,
                              const float* bias, float* y, void* workspace, cudaStream_t stream);
size_t conv_transpose2d_backward_input_workspace_bytes(const ConvTranspose2dParams& p);
void conv_transpose2d_backward_input(const ConvTranspose2dParams& p, MathMode mode, const float* dy, const float* w,
                                     float* dx, void* workspace, cudaStream_t stream);
size_t conv_transpose2d_backward_weight_workspace_bytes(const ConvTranspose2dParams& p);
void conv_transpose2d_backward_weight(const ConvTranspose2dParams& p, MathMode mode, const float* x, const float* dy,
                                      float* dw, void* workspace, cudaStream_t stream);

}  // namespace gancu::cuda
