// Private to the max-pooling kernels (kernels/cuda/pooling.cu): what one output element (forward) or one input
// element (backward) computes. Plain C++ with __host__ __device__ annotations, so the host tests
// (tests/gpu/test_pooling_cuda.cpp, MaxPoolMaps) run the very same functions through a scalar loop against the
// reference: no GPU needed to check the windows, the tie rule and the gather.
//
// The backward is a gather: one thread per input element visits the windows that contain it (at most
// ⌈kernel/stride⌉² of them), recomputes each window's argmax from x and adds that window's dy when the argmax is this
// element. Every element is written by exactly one thread, in a fixed window order: no atomics, bit-identical replays.
// Recomputing the argmax costs kernel² extra reads of x per window, served from L1/L2 (neighbouring threads read the
// same window), and saves the engine an index tensor that would have to be planned, written and read.
#pragma once
#include <math.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/channel_maps.h"    // check_32bit
#include "kernels/cuda/conv_problems.cuh"  // FastDivmod, GANCU_HD, load_readonly
#include "kernels/params.h"

namespace gancu::cuda::detail {

struct MaxPoolMap {
  int in_h = 1, in_w = 1, out_h = 1, out_w = 1, kernel = 1, stride = 1, pad = 0;
  FastDivmod by_out_w, by_out_plane, by_in_w, by_in_plane, by_stride;
};

inline MaxPoolMap plan_max_pool(const MaxPool2dParams& p, const char* what) {
  if (p.batch < 0 || p.channels < 0 || p.in_h < 1 || p.in_w < 1 || p.kernel < 1 || p.stride < 1 || p.pad < 0 ||
      2 * p.pad > p.kernel || p.out_h() < 1 || p.out_w() < 1)
    throw std::invalid_argument(std::string(what) + ": invalid sizes, kernel, stride or padding");
  check_32bit(p.x_size(), what);
  check_32bit(p.y_size(), what);
  MaxPoolMap m;
  m.in_h = p.in_h;
  m.in_w = p.in_w;
  m.out_h = p.out_h();
  m.out_w = p.out_w();
  m.kernel = p.kernel;
  m.stride = p.stride;
  m.pad = p.pad;
  m.by_out_w = FastDivmod(m.out_w);
  m.by_out_plane = FastDivmod(m.out_h * m.out_w);
  m.by_in_w = FastDivmod(m.in_w);
  m.by_in_plane = FastDivmod(m.in_h * m.in_w);
  m.by_stride = FastDivmod(m.stride);
  return m;
}

// The element window (oh, ow) of one plane picks, as ih·in_w + iw: the first maximum in row-major order, a NaN winning
// and staying (v > best or v is NaN: PyTorch's CPU rule; the reference's max_pool2d_window_argmax). Padding is never
// picked: the window is clipped to the plane.
GANCU_HD int max_pool_window_argmax(const MaxPoolMap& m, const float* plane, int oh, int ow) {
  const int h0 = oh * m.stride - m.pad, w0 = ow * m.stride - m.pad;
  const int h_begin = h0 > 0 ? h0 : 0, h_end = h0 + m.kernel < m.in_h ? h0 + m.kernel : m.in_h;
  const int w_begin = w0 > 0 ? w0 : 0, w_end = w0 + m.kernel < m.in_w ? w0 + m.kernel : m.in_w;
  int best = h_begin * m.in_w + w_begin;
  float best_value = -INFINITY;
  for (int h = h_begin; h < h_end; ++h)
    for (int w = w_begin; w < w_end; ++w) {
      const float v = load_readonly(plane + h * m.in_w + w);
      if (v > best_value || v != v) {  // v != v: NaN (no fast-math anywhere in gancu)
        best = h * m.in_w + w;
        best_value = v;
      }
    }
  return best;
}

// Output element o (flat over [planes, out_h, out_w]).
GANCU_HD float max_pool_output(const MaxPoolMap& m, const float* x, int o) {
  int plane, rest, oh, ow;
  m.by_out_plane.divmod(o, plane, rest);
  m.by_out_w.divmod(rest, oh, ow);
  const float* xp = x + int64_t(plane) * (m.in_h * m.in_w);
  return load_readonly(xp + max_pool_window_argmax(m, xp, oh, ow));
}

// The windows that contain input row (or column) `i`: [first, last], empty when first > last. Window o covers rows
// o·stride − pad … o·stride − pad + kernel − 1. The divisions by the stride go through FastDivmod (both numerators
// are ≥ 0 where it is used): a plain integer division would cost more than the thread's memory traffic.
GANCU_HD void max_pool_windows_containing(int i, int pad, int kernel, const FastDivmod& by_stride, int count,
                                          int& first, int& last) {
  const int lowest = i + pad - kernel + 1;  // o·stride ≥ lowest
  first = lowest <= 0 ? 0 : by_stride.div(lowest + int(by_stride.divisor) - 1);
  const int covering = by_stride.div(i + pad);  // o·stride ≤ i + pad
  last = covering < count - 1 ? covering : count - 1;
}

// dx at input element i (flat over [planes, in_h, in_w]): Σ dy over the windows that pick it, windows in row-major
// order.
GANCU_HD float max_pool_input_gradient(const MaxPoolMap& m, const float* x, const float* dy, int i) {
  int plane, rest, ih, iw;
  m.by_in_plane.divmod(i, plane, rest);
  m.by_in_w.divmod(rest, ih, iw);
  const float* xp = x + int64_t(plane) * (m.in_h * m.in_w);
  const float* dyp = dy + int64_t(plane) * (m.out_h * m.out_w);
  int oh_first, oh_last, ow_first, ow_last;
  max_pool_windows_containing(ih, m.pad, m.kernel, m.by_stride, m.out_h, oh_first, oh_last);
  max_pool_windows_containing(iw, m.pad, m.kernel, m.by_stride, m.out_w, ow_first, ow_last);
  float sum = 0.0f;
  for (int oh = oh_first; oh <= oh_last; ++oh)
    for (int ow = ow_first; ow <= ow_last; ++ow)
      if (max_pool_window_argmax(m, xp, oh, ow) == rest) sum += load_readonly(dyp + oh * m.out_w + ow);
  return sum;
}

}  // namespace gancu::cuda::detail
