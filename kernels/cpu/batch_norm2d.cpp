// Reference batch_norm2d: per-channel loops accumulating in double. Statistics use two passes (mean, then squared
// deviations), which stays accurate when |mean| is large compared with the spread. The sums are `omp simd`
// reductions (compiled with -fopenmp-simd: no threads, no runtime), i.e. a few interleaved double partial sums, so
// they vectorise instead of waiting on one chain of additions.
#include "kernels/cpu/batch_norm2d.h"

#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace gancu::ref {
namespace {

// Element (n, c, s) of an NCS tensor.
inline int64_t at(const BatchNorm2dParams& p, int n, int c, int s) {
  return (int64_t(n) * p.channels + c) * p.spatial + s;
}

}  // namespace

template <class T>
void batch_norm2d_forward_train(const BatchNorm2dParams& p, const T* x, const T* gamma, const T* beta, T* running_mean,
                                T* running_var, T* y, T* save_mean, T* save_invstd) {
  const int64_t count = int64_t(p.batch) * p.spatial;
  // PyTorch refuses this too: the unbiased variance of a single value is undefined.
  if (count < 2) throw std::invalid_argument("batch_norm2d training needs more than one value per channel");
  for (int c = 0; c < p.channels; ++c) {
    double sum = 0;
    for (int n = 0; n < p.batch; ++n) {
      const T* xc = x + at(p, n, c, 0);
#pragma omp simd reduction(+ : sum)
      for (int s = 0; s < p.spatial; ++s) sum += double(xc[s]);
    }
    const double mean = sum / double(count);
    double squares = 0;
    for (int n = 0; n < p.batch; ++n) {
      const T* xc = x + at(p, n, c, 0);
#pragma omp simd reduction(+ : squares)
      for (int s = 0; s < p.spatial; ++s) {
        const double d = double(xc[s]) - mean;
        squares += d * d;
      }
    }
    const double biased_var = squares / double(count);
    const double invstd = 1.0 / std::sqrt(biased_var + p.eps);
    const double g = double(gamma[c]), b = double(beta[c]);
    for (int n = 0; n < p.batch; ++n)
      for (int s = 0; s < p.spatial; ++s) {
        const int64_t i = at(p, n, c, s);
        y[i] = T(g * (double(x[i]) - mean) * invstd + b);
      }
    save_mean[c] = T(mean);
    save_invstd[c] = T(invstd);
    const double unbiased_var = squares / double(count - 1);
    running_mean[c] = T((1.0 - p.momentum) * double(running_mean[c]) + p.momentum * mean);
    running_var[c] = T((1.0 - p.momentum) * double(running_var[c]) + p.momentum * unbiased_var);
  }
}

template <class T>
void batch_norm2d_forward_infer(const BatchNorm2dParams& p, const T* x, const T* gamma, const T* beta,
                                const T* running_mean, const T* running_var, T* y) {
  for (int c = 0; c < p.channels; ++c) {
    const double invstd = 1.0 / std::sqrt(double(running_var[c]) + p.eps);
    const double mean = double(running_mean[c]), g = double(gamma[c]), b = double(beta[c]);
    for (int n = 0; n < p.batch; ++n)
      for (int s = 0; s < p.spatial; ++s) {
        const int64_t i = at(p, n, c, s);
        y[i] = T(g * (double(x[i]) - mean) * invstd + b);
      }
  }
}

// With x̂ = (x − μ)·σ⁻¹ and y = γx̂ + β, the batch statistics depend on every x, which gives
//   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ·σ⁻¹/N · (N·dy − dβ − x̂·dγ).
template <class T>
void batch_norm2d_backward(const BatchNorm2dParams& p, const T* dy, const T* x, const T* gamma, const T* save_mean,
                           const T* save_invstd, T* dx, T* dgamma, T* dbeta) {
  const double count = double(int64_t(p.batch) * p.spatial);
  for (int c = 0; c < p.channels; ++c) {
    const double mean = double(save_mean[c]), invstd = double(save_invstd[c]);
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int n = 0; n < p.batch; ++n) {
      const int64_t i0 = at(p, n, c, 0);
#pragma omp simd reduction(+ : sum_dy, sum_dy_xhat)
      for (int s = 0; s < p.spatial; ++s) {
        sum_dy += double(dy[i0 + s]);
        sum_dy_xhat += double(dy[i0 + s]) * (double(x[i0 + s]) - mean) * invstd;
      }
    }
    const double k = double(gamma[c]) * invstd / count;
    for (int n = 0; n < p.batch; ++n)
      for (int s = 0; s < p.spatial; ++s) {
        const int64_t i = at(p, n, c, s);
        const double xhat = (double(x[i]) - mean) * invstd;
        dx[i] = T(k * (count * double(dy[i]) - sum_dy - xhat * sum_dy_xhat));
      }
    dgamma[c] = T(sum_dy_xhat);
    dbeta[c] = T(sum_dy);
  }
}

template <class T>
void batch_norm2d_activation_backward(const BatchNorm2dParams& p, T negative_slope, const T* prelu_slope, const T* dz,
                                      const T* x, const T* gamma, const T* beta, const T* save_mean,
                                      const T* save_invstd, T* dy, T* dprelu_slope) {
  for (int c = 0; c < p.channels; ++c) {
    const double g = double(gamma[c]), m = double(save_mean[c]), r = double(save_invstd[c]), b = double(beta[c]);
    const T slope = prelu_slope != nullptr ? prelu_slope[c] : negative_slope;
    double slope_grad = 0;
    for (int n = 0; n < p.batch; ++n)
      for (int s = 0; s < p.spatial; ++s) {
        const int64_t i = at(p, n, c, s);
        const double z = g * (double(x[i]) - m) * r + b;  // as the forward computed it
        if (z > 0) {
          dy[i] = dz[i];
        } else {
          dy[i] = slope == T(0) ? T(0) : slope * dz[i];
          slope_grad += z * double(dz[i]);
        }
      }
    if (dprelu_slope != nullptr) dprelu_slope[c] = T(slope_grad);
  }
}

#define GANCU_INSTANTIATE_BATCH_NORM2D(T)                                                                          \
  template void batch_norm2d_forward_train<T>(const BatchNorm2dParams&, const T*, const T*, const T*, T*, T*, T*,  \
                                              T*, T*);                                                            \
  template void batch_norm2d_forward_infer<T>(const BatchNorm2dParams&, const T*, const T*, const T*, const T*,    \
                                              const T*, T*);                                                      \
  template void batch_norm2d_backward<T>(const BatchNorm2dParams&, const T*, const T*, const T*, const T*,         \
                                         const T*, T*, T*, T*);                                               \
  template void batch_norm2d_activation_backward<T>(const BatchNorm2dParams&, T, const T*, const T*, const T*,    \
                                                    const T*, const T*, const T*, const T*, T*, T*);
GANCU_INSTANTIATE_BATCH_NORM2D(float)
GANCU_INSTANTIATE_BATCH_NORM2D(double)
#undef GANCU_INSTANTIATE_BATCH_NORM2D

}  // namespace gancu::ref
