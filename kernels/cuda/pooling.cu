// Max pooling kernels: memory-bound grid-stride loops (kernels/cuda/elementwise_launch.cuh) over the index maps of
// kernels/cuda/pool_maps.h, which the host tests run too.
#include "kernels/cuda/pooling.h"

#include "kernels/cuda/elementwise_launch.cuh"
#include "kernels/cuda/pool_maps.h"

namespace gancu::cuda {
namespace {

__global__ void max_pool2d_forward_kernel(int64_t n, detail::MaxPoolMap map, const float* x, float* y) {
  GANCU_GRID_STRIDE(o, n) y[o] = detail::max_pool_output(map, x, int(o));
}
__global__ void max_pool2d_backward_kernel(int64_t n, detail::MaxPoolMap map, const float* x, const float* dy,
                                           float* dx) {
  GANCU_GRID_STRIDE(i, n) dx[i] = detail::max_pool_input_gradient(map, x, dy, int(i));
}

}  // namespace

void max_pool2d_forward(const MaxPool2dParams& p, const float* x, float* y, cudaStream_t stream) {
  const detail::MaxPoolMap map = detail::plan_max_pool(p, "max_pool2d_forward");
  launch_elementwise(max_pool2d_forward_kernel, p.y_size(), stream, map, x, y);
}
void max_pool2d_backward(const MaxPool2dParams& p, const float* x, const float* dy, float* dx, cudaStream_t stream) {
  const detail::MaxPoolMap map = detail::plan_max_pool(p, "max_pool2d_backward");
  launch_elementwise(max_pool2d_backward_kernel, p.x_size(), stream, map, x, dy, dx);
}

}  // namespace gancu::cuda
