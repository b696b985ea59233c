// Reference max pooling.
#include "kernels/cpu/pooling.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace gancu::ref {
namespace {

void check(const MaxPool2dParams& p, const char* what) {
  if (p.batch < 0 || p.channels < 0 || p.in_h < 1 || p.in_w < 1 || p.kernel < 1 || p.stride < 1 || p.pad < 0 ||
      2 * p.pad > p.kernel || p.out_h() < 1 || p.out_w() < 1)
    throw std::invalid_argument(std::string(what) + ": invalid sizes, kernel, stride or padding");
}

}  // namespace

template <class T> int max_pool2d_window_argmax(const MaxPool2dParams& p, const T* plane, int oh, int ow) {
  const int h0 = oh * p.stride - p.pad, w0 = ow * p.stride - p.pad;
  const int h_begin = std::max(h0, 0), h_end = std::min(h0 + p.kernel, p.in_h);
  const int w_begin = std::max(w0, 0), w_end = std::min(w0 + p.kernel, p.in_w);
  int best = h_begin * p.in_w + w_begin;
  T best_value = -INFINITY;
  for (int h = h_begin; h < h_end; ++h)
    for (int w = w_begin; w < w_end; ++w) {
      const T v = plane[h * p.in_w + w];
      if (v > best_value || std::isnan(v)) {
        best = h * p.in_w + w;
        best_value = v;
      }
    }
  return best;
}

template <class T> void max_pool2d_forward(const MaxPool2dParams& p, const T* x, T* y) {
  check(p, "max_pool2d_forward");
  const int out_h = p.out_h(), out_w = p.out_w();
  const int64_t in_plane = int64_t(p.in_h) * p.in_w, out_plane = int64_t(out_h) * out_w;
  for (int64_t plane = 0; plane < int64_t(p.batch) * p.channels; ++plane) {
    const T* xp = x + plane * in_plane;
    for (int oh = 0; oh < out_h; ++oh)
      for (int ow = 0; ow < out_w; ++ow)
        y[plane * out_plane + oh * out_w + ow] = xp[max_pool2d_window_argmax(p, xp, oh, ow)];
  }
}

template <class T> void max_pool2d_backward(const MaxPool2dParams& p, const T* x, const T* dy, T* dx) {
  check(p, "max_pool2d_backward");
  const int out_h = p.out_h(), out_w = p.out_w();
  const int64_t in_plane = int64_t(p.in_h) * p.in_w, out_plane = int64_t(out_h) * out_w;
  std::vector<double> sum(static_cast<size_t>(in_plane));
  for (int64_t plane = 0; plane < int64_t(p.batch) * p.channels; ++plane) {
    const T* xp = x + plane * in_plane;
    std::fill(sum.begin(), sum.end(), 0.0);
    for (int oh = 0; oh < out_h; ++oh)
      for (int ow = 0; ow < out_w; ++ow)
        sum[size_t(max_pool2d_window_argmax(p, xp, oh, ow))] += double(dy[plane * out_plane + oh * out_w + ow]);
    for (int64_t i = 0; i < in_plane; ++i) dx[plane * in_plane + i] = T(sum[size_t(i)]);
  }
}

#define GANCU_INSTANTIATE_POOLING(T)                                                    \
  template int max_pool2d_window_argmax<T>(const MaxPool2dParams&, const T*, int, int); \
  template void max_pool2d_forward<T>(const MaxPool2dParams&, const T*, T*);            \
  template void max_pool2d_backward<T>(const MaxPool2dParams&, const T*, const T*, T*);
GANCU_INSTANTIATE_POOLING(float)
GANCU_INSTANTIATE_POOLING(double)
#undef GANCU_INSTANTIATE_POOLING

}  // namespace gancu::ref
