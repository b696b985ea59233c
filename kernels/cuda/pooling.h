// Max pooling (torch.nn.MaxPool2d: floor mode, −∞ padding, the first maximum of a window in row-major order, NaN
// propagating). Forward: one thread per output element. Backward: one thread per input element gathering from the
// windows that contain it, recomputing their argmax from x (kernels/cuda/pool_maps.h): no index tensor, no atomics,
// a fixed summation order. Tensors must have fewer than 2³¹ elements (std::invalid_argument otherwise).
#pragma once
#include <cuda_runtime.h>

#include "kernels/params.h"

namespace gancu::cuda {

void max_pool2d_forward(const MaxPool2dParams& p, const float* x, float* y, cudaStream_t stream);
void max_pool2d_backward(const MaxPool2dParams& p, const float* x, const float* dy, float* dx, cudaStream_t stream);

}  // namespace gancu::cuda
