// Reference conv_transpose2d (PyTorch ConvTranspose2d, NCHW, weight [Cin, Cout, k, k]).
// Defined directly as a scatter: each input pixel stamps its channel's weight slices onto the output at
// (ih·s − p, iw·s − p); output_pad only enlarges the output (the extra rows/columns receive what lands there).
// Every sum is accumulated in double; the fast path is in blas.cpp.
#include "kernels/cpu/conv_transpose2d.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gancu::ref {
namespace {

inline int64_t nchw(int n, int c, int h, int w, int channels, int height, int width) {
  return ((int64_t(n) * channels + c) * height + h) * width + w;
}

}  // namespace

// y[n, co, ih·s − p + kh, iw·s − p + kw] += x[n, ci, ih, iw] · w[ci, co, kh, kw], plus bias[co] everywhere.
template <class T>
void conv_transpose2d_forward(const ConvTranspose2dParams& p, const T* x, const T* weight, const T* bias, T* y) {
  const int oh_size = p.out_h(), ow_size = p.out_w(), k = p.kernel;
  std::vector<double> acc(std::size_t(p.y_size()), 0.0);
  for (int n = 0; n < p.batch; ++n)
    for (int ci = 0; ci < p.in_channels; ++ci)
      for (int ih = 0; ih < p.in_h; ++ih)
        for (int iw = 0; iw < p.in_w; ++iw) {
          const double v = double(x[nchw(n, ci, ih, iw, p.in_channels, p.in_h, p.in_w)]);
          for (int co = 0; co < p.out_channels; ++co)
            for (int kh = 0; kh < k; ++kh) {
              const int oh = ih * p.stride - p.pad + kh;
              if (oh < 0 || oh >= oh_size) continue;  // cropped by the padding
              for (int kw = 0; kw < k; ++kw) {
                const int ow = iw * p.stride - p.pad + kw;
                if (ow < 0 || ow >= ow_size) continue;
                acc[std::size_t(nchw(n, co, oh, ow, p.out_channels, oh_size, ow_size))] +=
                    v * double(weight[nchw(ci, co, kh, kw, p.out_channels, k, k)]);
              }
            }
        }
  for (int n = 0; n < p.batch; ++n)
    for (int co = 0; co < p.out_channels; ++co)
      for (int i = 0; i < oh_size * ow_size; ++i) {
        const int64_t at = (int64_t(n) * p.out_channels + co) * oh_size * ow_size + i;
        y[at] = T(acc[std::size_t(at)] + (bias ? double(bias[co]) : 0.0));
      }
}

// dx[n, ci, ih, iw] = Σ_{co, kh, kw} dy[n, co, ih·s − p + kh, iw·s − p + kw] · w[ci, co, kh, kw]
// (a conv2d of dy with the same weight read as [Cin, Cout, k, k]).
template <class T>
void conv_transpose2d_backward_input(const ConvTranspose2dParams& p, const T* dy, const T* weight, T* dx) {
  const int oh_size = p.out_h(), ow_size = p.out_w(), k = p.kernel;
  for (int n = 0; n < p.batch; ++n)
    for (int ci = 0; ci < p.in_channels; ++ci)
      for (int ih = 0; ih < p.in_h; ++ih)
        for (int iw = 0; iw < p.in_w; ++iw) {
          double sum = 0.0;
          for (int co = 0; co < p.out_channels; ++co)
            for (int kh = 0; kh < k; ++kh) {
              const int oh = ih * p.stride - p.pad + kh;
              if (oh < 0 || oh >= oh_size) continue;
              for (int kw = 0; kw < k; ++kw) {
                const int ow = iw * p.stride - p.pad + kw;
                if (ow < 0 || ow >= ow_size) continue;
                sum += double(dy[nchw(n, co, oh, ow, p.out_channels, oh_size, ow_size)]) *
                       double(weight[nchw(ci, co, kh, kw, p.out_channels, k, k)]);
              }
            }
          dx[nchw(n, ci, ih, iw, p.in_channels, p.in_h, p.in_w)] = T(sum);
        }
}

// dw[ci, co, kh, kw] = Σ_{n, ih, iw} x[n, ci, ih, iw] · dy[n, co, ih·s − p + kh, iw·s − p + kw]
template <class T>
void conv_transpose2d_backward_weight(const ConvTranspose2dParams& p, const T* x, const T* dy, T* dweight) {
  const int oh_size = p.out_h(), ow_size = p.out_w(), k = p.kernel;
  for (int ci = 0; ci < p.in_channels; ++ci)
    for (int co = 0; co < p.out_channels; ++co)
      for (int kh = 0; kh < k; ++kh)
        for (int kw = 0; kw < k; ++kw) {
          double sum = 0.0;
          for (int n = 0; n < p.batch; ++n)
            for (int ih = 0; ih < p.in_h; ++ih) {
              const int oh = ih * p.stride - p.pad + kh;
              if (oh < 0 || oh >= oh_size) continue;
              for (int iw = 0; iw < p.in_w; ++iw) {
                const int ow = iw * p.stride - p.pad + kw;
                if (ow < 0 || ow >= ow_size) continue;
                sum += double(x[nchw(n, ci, ih, iw, p.in_channels, p.in_h, p.in_w)]) *
                       double(dy[nchw(n, co, oh, ow, p.out_channels, oh_size, ow_size)]);
              }
            }
          dweight[nchw(ci, co, kh, kw, p.out_channels, k, k)] = T(sum);
        }
}

#define GANCU_INSTANTIATE(T)                                                                                       \
  template void conv_transpose2d_forward<T>(const ConvTranspose2dParams&, const T*, const T*, const T*, T*);       \
  template void conv_transpose2d_backward_input<T>(const ConvTranspose2dParams&, const T*, const T*, T*);          \
  template void conv_transpose2d_backward_weight<T>(const ConvTranspose2dParams&, const T*, const T*, T*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::ref
