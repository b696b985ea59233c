#include "tools/gan/latent.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace gancu::app {

void slerp(const float* a, const float* b, int64_t n, double t, float* out) {
  double aa = 0, bb = 0, ab = 0;
  for (int64_t i = 0; i < n; ++i) {
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
    ab += double(a[i]) * b[i];
  }
  double wa = 1.0 - t, wb = t;  // linear interpolation, unless the angle is well defined
  if (aa > 0 && bb > 0) {
    const double omega = std::acos(std::clamp(ab / std::sqrt(aa * bb), -1.0, 1.0));
    const double so = std::sin(omega);
    if (so >= kSlerpParallelSin) {
      wa = std::sin((1.0 - t) * omega) / so;
      wb = std::sin(t * omega) / so;
    }
  }
  for (int64_t i = 0; i < n; ++i) out[i] = float(wa * a[i] + wb * b[i]);
}

Tensor slerp_path(const float* a, const float* b, int64_t n, int steps) {
  if (steps < 2) throw std::invalid_argument("interpolation needs at least 2 steps, got " + std::to_string(steps));
  Tensor path(Shape{steps, n, 1, 1});
  for (int i = 0; i < steps; ++i) slerp(a, b, n, double(i) / double(steps - 1), path.data() + int64_t(i) * n);
  return path;
}

Tensor mean_latent(const Tensor& z) {
  const int64_t m = z.dim(0), n = z.numel() / std::max<int64_t>(m, 1);
  if (m < 1) throw std::invalid_argument("the mean of no latent vectors is undefined");
  Tensor mean(Shape{n});
  for (int64_t j = 0; j < n; ++j) {
    double sum = 0;
    for (int64_t i = 0; i < m; ++i) sum += z[i * n + j];
    mean[j] = float(sum / double(m));
  }
  return mean;
}

Tensor latent_arithmetic(const Tensor& a, const Tensor& b, const Tensor& c) {
  if (a.numel() != b.numel() || a.numel() != c.numel())
    throw std::invalid_argument("latent arithmetic needs vectors of one size, got " + a.shape().str() + ", " +
                                b.shape().str() + ", " + c.shape().str());
  Tensor r(Shape{a.numel()});
  for (int64_t j = 0; j < a.numel(); ++j) r[j] = float(double(a[j]) - double(b[j]) + double(c[j]));
  return r;
}

}  // namespace gancu::app
