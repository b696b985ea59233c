// Shared test helpers: random inputs, NaN poisoning, relative L2 error, central finite differences in double.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "core/rng.h"

namespace gancu::testing {

// Fresh random values from N(0, stddev); a distinct seed per input keeps inputs independent.
template <class T> std::vector<T> random_vector(int64_t n, uint64_t seed, double stddev = 1.0) {
  Rng rng(seed, 0x7e57);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(rng.normal() * stddev);
  return v;
}

// Outputs are NaN-filled before a kernel runs, so an element the kernel forgot to write fails every comparison.
template <class T> std::vector<T> poisoned_vector(int64_t n) {
  return std::vector<T>(static_cast<size_t>(n), std::numeric_limits<T>::quiet_NaN());
}

// ‖a − b‖₂ / ‖b‖₂ computed in double (b is the reference). NaN anywhere gives NaN, which fails any "≤ tol" check.
template <class A, class B> double rel_l2_error(const A* a, const B* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  if (std::isnan(num)) return std::numeric_limits<double>::quiet_NaN();
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}
template <class A, class B> double rel_l2_error(const std::vector<A>& a, const std::vector<B>& b) {
  return a.size() == b.size() ? rel_l2_error(a.data(), b.data(), int64_t(a.size())) : std::numeric_limits<double>::infinity();
}

// Central finite differences of a scalar function of `x` (double precision): grad[i] ≈ (f(x+h e_i) − f(x−h e_i)) / 2h.
inline std::vector<double> numerical_gradient(std::vector<double>& x, const std::function<double()>& f, double h = 1e-6) {
  std::vector<double> grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double plus = f();
    x[i] = saved - h;
    const double minus = f();
    x[i] = saved;
    grad[i] = (plus - minus) / (2 * h);
  }
  return grad;
}

// ⟨a, b⟩ in double.
template <class T> double dot(const std::vector<T>& a, const std::vector<T>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
  return s;
}

}  // namespace gancu::testing
