// Reference losses, mean-reduced, accumulated in double.
#include "kernels/cpu/losses.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace gancu::ref {
namespace {

// σ(x) without overflow: exp() only sees −|x|.
inline double stable_sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// The class index a label holds, or std::invalid_argument when it holds none (NaN fails every comparison).
template <class T> int class_of(T label, int example, int classes) {
  if (!(label >= 0 && label < T(classes) && label == std::floor(label))) {
    std::ostringstream message;
    message << "cross_entropy: label " << double(label) << " of example " << example << " is not a class index in [0, "
            << classes << ")";
    throw std::invalid_argument(message.str());
  }
  return int(label);
}

// log Σ exp(row) with the row's maximum subtracted first, so no exp() overflows and the largest term is exp(0) = 1.
template <class T> double log_sum_exp(int classes, const T* row) {
  double top = double(row[0]);
  for (int k = 1; k < classes; ++k) top = std::max(top, double(row[k]));
  double sum = 0;
  for (int k = 0; k < classes; ++k) sum += std::exp(double(row[k]) - top);
  return top + std::log(sum);
}

void check_sizes(int batch, int classes) {
  if (batch < 1 || classes < 1)
    throw std::invalid_argument("cross_entropy: needs batch and classes ≥ 1, got " + std::to_string(batch) + " and " +
                                std::to_string(classes));
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

// ℓ_n = log Σ_k exp(x_nk) − x_n,label.
template <class T> double cross_entropy_forward(int batch, int classes, const T* logits, const T* labels) {
  check_sizes(batch, classes);
  double sum = 0;
  for (int n = 0; n < batch; ++n) {
    const T* row = logits + int64_t(n) * classes;
    const int label = class_of(labels[n], n, classes);
    sum += log_sum_exp(classes, row) - double(row[label]);
  }
  return sum / double(batch);
}

// ∂ℓ_n/∂x_nk = softmax_k − [k = label]; the labels are all checked before anything is written.
template <class T>
void cross_entropy_backward(int batch, int classes, const T* logits, const T* labels, T dloss, T* dlogits) {
  check_sizes(batch, classes);
  for (int n = 0; n < batch; ++n) class_of(labels[n], n, classes);
  const double scale = double(dloss) / double(batch);
  for (int n = 0; n < batch; ++n) {
    const int64_t offset = int64_t(n) * classes;
    const double lse = log_sum_exp(classes, logits + offset);
    const int label = int(labels[n]);
    for (int k = 0; k < classes; ++k) {
      const double softmax = std::exp(double(logits[offset + k]) - lse);
      dlogits[offset + k] = T(scale * (softmax - (k == label ? 1.0 : 0.0)));
    }
  }
}

#define GANCU_INSTANTIATE_LOSSES(T)                                                         \
  template double bce_with_logits_forward<T>(int64_t, const T*, const T*);                 \
  template void bce_with_logits_backward<T>(int64_t, const T*, const T*, T, T*);           \
  template double mse_forward<T>(int64_t, const T*, const T*);                             \
  template void mse_backward<T>(int64_t, const T*, const T*, T, T*);                       \
  template double l1_forward<T>(int64_t, const T*, const T*);                              \
  template void l1_backward<T>(int64_t, const T*, const T*, T, T*);                       \
  template double cross_entropy_forward<T>(int, int, const T*, const T*);                  \
  template void cross_entropy_backward<T>(int, int, const T*, const T*, T, T*);
GANCU_INSTANTIATE_LOSSES(float)
GANCU_INSTANTIATE_LOSSES(double)
#undef GANCU_INSTANTIATE_LOSSES

}  // namespace gancu::ref
