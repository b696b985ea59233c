// Reference Adam step (torch.optim.Adam, single-tensor path), every update computed in double and rounded once.
#include "kernels/cpu/adam.h"

#include <cmath>
#include <stdexcept>

namespace gancu::ref {

template <class T> void adam_step(int64_t n, const AdamParams& p, int64_t step, T* param, const T* grad, T* m, T* v) {
  if (step < 1) throw std::invalid_argument("adam_step: step counts from 1");
  const double bias_correction1 = 1.0 - std::pow(p.beta1, double(step));
  const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(p.beta2, double(step)));
  const double step_size = p.lr / bias_correction1;
  for (int64_t i = 0; i < n; ++i) {
    const double g = double(grad[i]) + p.weight_decay * double(param[i]);
    m[i] = T(p.beta1 * double(m[i]) + (1.0 - p.beta1) * g);
    v[i] = T(p.beta2 * double(v[i]) + (1.0 - p.beta2) * g * g);
    // The update reads the moments as stored (rounded to T), as PyTorch does; eps is added after the bias correction
    // of √v, exactly where PyTorch adds it.
    const double denom = std::sqrt(double(v[i])) / bias_correction2_sqrt + p.eps;
    param[i] = T(double(param[i]) - step_size * double(m[i]) / denom);
  }
}

template void adam_step<float>(int64_t, const AdamParams&, int64_t, float*, const float*, float*, float*);
template void adam_step<double>(int64_t, const AdamParams&, int64_t, double*, const double*, double*, double*);

}  // namespace gancu::ref
