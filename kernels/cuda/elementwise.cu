// Elementwise and data-movement kernels: memory-bound grid-stride loops (kernels/cuda/elementwise_launch.cuh).
#include "kernels/cuda/elementwise.h"

#include <cmath>
#include <algorithm>
#include <stdexcept>
#include <string>

#include "core/philox.h"
#include "kernels/cuda/channel_maps.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise_launch.cuh"

namespace gancu::cuda {
namespace {

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

// The index maps of these three are in channel_maps.h, where the host tests run them; n < 2³¹ (checked there).
__global__ void concat_kernel(int64_t n, detail::ConcatLaunch launch, float* y) {
  GANCU_GRID_STRIDE(o, n) {
    const detail::ConcatElement e = detail::concat_element(launch, int(o));
    y[e.dst] = detail::concat_source(launch, e.input)[e.src];
  }
}
__global__ void channel_slice_kernel(int64_t n, detail::ChannelSliceMap map, const float* x, float* y) {
  GANCU_GRID_STRIDE(o, n) y[o] = x[detail::channel_slice_source(map, int(o))];
}
__global__ void one_hot_kernel(int64_t n, detail::OneHotMap map, const float* labels, float* y) {
  GANCU_GRID_STRIDE(o, n) y[o] = detail::one_hot_value(map, labels, int(o));
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

void check_shape(int batch, int channels, int spatial, const char* what) {
  if (batch < 0 || channels < 0 || spatial < 0) throw std::invalid_argument(std::string(what) + ": negative size");
}

}  // namespace

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

void concat_channels(int batch, int inner, int num_inputs, const float* const* xs, const int* channels, float* y,
                     cudaStream_t stream) {
  for (const detail::ConcatLaunch& launch : detail::plan_concat(batch, inner, num_inputs, xs, channels))
    launch_elementwise(concat_kernel, launch.elements(), stream, launch, y);
}
void channel_slice(int batch, int channels_x, int begin, int channels_y, int inner, const float* x, float* y,
                   cudaStream_t stream) {
  const detail::ChannelSliceMap map = detail::plan_channel_slice(batch, channels_x, begin, channels_y, inner);
  launch_elementwise(channel_slice_kernel, int64_t(batch) * map.width_y, stream, map, x, y);
}
void one_hot(int batch, int classes, int spatial, const float* labels, float* y, cudaStream_t stream) {
  const detail::OneHotMap map = detail::plan_one_hot(batch, classes, spatial);
  launch_elementwise(one_hot_kernel, int64_t(batch) * classes * spatial, stream, map, labels, y);
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
