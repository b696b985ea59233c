// Private to the conv kernels: the three implicit-GEMM passes every public conv function is made of, on one
// ConvGeometry (conv_problems.cuh), plus the mapping from the public parameter records. Host-only declarations;
// the kernels live in conv2d.cu.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/cuda/conv_problems.cuh"
#include "kernels/cuda/math_mode.h"
#include "kernels/params.h"

namespace gancu::cuda::detail {

inline ConvGeometry geometry_of(const Conv2dParams& p) {
  return {p.batch, p.in_channels, p.in_h, p.in_w, p.out_channels, p.out_h(), p.out_w(), p.kernel, p.stride, p.pad};
}

// A transposed conv is the adjoint of the conv2d that maps its output back to its input: that conv reads the
// transposed output (channels out_channels) and writes the transposed input (channels in_channels), with the same
// weight tensor [in_channels, out_channels, k, k] = [conv out, conv in, k, k].
inline ConvGeometry adjoint_geometry_of(const ConvTranspose2dParams& p) {
  return {p.batch, p.out_channels, p.out_h(), p.out_w(), p.in_channels, p.in_h, p.in_w, p.kernel, p.stride, p.pad};
}

// y = conv(x, w) + bias. x: g's input shape, y: g's output shape, w [out_channels, in_channels, k, k].
void correlate(MathMode mode, const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y,
               cudaStream_t stream);
// dx = adjoint(dy) + bias: dy has g's output shape, dx g's input shape. One sub-problem per stride phase.
void correlate_adjoint(MathMode mode, const ConvGeometry& g, const float* dy, const float* w, const float* bias,
                       float* dx, cudaStream_t stream);
// dw [out_channels, in_channels, k, k] = Σ dy ⊗ patches(x); workspace of weight_grad_workspace_bytes(g) bytes.
size_t weight_grad_workspace_bytes(const ConvGeometry& g);
void correlate_weight_grad(MathMode mode, const ConvGeometry& g, const float* x, const float* dy, float* dw,
                           void* workspace, cudaStream_t stream);

}  // namespace gancu::cuda::detail
