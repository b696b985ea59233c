// Shared test helpers: random inputs, NaN poisoning, relative L2 error, central finite differences in double.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"

namespace gancu::testing {

// The message of the exception f throws, or "" if it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

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

// "[n, c, h, w]" index of flat element i of a row-major tensor of `shape` (flat "[i]" when shape is empty).
// Built with += only: GCC 12 at -O3 misreports `"[" + std::string` as an overlapping memcpy (-Wrestrict) in some
// translation units.
inline std::string index_string(int64_t i, const std::vector<int64_t>& shape) {
  std::vector<int64_t> index(shape.empty() ? 1 : shape.size(), i);
  for (size_t d = shape.size(); d-- > 0;) {
    const int64_t extent = shape[d] > 0 ? shape[d] : 1;
    index[d] = i % extent;
    i /= extent;
  }
  std::string s = "[";
  for (size_t d = 0; d < index.size(); ++d) {
    if (d) s += ", ";
    s += std::to_string(index[d]);
  }
  s += "]";
  return s;
}

// The comparison every kernel test makes: passes when rel_l2_error(actual, expected) ≤ tol. A failure prints what a
// reader without a GPU needs to debug it: shape, tolerance and error, the count of non-finite outputs (unwritten
// elements stay NaN from poisoning), and the first mismatching elements with their indices and both values. An
// element mismatches when it is non-finite or off by more than tol·rms(expected).
//   EXPECT_TRUE(testing::close_rel_l2(got, want, 1e-5, {n, c, h, w})) << "forward";
template <class A, class B>
::testing::AssertionResult close_rel_l2(const std::vector<A>& actual, const std::vector<B>& expected, double tol,
                                        const std::vector<int64_t>& shape = {}, int max_listed = 8) {
  std::ostringstream shape_text;
  shape_text << "shape [";
  if (shape.empty()) shape_text << expected.size();
  for (size_t d = 0; d < shape.size(); ++d) shape_text << (d ? ", " : "") << shape[d];
  shape_text << "]";
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << shape_text.str() << ": " << actual.size() << " values, expected "
                                         << expected.size();
  const double error = rel_l2_error(actual, expected);
  if (error <= tol) return ::testing::AssertionSuccess();
  double sum_sq = 0;
  for (const B& e : expected) sum_sq += double(e) * double(e);
  const double scale = expected.empty() ? 0.0 : std::sqrt(sum_sq / double(expected.size()));
  int64_t non_finite = 0, mismatches = 0;
  std::ostringstream first;
  first.precision(9);
  for (size_t i = 0; i < actual.size(); ++i) {
    const double a = double(actual[i]), e = double(expected[i]);
    const bool bad = !std::isfinite(a) || std::abs(a - e) > tol * scale;
    non_finite += !std::isfinite(a);
    if (!bad) continue;
    if (mismatches++ < max_listed)
      first << "\n    at " << index_string(int64_t(i), shape) << ": got " << a << ", expected " << e;
  }
  return ::testing::AssertionFailure() << shape_text.str() << ": relative L2 error " << error << " > tolerance " << tol
                                       << "; " << non_finite << " non-finite, " << mismatches
                                       << " elements off by more than tol·rms(expected) = " << tol * scale
                                       << "; first:" << first.str();
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
