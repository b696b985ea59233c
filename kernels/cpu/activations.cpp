// Reference activations, computed in double and rounded once to T. At the kink x == 0 the gradients follow PyTorch:
// relu, leaky_relu and prelu all take the negative-side branch.
#include "kernels/cpu/activations.h"

#include <cmath>

namespace gancu::ref {

template <class T> void relu_forward(int64_t n, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

template <class T> void relu_backward(int64_t n, const T* x, const T* dy, T* dx) {
  // dy is read unconditionally so that the select vectorises (a conditional load would keep the loop scalar).
  for (int64_t i = 0; i < n; ++i) {
    const T g = dy[i];
    dx[i] = x[i] > T(0) ? g : T(0);
  }
}

template <class T> void leaky_relu_forward(int64_t n, T slope, const T* x, T* y) {
  // slope·x in T is exact-then-rounded for float (a float product fits a double exactly), so no widening is needed,
  // and the loop vectorises.
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : slope * x[i];
}

template <class T> void leaky_relu_backward(int64_t n, T slope, const T* x, const T* dy, T* dx) {
  for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : slope * dy[i];
}

template <class T> void prelu_forward(int batch, int channels, int spatial, const T* x, const T* slope, T* y) {
  for (int b = 0; b < batch; ++b)
    for (int c = 0; c < channels; ++c) {
      const int64_t base = (int64_t(b) * channels + c) * spatial;
      const double a = double(slope[c]);
      for (int s = 0; s < spatial; ++s) {
        const T v = x[base + s];
        y[base + s] = v > T(0) ? v : T(a * double(v));
      }
    }
}

// dslope[c] = Σ over the negative side of x·dy; it is written, not accumulated, so one call covers the whole batch.
template <class T>
void prelu_backward(int batch, int channels, int spatial, const T* x, const T* slope, const T* dy, T* dx, T* dslope) {
  for (int c = 0; c < channels; ++c) {
    const double a = double(slope[c]);
    double slope_grad = 0;
    for (int b = 0; b < batch; ++b) {
      const int64_t base = (int64_t(b) * channels + c) * spatial;
      for (int s = 0; s < spatial; ++s) {
        const double v = double(x[base + s]), g = double(dy[base + s]);
        if (v > 0) {
          dx[base + s] = dy[base + s];
        } else {
          dx[base + s] = T(a * g);
          slope_grad += v * g;
        }
      }
    }
    dslope[c] = T(slope_grad);
  }
}

template <class T> void tanh_forward(int64_t n, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = T(std::tanh(double(x[i])));
}

template <class T> void tanh_backward(int64_t n, const T* y, const T* dy, T* dx) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = double(y[i]);
    dx[i] = T(double(dy[i]) * (1.0 - v * v));
  }
}

// exp() only ever sees a non-positive argument, so it cannot overflow, and 1 − σ(x) is never formed by cancellation.
template <class T> void sigmoid_forward(int64_t n, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = double(x[i]);
    if (v >= 0) {
      y[i] = T(1.0 / (1.0 + std::exp(-v)));
    } else {
      const double e = std::exp(v);
      y[i] = T(e / (1.0 + e));
    }
  }
}

template <class T> void sigmoid_backward(int64_t n, const T* y, const T* dy, T* dx) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = double(y[i]);
    dx[i] = T(double(dy[i]) * v * (1.0 - v));
  }
}

#define GANCU_INSTANTIATE_ACTIVATIONS(T)                                                                 \
  template void relu_forward<T>(int64_t, const T*, T*);                                                 \
  template void relu_backward<T>(int64_t, const T*, const T*, T*);                                      \
  template void leaky_relu_forward<T>(int64_t, T, const T*, T*);                                        \
  template void leaky_relu_backward<T>(int64_t, T, const T*, const T*, T*);                             \
  template void prelu_forward<T>(int, int, int, const T*, const T*, T*);                                \
  template void prelu_backward<T>(int, int, int, const T*, const T*, const T*, T*, T*);                 \
  template void tanh_forward<T>(int64_t, const T*, T*);                                                 \
  template void tanh_backward<T>(int64_t, const T*, const T*, T*);                                      \
  template void sigmoid_forward<T>(int64_t, const T*, T*);                                              \
  template void sigmoid_backward<T>(int64_t, const T*, const T*, T*);
GANCU_INSTANTIATE_ACTIVATIONS(float)
GANCU_INSTANTIATE_ACTIVATIONS(double)
#undef GANCU_INSTANTIATE_ACTIVATIONS

}  // namespace gancu::ref
