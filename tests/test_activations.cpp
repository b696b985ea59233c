// Reference activations: hand-worked values, numerical stability of sigmoid, and every backward against central
// finite differences of f = ⟨w, act(x)⟩ in double.
#include "kernels/cpu/activations.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "tests/testing.h"

namespace gancu {
namespace {

using testing::numerical_gradient;
using testing::poisoned_vector;
using testing::random_vector;
using testing::rel_l2_error;

constexpr double kFiniteDifferenceTol = 1e-6;  // relative L2, analytic vs central differences (h = 1e-6), double

// Random inputs pushed at least 0.1 away from 0, so central differences never straddle the relu kink.
std::vector<double> inputs_away_from_kink(int64_t n, uint64_t seed) {
  std::vector<double> x = random_vector<double>(n, seed);
  for (auto& v : x) v += v >= 0 ? 0.1 : -0.1;
  return x;
}

// Hand values: relu and leaky_relu(0.2) of {−2, −0.5, 0.5, 3}; gradients with dy = {1, 2, 3, 4}. At x = 0 both
// take the negative branch (PyTorch): relu' = 0, leaky' = slope.
TEST(ActivationsRef, ReluAndLeakyReluHandValues) {
  const std::vector<double> x = {-2, -0.5, 0.5, 3, 0}, dy = {1, 2, 3, 4, 5};
  auto y = poisoned_vector<double>(5), dx = poisoned_vector<double>(5);
  ref::relu_forward<double>(5, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{0, 0, 0.5, 3, 0}));
  ref::relu_backward<double>(5, x.data(), dy.data(), dx.data());
  EXPECT_EQ(dx, (std::vector<double>{0, 0, 3, 4, 0}));
  y = poisoned_vector<double>(5), dx = poisoned_vector<double>(5);
  ref::leaky_relu_forward<double>(5, 0.2, x.data(), y.data());
  const std::vector<double> expected_y = {-0.4, -0.1, 0.5, 3, 0}, expected_dx = {0.2, 0.4, 3, 4, 1.0};
  ref::leaky_relu_backward<double>(5, 0.2, x.data(), dy.data(), dx.data());
  for (int i = 0; i < 5; ++i) {
    EXPECT_NEAR(y[i], expected_y[i], 1e-15) << i;  // one rounding of slope·x
    EXPECT_NEAR(dx[i], expected_dx[i], 1e-15) << i;
  }
}

// prelu, batch 1, two channels of two: x = {−1, 2 | −3, 4}, slope = {0.25, 0.5} → y = {−0.25, 2 | −1.5, 4}.
// dy = {1, 1 | 2, 2}: dx = {0.25, 1 | 1, 2}; dslope = Σ_{x≤0} x·dy = {−1·1, −3·2} = {−1, −6}.
TEST(ActivationsRef, PreluHandValues) {
  const std::vector<double> x = {-1, 2, -3, 4}, slope = {0.25, 0.5}, dy = {1, 1, 2, 2};
  auto y = poisoned_vector<double>(4), dx = poisoned_vector<double>(4), dslope = poisoned_vector<double>(2);
  ref::prelu_forward(1, 2, 2, x.data(), slope.data(), y.data());
  ref::prelu_backward(1, 2, 2, x.data(), slope.data(), dy.data(), dx.data(), dslope.data());
  EXPECT_EQ(y, (std::vector<double>{-0.25, 2, -1.5, 4}));  // exact: slopes are powers of two
  EXPECT_EQ(dx, (std::vector<double>{0.25, 1, 1, 2}));
  EXPECT_EQ(dslope, (std::vector<double>{-1, -6}));
}

// tanh(½·ln 3) = (3 − 1)/(3 + 1) = 0.5 and tanh(ln 2) = (4 − 1)/(4 + 1) = 0.6; tanh' = 1 − y², so with dy = 2 at
// y = 0.5: 1.5, and with dy = 1 at y = 0.6: 0.64.
// σ(ln 3) = 3/4, σ(−ln 3) = 1/4, σ(0) = 1/2; σ' = y(1 − y): dy = 4 at y = 3/4 gives 0.75.
TEST(ActivationsRef, TanhAndSigmoidHandValues) {
  const double tol = 1e-15;  // a few ulps of closed-form values
  const std::vector<double> tx = {0.5 * std::log(3.0), std::log(2.0), 0.0, -std::log(2.0)};
  auto ty = poisoned_vector<double>(4);
  ref::tanh_forward<double>(4, tx.data(), ty.data());
  const std::vector<double> expected_ty = {0.5, 0.6, 0.0, -0.6};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(ty[i], expected_ty[i], tol) << i;
  const std::vector<double> tanh_y = {0.5, 0.6}, tanh_dy = {2, 1};
  auto tanh_dx = poisoned_vector<double>(2);
  ref::tanh_backward<double>(2, tanh_y.data(), tanh_dy.data(), tanh_dx.data());
  EXPECT_NEAR(tanh_dx[0], 1.5, tol);
  EXPECT_NEAR(tanh_dx[1], 0.64, tol);

  const std::vector<double> sx = {std::log(3.0), -std::log(3.0), 0.0};
  auto sy = poisoned_vector<double>(3);
  ref::sigmoid_forward<double>(3, sx.data(), sy.data());
  EXPECT_NEAR(sy[0], 0.75, tol);
  EXPECT_NEAR(sy[1], 0.25, tol);
  EXPECT_NEAR(sy[2], 0.5, tol);
  const std::vector<double> sig_y = {0.75}, sig_dy = {4};
  auto sig_dx = poisoned_vector<double>(1);
  ref::sigmoid_backward<double>(1, sig_y.data(), sig_dy.data(), sig_dx.data());
  EXPECT_NEAR(sig_dx[0], 0.75, tol);
}

// Large |x| in float: no overflow to NaN, saturation to exactly 0 and 1, and full relative precision in the tail,
// σ(−40) = e⁻⁴⁰/(1 + e⁻⁴⁰) ≈ 4.2483542552915889e-18 (relative tolerance 1e-6, fp32 rounding).
TEST(ActivationsRef, SigmoidIsStableForLargeMagnitudes) {
  const std::vector<float> x = {-1000.f, -100.f, -40.f, 40.f, 100.f, 1000.f};
  auto y = poisoned_vector<float>(6);
  ref::sigmoid_forward<float>(6, x.data(), y.data());
  for (float v : y) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_NEAR(y[2], 4.2483542552915889e-18, 4.2483542552915889e-18 * 1e-6);
  EXPECT_EQ(y[4], 1.0f);
  EXPECT_EQ(y[5], 1.0f);
}

// f(x) = ⟨w, act(x)⟩; the analytic gradient is backward(dy = w).
void expect_backward_matches(std::vector<double> x, const std::function<void(const double*, double*)>& forward,
                             const std::function<void(const double* x, const double* y, const double* dy, double* dx)>&
                                 backward) {
  const int64_t n = int64_t(x.size());
  const std::vector<double> w = random_vector<double>(n, 99);
  std::vector<double> y(x.size());
  forward(x.data(), y.data());
  auto dx = poisoned_vector<double>(n);
  backward(x.data(), y.data(), w.data(), dx.data());
  auto loss = [&] {
    std::vector<double> out(x.size());
    forward(x.data(), out.data());
    return testing::dot(w, out);
  };
  EXPECT_LE(rel_l2_error(dx, numerical_gradient(x, loss)), kFiniteDifferenceTol);
}

TEST(ActivationsRef, BackwardsMatchFiniteDifferences) {
  const int64_t n = 37;
  const std::vector<double> x = inputs_away_from_kink(n, 5);
  expect_backward_matches(
      x, [&](const double* in, double* out) { ref::relu_forward(n, in, out); },
      [&](const double* in, const double*, const double* dy, double* dx) { ref::relu_backward(n, in, dy, dx); });
  expect_backward_matches(
      x, [&](const double* in, double* out) { ref::leaky_relu_forward(n, 0.2, in, out); },
      [&](const double* in, const double*, const double* dy, double* dx) {
        ref::leaky_relu_backward(n, 0.2, in, dy, dx);
      });
  expect_backward_matches(
      x, [&](const double* in, double* out) { ref::tanh_forward(n, in, out); },
      [&](const double*, const double* out, const double* dy, double* dx) { ref::tanh_backward(n, out, dy, dx); });
  expect_backward_matches(
      x, [&](const double* in, double* out) { ref::sigmoid_forward(n, in, out); },
      [&](const double*, const double* out, const double* dy, double* dx) { ref::sigmoid_backward(n, out, dy, dx); });
}

// prelu over [3, 3, 5]: dx and the per-channel dslope (which sums over batch and space).
TEST(ActivationsRef, PreluBackwardMatchesFiniteDifferences) {
  const int batch = 3, channels = 3, spatial = 5;
  const int64_t n = int64_t(batch) * channels * spatial;
  std::vector<double> x = inputs_away_from_kink(n, 6), slope = random_vector<double>(channels, 7, 0.3);
  const std::vector<double> w = random_vector<double>(n, 8);
  auto loss = [&] {
    std::vector<double> y(static_cast<size_t>(n));
    ref::prelu_forward(batch, channels, spatial, x.data(), slope.data(), y.data());
    return testing::dot(w, y);
  };
  auto dx = poisoned_vector<double>(n), dslope = poisoned_vector<double>(channels);
  ref::prelu_backward(batch, channels, spatial, x.data(), slope.data(), w.data(), dx.data(), dslope.data());
  EXPECT_LE(rel_l2_error(dx, numerical_gradient(x, loss)), kFiniteDifferenceTol);
  EXPECT_LE(rel_l2_error(dslope, numerical_gradient(slope, loss)), kFiniteDifferenceTol);
}

// The float instantiations against the double ones on the same inputs.
TEST(ActivationsRef, FloatMatchesDouble) {
  const int64_t n = 41;
  const std::vector<double> xd = random_vector<double>(n, 12, 3.0), dyd = random_vector<double>(n, 13);
  const std::vector<float> xf(xd.begin(), xd.end()), dyf(dyd.begin(), dyd.end());
  const double tol = 1e-6;  // relative L2, fp32 kernel vs fp64 reference (elementwise: one rounding each)
  std::vector<double> yd(static_cast<size_t>(n)), dxd(static_cast<size_t>(n));
  auto yf = poisoned_vector<float>(n), dxf = poisoned_vector<float>(n);
  ref::tanh_forward(n, xd.data(), yd.data());
  ref::tanh_forward(n, xf.data(), yf.data());
  EXPECT_LE(rel_l2_error(yf, yd), tol);
  ref::tanh_backward(n, yd.data(), dyd.data(), dxd.data());
  ref::tanh_backward(n, yf.data(), dyf.data(), dxf.data());
  EXPECT_LE(rel_l2_error(dxf, dxd), tol);
  yf = poisoned_vector<float>(n), dxf = poisoned_vector<float>(n);
  ref::sigmoid_forward(n, xd.data(), yd.data());
  ref::sigmoid_forward(n, xf.data(), yf.data());
  EXPECT_LE(rel_l2_error(yf, yd), tol);
  ref::sigmoid_backward(n, yd.data(), dyd.data(), dxd.data());
  ref::sigmoid_backward(n, yf.data(), dyf.data(), dxf.data());
  EXPECT_LE(rel_l2_error(dxf, dxd), tol);
  yf = poisoned_vector<float>(n), dxf = poisoned_vector<float>(n);
  ref::leaky_relu_forward(n, 0.2, xd.data(), yd.data());
  ref::leaky_relu_forward(n, 0.2f, xf.data(), yf.data());
  EXPECT_LE(rel_l2_error(yf, yd), tol);
  ref::leaky_relu_backward(n, 0.2f, xf.data(), dyf.data(), dxf.data());
  ref::leaky_relu_backward(n, 0.2, xd.data(), dyd.data(), dxd.data());
  EXPECT_LE(rel_l2_error(dxf, dxd), tol);
}

}  // namespace
}  // namespace gancu
