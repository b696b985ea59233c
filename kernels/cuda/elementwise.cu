// Elementwise kernels: grid-stride loops with 64-bit indices, one thread per element per iteration. They are
// memory-bound; the only reduction (PReLU's slope gradient) uses one block per channel and cub::BlockReduce, so it is
// deterministic.
#include "kernels/cuda/elementwise.h"

// <cmath> before core/philox.h, which uses sqrtf/logf without including it.
#include <cmath>
#include <cub/block/block_reduce.cuh>
#include <algorithm>
#include <stdexcept>
#include <string>

#include "core/philox.h"
#include "kernels/cuda/check.h"

namespace gancu::cuda {
namespace {

constexpr int kThreads = 256;

// Enough blocks to fill any current GPU several times over; the grid-stride loop covers the rest.
unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t(1) << 16));
}

// Launches `kernel<<<grid_for(n), kThreads>>>(n, args...)`; n == 0 launches nothing (a zero grid is an error).
template <class Kernel, class... Args>
void launch_elementwise(Kernel kernel, int64_t n, cudaStream_t stream, Args... args) {
  if (n < 0) throw std::invalid_argument("elementwise kernel: negative element count");
  if (n == 0) return;
  kernel<<<grid_for(n), kThreads, 0, stream>>>(n, args...);
  GANCU_CUDA_CHECK_LAUNCH();
}

#define GANCU_GRID_STRIDE(i, n)                                                                 \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);                     \
       i += int64_t(gridDim.x) * blockDim.x)

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

__global__ void add_kernel(int64_t n, const float* a, const float* b, float* y) {
  GANCU_GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}
__global__ void scale_kernel(int64_t n, float alpha, const float* x, float* y) {
  GANCU_GRID_STRIDE(i, n) y[i] = alpha * x[i];
}

// Forward walks the output (coalesced writes): y[b, c, oh, ow] = x[b, c·r² + (oh % r)·r + ow % r, oh / r, ow / r].
__global__ void pixel_shuffle_forward_kernel(int64_t n, int h, int w, int r, const float* x, float* y) {
  const int out_h = h * r, out_w = w * r;
  GANCU_GRID_STRIDE(o, n) {
    const int ow = int(o % out_w);
    const int oh = int(o / out_w % out_h);
    const int64_t bc = o / (int64_t(out_w) * out_h);  // b·channels + c
    const int64_t in_channel = bc * r * r + (oh % r) * r + ow % r;  // b·channels·r² + c·r² + i·r + j
    y[o] = x[(in_channel * h + oh / r) * w + ow / r];
  }
}
// Backward walks dx (coalesced writes) and gathers from dy with the same index map.
__global__ void pixel_shuffle_backward_kernel(int64_t n, int h, int w, int r, const float* dy,
                                              float* dx) {
  const int out_h = h * r, out_w = w * r;
  GANCU_GRID_STRIDE(d, n) {
    const int ww = int(d % w);
    const int hh = int(d / w % h);
    const int64_t in_channel = d / (int64_t(w) * h);  // b·channels·r² + c·r² + i·r + j
    const int ij = int(in_channel % (r * r));
    const int64_t bc = in_channel / (r * r);
    dx[d] = dy[(bc * out_h + hh * r + ij / r) * out_w + ww * r + ij % r];
  }
}

__global__ void dropout_forward_kernel(int64_t n, double p, float keep_scale, uint64_t seed, uint64_t stream_id,
                                       const float* x, float* y, float* mask) {
  GANCU_GRID_STRIDE(i, n) {
    // Compared in double like the reference: p need not be representable in float.
    const bool keep = double(philox_uniform_at(seed, stream_id, uint64_t(i))) > p;
    const float m = keep ? keep_scale : 0.0f;
    mask[i] = m;
    y[i] = x[i] * m;
  }
}
__global__ void multiply_kernel(int64_t n, const float* a, const float* b, float* y) {
  GANCU_GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}

__global__ void fill_normal_kernel(int64_t n, float mean, float stddev, uint64_t seed, uint64_t stream_id,
                                   float* out) {
  GANCU_GRID_STRIDE(i, n) out[i] = mean + stddev * philox_normal_at(seed, stream_id, uint64_t(i));
}
__global__ void fill_uniform_kernel(int64_t n, float lo, float hi, uint64_t seed, uint64_t stream_id, float* out) {
  GANCU_GRID_STRIDE(i, n) out[i] = lo + (hi - lo) * philox_uniform_at(seed, stream_id, uint64_t(i));
}

#undef GANCU_GRID_STRIDE

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

void add_forward(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream) {
  launch_elementwise(add_kernel, n, stream, a, b, y);
}
void scale(int64_t n, float alpha, const float* x, float* y, cudaStream_t stream) {
  launch_elementwise(scale_kernel, n, stream, alpha, x, y);
}

void pixel_shuffle_forward(int batch, int channels, int h, int w, int r, const float* x, float* y,
                           cudaStream_t stream) {
  if (r < 1) throw std::invalid_argument("pixel_shuffle_forward: upscale factor must be ≥ 1");
  // h and w separately: h·w of two negative sizes is positive and would launch with a negative row length.
  if (h < 0 || w < 0) throw std::invalid_argument("pixel_shuffle_forward: negative size");
  check_shape(batch, channels, h * w, "pixel_shuffle_forward");
  const int64_t n = int64_t(batch) * channels * h * w * r * r;
  launch_elementwise(pixel_shuffle_forward_kernel, n, stream, h, w, r, x, y);
}
void pixel_shuffle_backward(int batch, int channels, int h, int w, int r, const float* dy, float* dx,
                            cudaStream_t stream) {
  if (r < 1) throw std::invalid_argument("pixel_shuffle_backward: upscale factor must be ≥ 1");
  // h and w separately: h·w of two negative sizes is positive and would launch with a negative row length.
  if (h < 0 || w < 0) throw std::invalid_argument("pixel_shuffle_backward: negative size");
  check_shape(batch, channels, h * w, "pixel_shuffle_backward");
  const int64_t n = int64_t(batch) * channels * h * w * r * r;
  launch_elementwise(pixel_shuffle_backward_kernel, n, stream, h, w, r, dy, dx);
}

void dropout_forward(int64_t n, double p, uint64_t seed, uint64_t stream_id, const float* x, float* y, float* mask,
                     cudaStream_t stream) {
  if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument("dropout probability must be in [0, 1]");
  // Same rounding as the reference: 1/(1−p) in double, then to float once.
  const float keep_scale = p < 1.0 ? float(1.0 / (1.0 - p)) : 0.0f;
  launch_elementwise(dropout_forward_kernel, n, stream, p, keep_scale, seed, stream_id, x, y, mask);
}
void dropout_backward(int64_t n, const float* mask, const float* dy, float* dx, cudaStream_t stream) {
  launch_elementwise(multiply_kernel, n, stream, dy, mask, dx);
}
void fill_normal(int64_t n, float mean, float stddev, uint64_t seed, uint64_t stream_id, float* out,
                 cudaStream_t stream) {
  launch_elementwise(fill_normal_kernel, n, stream, mean, stddev, seed, stream_id, out);
}
void fill_uniform(int64_t n, float lo, float hi, uint64_t seed, uint64_t stream_id, float* out, cudaStream_t stream) {
  launch_elementwise(fill_uniform_kernel, n, stream, lo, hi, seed, stream_id, out);
}

}  // namespace gancu::cuda
