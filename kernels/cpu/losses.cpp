// Reference losses, mean-reduced, accumulated in double.
#include "kernels/cpu/losses.h"

#include <algorithm>
#include <cmath>

namespace gancu::ref {
namespace {

// σ(x) without overflow: exp() only sees −|x|.
inline double stable_sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

}  // namespace

// log(1 + exp(−|x|)) via log1p keeps full precision when exp(−|x|) is tiny (|x| large), and nothing overflows.
template <class T> double bce_with_logits_forward(int64_t n, const T* x, const T* target) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = double(x[i]), t = double(target[i]);
    sum += std::max(v, 0.0) - v * t + std::log1p(std::exp(-std::abs(v)));
  }
  return sum / double(n);
}

// ∂ℓ/∂x = σ(x) − t.
template <class T> void bce_with_logits_backward(int64_t n, const T* x, const T* target, T dloss, T* dx) {
  const double k = double(dloss) / double(n);
  for (int64_t i = 0; i < n; ++i) dx[i] = T(k * (stable_sigmoid(double(x[i])) - double(target[i])));
}

template <class T> double mse_forward(int64_t n, const T* x, const T* target) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(x[i]) - double(target[i]);
    sum += d * d;
  }
  return sum / double(n);
}

template <class T> void mse_backward(int64_t n, const T* x, const T* target, T dloss, T* dx) {
  const double k = 2.0 * double(dloss) / double(n);
  for (int64_t i = 0; i < n; ++i) dx[i] = T(k * (double(x[i]) - double(target[i])));
}

template <class T> double l1_forward(int64_t n, const T* x, const T* target) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::abs(double(x[i]) - double(target[i]));
  return sum / double(n);
}

template <class T> void l1_backward(int64_t n, const T* x, const T* target, T dloss, T* dx) {
  const double k = double(dloss) / double(n);
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(x[i]) - double(target[i]);
    const double sign = d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0);
    dx[i] = T(k * sign);
  }
}

#define GANCU_INSTANTIATE_LOSSES(T)                                                         \
  template double bce_with_logits_forward<T>(int64_t, const T*, const T*);                 \
  template void bce_with_logits_backward<T>(int64_t, const T*, const T*, T, T*);           \
  template double mse_forward<T>(int64_t, const T*, const T*);                             \
  template void mse_backward<T>(int64_t, const T*, const T*, T, T*);                       \
  template double l1_forward<T>(int64_t, const T*, const T*);                              \
  template void l1_backward<T>(int64_t, const T*, const T*, T, T*);
GANCU_INSTANTIATE_LOSSES(float)
GANCU_INSTANTIATE_LOSSES(double)
#undef GANCU_INSTANTIATE_LOSSES

}  // namespace gancu::ref
