// cuDNN baseline of cuda/conv_transpose2d.h, through the adjoint conv: forward = its backward-data (plus bias),
// backward_input = its forward, backward_weight = its backward-filter with x and dy swapped.
// Bias gradient: cudnn::bias2d_backward in conv2d.h.
#pragma once
#include <cuda_runtime.h>

#include "kernels/cudnn/cudnn_context.h"
#include "kernels/params.h"

namespace gancu::cudnn {

void conv_transpose2d_forward(Context& ctx, const ConvTranspose2dParams& p, MathMode mode, const float* x,
                              const float* w, const float* bias, float* y, cudaStream_t stream);
void conv_transpose2d_backward_input(Context& ctx, const ConvTranspose2dParams& p, MathMode mode, const float* dy,
                                     const float* w, float* dx, cudaStream_t stream);
void conv_transpose2d_backward_weight(Context& ctx, const ConvTranspose2dParams& p, MathMode mode, const float* x,
                                      const float* dy, float* dw, cudaStream_t stream);

}  // namespace gancu::cudnn
