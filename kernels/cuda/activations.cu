// Activation kernels: memory-bound grid-stride loops (kernels/cuda/elementwise_launch.cuh). The only reduction,
// PReLU's slope gradient, uses one block per channel and cub::BlockReduce, so it is deterministic.
#include "kernels/cuda/activations.h"

#include <cub/block/block_reduce.cuh>
#include <stdexcept>
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise_launch.cuh"

namespace gancu::cuda {
namespace {

constexpr int kThreads = kElementwiseThreads;

__global__ void relu_forward_kernel(int64_t n, const float* x, float* y) {
  GANCU_GRID_STRIDE(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
__global__ void relu_backward_kernel(int64_t n, const float* x, const float* dy, float* dx) {
  GANCU_GRID_STRIDE(i, n) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}
__global__ void leaky_relu_forward_kernel(int64_t n, float slope, const float* x, float* y) {
  GANCU_GRID_STRIDE(i, n) y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}
__global__ void leaky_relu_backward_kernel(int64_t n, float slope, const float* x, const float* dy, float* dx) {
  GANCU_GRID_STRIDE(i, n) dx[i] = x[i] > 0.0f ? dy[i] : slope * dy[i];
}
// x is [batch, channels, spatial]: the channel of element i is (i / spatial) % channels.
__global__ void prelu_forward_kernel(int64_t n, int channels, int spatial, const float* x, const float* slope,
                                     float* y) {
  GANCU_GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = v > 0.0f ? v : slope[(i / spatial) % channels] * v;
  }
}

// One block per channel: dx elementwise, dslope[c] = Σ_{x ≤ 0} x·dy reduced in a fixed order.
__global__ void prelu_backward_kernel(int batch, int channels, int spatial, const float* x, const float* slope,
                                      const float* dy, float* dx, float* dslope) {
  using BlockReduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename BlockReduce::TempStorage reduce_storage;
  const int c = blockIdx.x;
  const float a = slope[c];
  const int64_t count = int64_t(batch) * spatial;
  float partial = 0.0f;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
    const int64_t i = (k / spatial * channels + c) * spatial + k % spatial;
    const float v = x[i], g = dy[i];
    if (v > 0.0f) {
      dx[i] = g;
    } else {
      dx[i] = a * g;
      partial += v * g;
    }
  }
  const float total = BlockReduce(reduce_storage).Sum(partial);
  if (threadIdx.x == 0) dslope[c] = total;
}

__global__ void tanh_forward_kernel(int64_t n, const float* x, float* y) {
  GANCU_GRID_STRIDE(i, n) y[i] = tanhf(x[i]);
}
__global__ void tanh_backward_kernel(int64_t n, const float* y, const float* dy, float* dx) {
  GANCU_GRID_STRIDE(i, n) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}
// σ(x) without overflow: expf only sees −|x|.
__device__ __forceinline__ float stable_sigmoid(float x) {
  const float e = expf(-fabsf(x));
  return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}
__global__ void sigmoid_forward_kernel(int64_t n, const float* x, float* y) {
  GANCU_GRID_STRIDE(i, n) y[i] = stable_sigmoid(x[i]);
}
__global__ void sigmoid_backward_kernel(int64_t n, const float* y, const float* dy, float* dx) {
  GANCU_GRID_STRIDE(i, n) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

void check_shape(int batch, int channels, int spatial, const char* what) {
  if (batch < 0 || channels < 0 || spatial < 0) throw std::invalid_argument(std::string(what) + ": negative size");
}

}  // namespace

void relu_forward(int64_t n, const float* x, float* y, cudaStream_t stream) {
  launch_elementwise(relu_forward_kernel, n, stream, x, y);
}
void relu_backward(int64_t n, const float* x, const float* dy, float* dx, cudaStream_t stream) {
  launch_elementwise(relu_backward_kernel, n, stream, x, dy, dx);
}
void leaky_relu_forward(int64_t n, float slope, const float* x, float* y, cudaStream_t stream) {
  launch_elementwise(leaky_relu_forward_kernel, n, stream, slope, x, y);
}
void leaky_relu_backward(int64_t n, float slope, const float* x, const float* dy, float* dx, cudaStream_t stream) {
  launch_elementwise(leaky_relu_backward_kernel, n, stream, slope, x, dy, dx);
}
void prelu_forward(int batch, int channels, int spatial, const float* x, const float* slope, float* y,
                   cudaStream_t stream) {
  check_shape(batch, channels, spatial, "prelu_forward");
  launch_elementwise(prelu_forward_kernel, int64_t(batch) * channels * spatial, stream, channels, spatial, x, slope, y);
}
void prelu_backward(int batch, int channels, int spatial, const float* x, const float* slope, const float* dy,
                    float* dx, float* dslope, cudaStream_t stream) {
  check_shape(batch, channels, spatial, "prelu_backward");
  if (channels == 0) return;
  prelu_backward_kernel<<<channels, kThreads, 0, stream>>>(batch, channels, spatial, x, slope, dy, dx, dslope);
  GANCU_CUDA_CHECK_LAUNCH();
}
void tanh_forward(int64_t n, const float* x, float* y, cudaStream_t stream) {
  launch_elementwise(tanh_forward_kernel, n, stream, x, y);
}
void tanh_backward(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream) {
  launch_elementwise(tanh_backward_kernel, n, stream, y, dy, dx);
}
void sigmoid_forward(int64_t n, const float* x, float* y, cudaStream_t stream) {
  launch_elementwise(sigmoid_forward_kernel, n, stream, x, y);
}
void sigmoid_backward(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream) {
  launch_elementwise(sigmoid_backward_kernel, n, stream, y, dy, dx);
}

}  // namespace gancu::cuda
