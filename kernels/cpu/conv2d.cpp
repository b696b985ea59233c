// Reference conv2d (PyTorch Conv2d: cross-correlation, NCHW, weight [Cout, Cin, k, k]).
// Written as the plain sums from the definition, each output accumulated in a double, so the code can be checked by
// reading it. Speed is irrelevant here: the fast CPU path is in blas.cpp.
#include "kernels/cpu/conv2d.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gancu::ref {
namespace {

// Index of element (n, c, h, w) of a contiguous [N, C, H, W] tensor.
inline int64_t nchw(int n, int c, int h, int w, int channels, int height, int width) {
  return ((int64_t(n) * channels + c) * height + h) * width + w;
}

}  // namespace

// y[n, co, oh, ow] = bias[co] + Σ_{ci, kh, kw} x[n, ci, oh·s − p + kh, ow·s − p + kw] · w[co, ci, kh, kw]
template <class T> void conv2d_forward(const Conv2dParams& p, const T* x, const T* weight, const T* bias, T* y) {
  const int oh_size = p.out_h(), ow_size = p.out_w(), k = p.kernel;
  for (int n = 0; n < p.batch; ++n)
    for (int co = 0; co < p.out_channels; ++co)
      for (int oh = 0; oh < oh_size; ++oh)
        for (int ow = 0; ow < ow_size; ++ow) {
          double sum = bias ? double(bias[co]) : 0.0;
          for (int ci = 0; ci < p.in_channels; ++ci)
            for (int kh = 0; kh < k; ++kh) {
              const int ih = oh * p.stride - p.pad + kh;
              if (ih < 0 || ih >= p.in_h) continue;  // zero padding
              for (int kw = 0; kw < k; ++kw) {
                const int iw = ow * p.stride - p.pad + kw;
                if (iw < 0 || iw >= p.in_w) continue;
                sum += double(x[nchw(n, ci, ih, iw, p.in_channels, p.in_h, p.in_w)]) *
                       double(weight[nchw(co, ci, kh, kw, p.in_channels, k, k)]);
              }
            }
          y[nchw(n, co, oh, ow, p.out_channels, oh_size, ow_size)] = T(sum);
        }
}

// dx[n, ci, ih, iw] = Σ over every (co, oh, ow, kh, kw) with oh·s − p + kh = ih and ow·s − p + kw = iw of
// dy[n, co, oh, ow] · w[co, ci, kh, kw]. Scattered into a double buffer, then rounded once.
template <class T> void conv2d_backward_input(const Conv2dParams& p, const T* dy, const T* weight, T* dx) {
  const int oh_size = p.out_h(), ow_size = p.out_w(), k = p.kernel;
  std::vector<double> acc(std::size_t(p.x_size()), 0.0);
  for (int n = 0; n < p.batch; ++n)
    for (int co = 0; co < p.out_channels; ++co)
      for (int oh = 0; oh < oh_size; ++oh)
        for (int ow = 0; ow < ow_size; ++ow) {
          const double g = double(dy[nchw(n, co, oh, ow, p.out_channels, oh_size, ow_size)]);
          for (int ci = 0; ci < p.in_channels; ++ci)
            for (int kh = 0; kh < k; ++kh) {
              const int ih = oh * p.stride - p.pad + kh;
              if (ih < 0 || ih >= p.in_h) continue;
              for (int kw = 0; kw < k; ++kw) {
                const int iw = ow * p.stride - p.pad + kw;
                if (iw < 0 || iw >= p.in_w) continue;
                acc[std::size_t(nchw(n, ci, ih, iw, p.in_channels, p.in_h, p.in_w))] +=
                    g * double(weight[nchw(co, ci, kh, kw, p.in_channels, k, k)]);
              }
            }
        }
  for (int64_t i = 0; i < p.x_size(); ++i) dx[i] = T(acc[std::size_t(i)]);
}

// dw[co, ci, kh, kw] = Σ_{n, oh, ow} dy[n, co, oh, ow] · x[n, ci, oh·s − p + kh, ow·s − p + kw]
template <class T> void conv2d_backward_weight(const Conv2dParams& p, const T* x, const T* dy, T* dweight) {
  const int oh_size = p.out_h(), ow_size = p.out_w(), k = p.kernel;
  for (int co = 0; co < p.out_channels; ++co)
    for (int ci = 0; ci < p.in_channels; ++ci)
      for (int kh = 0; kh < k; ++kh)
        for (int kw = 0; kw < k; ++kw) {
          double sum = 0.0;
          for (int n = 0; n < p.batch; ++n)
            for (int oh = 0; oh < oh_size; ++oh) {
              const int ih = oh * p.stride - p.pad + kh;
              if (ih < 0 || ih >= p.in_h) continue;
              for (int ow = 0; ow < ow_size; ++ow) {
                const int iw = ow * p.stride - p.pad + kw;
                if (iw < 0 || iw >= p.in_w) continue;
                sum += double(dy[nchw(n, co, oh, ow, p.out_channels, oh_size, ow_size)]) *
                       double(x[nchw(n, ci, ih, iw, p.in_channels, p.in_h, p.in_w)]);
              }
            }
          dweight[nchw(co, ci, kh, kw, p.in_channels, k, k)] = T(sum);
        }
}

template <class T> void bias2d_backward(int batch, int channels, int spatial, const T* dy, T* dbias) {
  for (int c = 0; c < channels; ++c) {
    double sum = 0.0;
    for (int n = 0; n < batch; ++n) {
      const T* plane = dy + (int64_t(n) * channels + c) * spatial;
      for (int i = 0; i < spatial; ++i) sum += double(plane[i]);
    }
    dbias[c] = T(sum);
  }
}

#define GANCU_INSTANTIATE(T)                                                                            \
  template void conv2d_forward<T>(const Conv2dParams&, const T*, const T*, const T*, T*);               \
  template void conv2d_backward_input<T>(const Conv2dParams&, const T*, const T*, T*);                  \
  template void conv2d_backward_weight<T>(const Conv2dParams&, const T*, const T*, T*);                 \
  template void bias2d_backward<T>(int, int, int, const T*, T*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::ref
