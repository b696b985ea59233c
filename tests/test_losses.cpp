// Reference losses (mean reduction): values and gradients against PyTorch, hand values, BCE at large |x|, and every
// backward against central finite differences.
#include "kernels/cpu/losses.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/testing.h"

namespace gancu {
namespace {

using testing::numerical_gradient;
using testing::poisoned_vector;
using testing::random_vector;
using testing::rel_l2_error;

// Expected values from Debian's python3-torch 1.13, computed once in float64:
//   x = torch.tensor(kX, dtype=torch.float64, requires_grad=True); t = torch.tensor(kTarget, dtype=torch.float64)
//   loss = F.binary_cross_entropy_with_logits(x, t)   (likewise F.mse_loss, F.l1_loss; reduction="mean")
//   loss.backward(); print(repr(loss.item()), x.grad.tolist())
const std::vector<double> kX = {0.3, -1.7, 2.5, -0.05, 4.0, -3.2, 0.9};
const std::vector<double> kTarget = {1.0, 0.0, 0.9, 0.1, 0.0, 1.0, 0.5};
constexpr double kTorchBce = 1.396249684567565;
const std::vector<double> kTorchBceGrad = {-0.06079392616976299, 0.022066466440504955, 0.003448831425536647,
                                           0.05535751478796994,  0.14028768429112978,  -0.13726203960046224,
                                           0.030135643232143412};
constexpr double kTorchMse = 5.680357142857143;
const std::vector<double> kTorchMseGrad = {-0.19999999999999998, -0.48571428571428565, 0.45714285714285713,
                                           -0.042857142857142864, 1.1428571428571428,  -1.2,
                                           0.11428571428571428};
constexpr double kTorchL1 = 1.8214285714285712;
const std::vector<double> kTorchL1Grad = {-1 / 7.0, -1 / 7.0, 1 / 7.0, -1 / 7.0, 1 / 7.0, -1 / 7.0, 1 / 7.0};

template <class T> void check_against_torch(double tol) {
  const std::vector<T> x(kX.begin(), kX.end()), t(kTarget.begin(), kTarget.end());
  const int64_t n = int64_t(x.size());
  EXPECT_NEAR(ref::bce_with_logits_forward<T>(n, x.data(), t.data()), kTorchBce, tol * kTorchBce);
  EXPECT_NEAR(ref::mse_forward<T>(n, x.data(), t.data()), kTorchMse, tol * kTorchMse);
  EXPECT_NEAR(ref::l1_forward<T>(n, x.data(), t.data()), kTorchL1, tol * kTorchL1);
  auto dx = poisoned_vector<T>(n);
  ref::bce_with_logits_backward<T>(n, x.data(), t.data(), T(1), dx.data());
  EXPECT_LE(rel_l2_error(dx, kTorchBceGrad), tol);
  dx = poisoned_vector<T>(n);
  ref::mse_backward<T>(n, x.data(), t.data(), T(1), dx.data());
  EXPECT_LE(rel_l2_error(dx, kTorchMseGrad), tol);
  dx = poisoned_vector<T>(n);
  ref::l1_backward<T>(n, x.data(), t.data(), T(1), dx.data());
  EXPECT_LE(rel_l2_error(dx, kTorchL1Grad), tol);
}
// Relative tolerances: double 1e-14 (a few roundings), float 1e-6 (inputs rounded to fp32 first).
TEST(LossesRef, MatchPyTorchDouble) { check_against_torch<double>(1e-14); }
TEST(LossesRef, MatchPyTorchFloat) { check_against_torch<float>(1e-6); }

// By hand: x = {1, −2}, t = {0, 0}: mse = (1 + 4)/2 = 2.5, l1 = (1 + 2)/2 = 1.5, and with dloss = 2:
// mse' = 2·2·(x − t)/2 = {2, −4}, l1' = 2·sign(x − t)/2 = {1, −1}. bce at x = 0 is log 2 for any target; with
// x = {0, 0}, t = {0, 1}, dloss = 1: bce' = (σ(0) − t)/2 = {0.25, −0.25}. l1' is 0 where x == t.
TEST(LossesRef, HandValues) {
  const std::vector<double> x = {1, -2}, t = {0, 0};
  EXPECT_DOUBLE_EQ(ref::mse_forward<double>(2, x.data(), t.data()), 2.5);
  EXPECT_DOUBLE_EQ(ref::l1_forward<double>(2, x.data(), t.data()), 1.5);
  auto dx = poisoned_vector<double>(2);
  ref::mse_backward<double>(2, x.data(), t.data(), 2.0, dx.data());
  EXPECT_EQ(dx, (std::vector<double>{2, -4}));
  ref::l1_backward<double>(2, x.data(), t.data(), 2.0, dx.data());
  EXPECT_EQ(dx, (std::vector<double>{1, -1}));
  const std::vector<double> zero = {0, 0}, bce_t = {0, 1};
  EXPECT_NEAR(ref::bce_with_logits_forward<double>(2, zero.data(), bce_t.data()), std::log(2.0), 1e-15);
  ref::bce_with_logits_backward<double>(2, zero.data(), bce_t.data(), 1.0, dx.data());
  EXPECT_EQ(dx, (std::vector<double>{0.25, -0.25}));
  const std::vector<double> same = {0.5, -0.5};
  ref::l1_backward<double>(2, same.data(), same.data(), 1.0, dx.data());
  EXPECT_EQ(dx, (std::vector<double>{0, 0}));
}

// x = {80, −80, 80, −80}, t = {0, 1, 1, 0}: the two wrong-side terms cost 80 each, the right-side ones e⁻⁸⁰ ≈ 1.8e-35,
// so the mean is 40. Gradients (σ(x) − t)/4 = {0.25, −0.25, ≈0, e⁻⁸⁰/4 = 4.512128469613538e-36}. Both from
// F.binary_cross_entropy_with_logits in float64 (Debian python3-torch 1.13). A naive log(σ(x)) gives inf here.
TEST(LossesRef, BceIsFiniteAndCorrectAtLargeLogits) {
  const std::vector<float> x = {80.f, -80.f, 80.f, -80.f}, t = {0.f, 1.f, 1.f, 0.f};
  const double loss = ref::bce_with_logits_forward<float>(4, x.data(), t.data());
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_NEAR(loss, 40.0, 40.0 * 1e-12);
  auto dx = poisoned_vector<float>(4);
  ref::bce_with_logits_backward<float>(4, x.data(), t.data(), 1.0f, dx.data());
  EXPECT_FLOAT_EQ(dx[0], 0.25f);
  EXPECT_FLOAT_EQ(dx[1], -0.25f);
  EXPECT_NEAR(dx[2], 0.0f, 1e-30f);
  EXPECT_NEAR(dx[3], 4.512128469613538e-36, 4.512128469613538e-36 * 1e-5);  // a normal fp32 number: 1e-5 relative
}

// f(x) = dloss · loss(x, t) with dloss = 1.7; backward(dloss) must be ∂f/∂x.
TEST(LossesRef, BackwardsMatchFiniteDifferences) {
  const int64_t n = 29;
  const double dloss = 1.7;
  const double tol = 1e-7;  // relative L2 vs central differences (h = 1e-6) in double
  std::vector<double> x = random_vector<double>(n, 1, 2.0);
  std::vector<double> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[i] = (i % 5) / 4.0;  // targets across [0, 1], soft labels included
  const std::vector<double> regression_t = random_vector<double>(n, 2);

  auto bce = [&] { return dloss * ref::bce_with_logits_forward(n, x.data(), t.data()); };
  auto mse = [&] { return dloss * ref::mse_forward(n, x.data(), regression_t.data()); };
  auto l1 = [&] { return dloss * ref::l1_forward(n, x.data(), regression_t.data()); };
  auto dx = poisoned_vector<double>(n);
  ref::bce_with_logits_backward<double>(n, x.data(), t.data(), dloss, dx.data());
  EXPECT_LE(rel_l2_error(dx, numerical_gradient(x, bce)), tol);
  dx = poisoned_vector<double>(n);
  ref::mse_backward<double>(n, x.data(), regression_t.data(), dloss, dx.data());
  EXPECT_LE(rel_l2_error(dx, numerical_gradient(x, mse)), tol);
  dx = poisoned_vector<double>(n);
  ref::l1_backward<double>(n, x.data(), regression_t.data(), dloss, dx.data());
  EXPECT_LE(rel_l2_error(dx, numerical_gradient(x, l1)), tol);
}

}  // namespace
}  // namespace gancu
