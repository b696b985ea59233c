// cuDNN baseline of cuda/conv2d.h: same names and arguments plus the Context (which holds the plans and workspace,
// so no workspace argument here). Device pointers, NCHW, weight [out_channels, in_channels, k, k]; outputs
// overwritten. See cudnn_context.h for the algorithm choice and the one synchronising call per new shape.
#pragma once
#include <cuda_runtime.h>

#include "kernels/cudnn/cudnn_context.h"
#include "kernels/params.h"

namespace gancu::cudnn {

void conv2d_forward(Context& ctx, const Conv2dParams& p, MathMode mode, const float* x, const float* w,
                    const float* bias, float* y, cudaStream_t stream);
void conv2d_backward_input(Context& ctx, const Conv2dParams& p, MathMode mode, const float* dy, const float* w,
                           float* dx, cudaStream_t stream);
void conv2d_backward_weight(Context& ctx, const Conv2dParams& p, MathMode mode, const float* x, const float* dy,
                            float* dw, cudaStream_t stream);
// cudnnConvolutionBackwardBias over dy [batch, channels, spatial].
void bias2d_backward(Context& ctx, int batch, int channels, int spatial, const float* dy, float* dbias,
                     cudaStream_t stream);

}  // namespace gancu::cudnn
