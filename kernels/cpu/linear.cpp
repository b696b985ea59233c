// Reference linear layer (PyTorch nn.Linear): y = x·Wᵀ + b with W [out, in]; every sum accumulated in double.
#include "kernels/cpu/linear.h"

#include <cstdint>

namespace gancu::ref {

// y[n, o] = bias[o] + Σ_i x[n, i] · w[o, i]
template <class T> void linear_forward(const LinearParams& p, const T* x, const T* weight, const T* bias, T* y) {
  for (int n = 0; n < p.batch; ++n)
    for (int o = 0; o < p.out_features; ++o) {
      double sum = bias ? double(bias[o]) : 0.0;
      for (int i = 0; i < p.in_features; ++i)
        sum += double(x[int64_t(n) * p.in_features + i]) * double(weight[int64_t(o) * p.in_features + i]);
      y[int64_t(n) * p.out_features + o] = T(sum);
    }
}

// dx[n, i] = Σ_o dy[n, o] · w[o, i]
template <class T> void linear_backward_input(const LinearParams& p, const T* dy, const T* weight, T* dx) {
  for (int n = 0; n < p.batch; ++n)
    for (int i = 0; i < p.in_features; ++i) {
      double sum = 0.0;
      for (int o = 0; o < p.out_features; ++o)
        sum += double(dy[int64_t(n) * p.out_features + o]) * double(weight[int64_t(o) * p.in_features + i]);
      dx[int64_t(n) * p.in_features + i] = T(sum);
    }
}

// dw[o, i] = Σ_n dy[n, o] · x[n, i]
template <class T> void linear_backward_weight(const LinearParams& p, const T* x, const T* dy, T* dweight) {
  for (int o = 0; o < p.out_features; ++o)
    for (int i = 0; i < p.in_features; ++i) {
      double sum = 0.0;
      for (int n = 0; n < p.batch; ++n)
        sum += double(dy[int64_t(n) * p.out_features + o]) * double(x[int64_t(n) * p.in_features + i]);
      dweight[int64_t(o) * p.in_features + i] = T(sum);
    }
}

// db[o] = Σ_n dy[n, o]
template <class T> void linear_backward_bias(const LinearParams& p, const T* dy, T* dbias) {
  for (int o = 0; o < p.out_features; ++o) {
    double sum = 0.0;
    for (int n = 0; n < p.batch; ++n) sum += double(dy[int64_t(n) * p.out_features + o]);
    dbias[o] = T(sum);
  }
}

#define GANCU_INSTANTIATE(T)                                                                \
  template void linear_forward<T>(const LinearParams&, const T*, const T*, const T*, T*);   \
  template void linear_backward_input<T>(const LinearParams&, const T*, const T*, T*);      \
  template void linear_backward_weight<T>(const LinearParams&, const T*, const T*, T*);     \
  template void linear_backward_bias<T>(const LinearParams&, const T*, T*);
GANCU_INSTANTIATE(float)
GANCU_INSTANTIATE(double)
#undef GANCU_INSTANTIATE

}  // namespace gancu::ref
