// Reference batch_norm2d: hand-worked values, normalised-output statistics, the running-statistics closed form,
// inference with running statistics, and the backward against central finite differences.
#include "kernels/cpu/batch_norm2d.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "tests/testing.h"

namespace gancu {
namespace {

using testing::poisoned_vector;
using testing::random_vector;
using testing::rel_l2_error;

// Per-channel mean and variance (biased or unbiased) of an NCS tensor, computed independently of the kernel.
struct ChannelStats {
  std::vector<double> mean, biased_var, unbiased_var;
};
ChannelStats channel_stats(const BatchNorm2dParams& p, const std::vector<double>& x) {
  ChannelStats s;
  const double count = double(p.batch) * p.spatial;
  for (int c = 0; c < p.channels; ++c) {
    double sum = 0, squares = 0;
    for (int n = 0; n < p.batch; ++n)
      for (int i = 0; i < p.spatial; ++i) sum += x[(size_t(n) * p.channels + c) * p.spatial + i];
    const double mean = sum / count;
    for (int n = 0; n < p.batch; ++n)
      for (int i = 0; i < p.spatial; ++i) {
        const double d = x[(size_t(n) * p.channels + c) * p.spatial + i] - mean;
        squares += d * d;
      }
    s.mean.push_back(mean);
    s.biased_var.push_back(squares / count);
    s.unbiased_var.push_back(squares / (count - 1));
  }
  return s;
}

// Two channels of four values each (batch 2, spatial 2), eps = 0 so the numbers are exact by hand.
// Channel 0: {1, 2, 3, 4}: mean 2.5, biased var 5/4, unbiased var 5/3; with γ = 2, β = 0.5:
//   y = 2·(x − 2.5)/√1.25 + 0.5 = {−2.1832815730, −0.3944271910, 1.3944271910, 3.1832815730}.
// Channel 1: {10, 10, 10, 14}: mean 11, biased var 3, unbiased var 4; with γ = 1, β = 0:
//   y = (x − 11)/√3 = {−0.5773502692 ×3, 1.7320508076}.
// Running stats from r_mean = 0, r_var = 1, momentum 0.1: mean {0.25, 1.1}, var {0.9 + 1/6, 0.9 + 0.4}.
TEST(BatchNorm2dRef, HandWorkedTrainingForward) {
  BatchNorm2dParams p;
  p.batch = 2, p.channels = 2, p.spatial = 2, p.eps = 0.0;
  const std::vector<double> x = {1, 2, 10, 10, 3, 4, 10, 14};  // [n0c0, n0c1, n1c0, n1c1]
  const std::vector<double> gamma = {2, 1}, beta = {0.5, 0};
  std::vector<double> running_mean = {0, 0}, running_var = {1, 1};
  auto y = poisoned_vector<double>(8), save_mean = poisoned_vector<double>(2), save_invstd = poisoned_vector<double>(2);
  ref::batch_norm2d_forward_train(p, x.data(), gamma.data(), beta.data(), running_mean.data(), running_var.data(),
                                  y.data(), save_mean.data(), save_invstd.data());
  const std::vector<double> expected_y = {-2.1832815729997477, -0.3944271909999159, -0.5773502691896258,
                                          -0.5773502691896258, 1.3944271909999159,  3.1832815729997477,
                                          -0.5773502691896258, 1.7320508075688772};
  const double tol = 1e-12;  // double kernel vs closed-form values
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], expected_y[i], tol) << i;
  EXPECT_NEAR(save_mean[0], 2.5, tol);
  EXPECT_NEAR(save_mean[1], 11.0, tol);
  EXPECT_NEAR(save_invstd[0], 1 / std::sqrt(1.25), tol);
  EXPECT_NEAR(save_invstd[1], 1 / std::sqrt(3.0), tol);
  EXPECT_NEAR(running_mean[0], 0.25, tol);
  EXPECT_NEAR(running_mean[1], 1.1, tol);
  EXPECT_NEAR(running_var[0], 0.9 + 0.1 * 5.0 / 3.0, tol);
  EXPECT_NEAR(running_var[1], 1.3, tol);
}

// γ = 1, β = 0: every channel of y has mean 0 and biased variance var/(var + eps) ≈ 1, for inputs far from
// standardised (mean 3, stddev 2). Normalising by the unbiased variance instead would miss by 1/N ≈ 1e-2.
template <class T> void check_normalised_statistics(double mean_tol, double var_tol) {
  BatchNorm2dParams p;
  p.batch = 3, p.channels = 4, p.spatial = 35;
  std::vector<T> x = random_vector<T>(p.size(), 11, 2.0);
  for (auto& v : x) v = T(v + 3);
  const std::vector<T> gamma(4, T(1)), beta(4, T(0));
  std::vector<T> running_mean(4, T(0)), running_var(4, T(1));
  auto y = poisoned_vector<T>(p.size()), save_mean = poisoned_vector<T>(4), save_invstd = poisoned_vector<T>(4);
  ref::batch_norm2d_forward_train(p, x.data(), gamma.data(), beta.data(), running_mean.data(), running_var.data(),
                                  y.data(), save_mean.data(), save_invstd.data());
  const ChannelStats s = channel_stats(p, std::vector<double>(y.begin(), y.end()));
  for (int c = 0; c < p.channels; ++c) {
    EXPECT_NEAR(s.mean[c], 0.0, mean_tol) << c;
    EXPECT_NEAR(s.biased_var[c], 1.0, var_tol) << c;
  }
}
TEST(BatchNorm2dRef, NormalisedOutputHasZeroMeanUnitVarianceDouble) {
  check_normalised_statistics<double>(1e-12, 1e-5);
}
TEST(BatchNorm2dRef, NormalisedOutputHasZeroMeanUnitVarianceFloat) { check_normalised_statistics<float>(1e-6, 1e-5); }

// After k training steps: r_k = (1−m)^k·r_0 + Σ_i m(1−m)^(k−1−i)·stat_i, with the unbiased variance for running_var.
TEST(BatchNorm2dRef, RunningStatisticsMatchClosedForm) {
  BatchNorm2dParams p;
  p.batch = 2, p.channels = 3, p.spatial = 7;
  const double m = p.momentum;
  const int steps = 4;
  const std::vector<double> gamma = random_vector<double>(3, 1), beta = random_vector<double>(3, 2);
  const std::vector<double> r0_mean = {0.3, -0.2, 1.5}, r0_var = {2.0, 0.5, 1.0};
  std::vector<double> running_mean = r0_mean, running_var = r0_var;
  std::vector<double> expected_mean(3), expected_var(3);
  for (int c = 0; c < 3; ++c) {
    expected_mean[c] = std::pow(1 - m, steps) * r0_mean[c];
    expected_var[c] = std::pow(1 - m, steps) * r0_var[c];
  }
  for (int i = 0; i < steps; ++i) {
    std::vector<double> x = random_vector<double>(p.size(), 100 + i, 1.0 + i);
    for (auto& v : x) v += 0.5 * i;
    auto y = poisoned_vector<double>(p.size()), save_mean = poisoned_vector<double>(3),
         save_invstd = poisoned_vector<double>(3);
    ref::batch_norm2d_forward_train(p, x.data(), gamma.data(), beta.data(), running_mean.data(), running_var.data(),
                                    y.data(), save_mean.data(), save_invstd.data());
    const ChannelStats s = channel_stats(p, x);
    for (int c = 0; c < 3; ++c) {
      expected_mean[c] += m * std::pow(1 - m, steps - 1 - i) * s.mean[c];
      expected_var[c] += m * std::pow(1 - m, steps - 1 - i) * s.unbiased_var[c];
    }
  }
  const double tol = 1e-12;  // relative L2, double kernel vs closed form
  EXPECT_LE(rel_l2_error(running_mean, expected_mean), tol);
  EXPECT_LE(rel_l2_error(running_var, expected_var), tol);
}

// Inference normalises with the running statistics, not the batch's (which differ a lot from them here).
template <class T> void check_inference(double tol) {
  BatchNorm2dParams p;
  p.batch = 3, p.channels = 3, p.spatial = 5;
  const std::vector<T> x = random_vector<T>(p.size(), 21), gamma = random_vector<T>(3, 22),
                       beta = random_vector<T>(3, 23);
  const std::vector<T> running_mean = {T(0.7), T(-1.3), T(0.1)}, running_var = {T(2.5), T(0.3), T(1.7)};
  auto y = poisoned_vector<T>(p.size());
  ref::batch_norm2d_forward_infer(p, x.data(), gamma.data(), beta.data(), running_mean.data(), running_var.data(),
                                  y.data());
  std::vector<double> expected(size_t(p.size()));
  for (int n = 0; n < p.batch; ++n)
    for (int c = 0; c < p.channels; ++c)
      for (int s = 0; s < p.spatial; ++s) {
        const size_t i = (size_t(n) * p.channels + c) * p.spatial + s;
        expected[i] = double(gamma[c]) * (double(x[i]) - double(running_mean[c])) /
                          std::sqrt(double(running_var[c]) + p.eps) + double(beta[c]);
      }
  EXPECT_LE(rel_l2_error(y.data(), expected.data(), p.size()), tol);
}
TEST(BatchNorm2dRef, InferenceUsesRunningStatisticsDouble) { check_inference<double>(1e-14); }
TEST(BatchNorm2dRef, InferenceUsesRunningStatisticsFloat) { check_inference<float>(1e-6); }

// f = ⟨w, y(x, γ, β)⟩ for a random w; backward with dy = w must give ∂f/∂x, ∂f/∂γ, ∂f/∂β.
TEST(BatchNorm2dRef, BackwardMatchesFiniteDifferences) {
  BatchNorm2dParams p;
  p.batch = 3, p.channels = 2, p.spatial = 5;
  std::vector<double> x = random_vector<double>(p.size(), 31), gamma = random_vector<double>(2, 32),
                      beta = random_vector<double>(2, 33);
  const std::vector<double> w = random_vector<double>(p.size(), 34);
  auto loss = [&] {
    std::vector<double> running_mean(2, 0.0), running_var(2, 1.0), y(size_t(p.size())), save_mean(2), save_invstd(2);
    ref::batch_norm2d_forward_train(p, x.data(), gamma.data(), beta.data(), running_mean.data(), running_var.data(),
                                    y.data(), save_mean.data(), save_invstd.data());
    return testing::dot(w, y);
  };
  std::vector<double> running_mean(2, 0.0), running_var(2, 1.0), y(size_t(p.size())), save_mean(2), save_invstd(2);
  ref::batch_norm2d_forward_train(p, x.data(), gamma.data(), beta.data(), running_mean.data(), running_var.data(),
                                  y.data(), save_mean.data(), save_invstd.data());
  auto dx = poisoned_vector<double>(p.size()), dgamma = poisoned_vector<double>(2), dbeta = poisoned_vector<double>(2);
  ref::batch_norm2d_backward(p, w.data(), x.data(), gamma.data(), save_mean.data(), save_invstd.data(), dx.data(),
                             dgamma.data(), dbeta.data());
  const double tol = 1e-6;  // relative L2 vs central differences (h = 1e-6) in double
  EXPECT_LE(rel_l2_error(dx, testing::numerical_gradient(x, loss)), tol);
  EXPECT_LE(rel_l2_error(dgamma, testing::numerical_gradient(gamma, loss)), tol);
  EXPECT_LE(rel_l2_error(dbeta, testing::numerical_gradient(beta, loss)), tol);
}

// The float instantiation against the double one: forward, saved statistics, running stats and all gradients.
TEST(BatchNorm2dRef, FloatMatchesDouble) {
  BatchNorm2dParams p;
  p.batch = 5, p.channels = 3, p.spatial = 9;
  const std::vector<double> xd = random_vector<double>(p.size(), 41), gd = random_vector<double>(3, 42),
                            bd = random_vector<double>(3, 43), dyd = random_vector<double>(p.size(), 44);
  const std::vector<float> xf(xd.begin(), xd.end()), gf(gd.begin(), gd.end()), bf(bd.begin(), bd.end()),
      dyf(dyd.begin(), dyd.end());
  std::vector<double> rmd(3, 0.2), rvd(3, 1.5), yd(size_t(p.size())), smd(3), sid(3), dxd(size_t(p.size())), dgd(3),
      dbd(3);
  std::vector<float> rmf(3, 0.2f), rvf(3, 1.5f);
  auto yf = poisoned_vector<float>(p.size()), smf = poisoned_vector<float>(3), sif = poisoned_vector<float>(3),
       dxf = poisoned_vector<float>(p.size()), dgf = poisoned_vector<float>(3), dbf = poisoned_vector<float>(3);
  ref::batch_norm2d_forward_train(p, xd.data(), gd.data(), bd.data(), rmd.data(), rvd.data(), yd.data(), smd.data(),
                                  sid.data());
  ref::batch_norm2d_forward_train(p, xf.data(), gf.data(), bf.data(), rmf.data(), rvf.data(), yf.data(), smf.data(),
                                  sif.data());
  ref::batch_norm2d_backward(p, dyd.data(), xd.data(), gd.data(), smd.data(), sid.data(), dxd.data(), dgd.data(),
                             dbd.data());
  ref::batch_norm2d_backward(p, dyf.data(), xf.data(), gf.data(), smf.data(), sif.data(), dxf.data(), dgf.data(),
                             dbf.data());
  const double tol = 1e-5;  // relative L2, fp32 kernel vs fp64 reference
  EXPECT_LE(rel_l2_error(yf, yd), tol);
  EXPECT_LE(rel_l2_error(smf, smd), tol);
  EXPECT_LE(rel_l2_error(sif, sid), tol);
  EXPECT_LE(rel_l2_error(rmf, rmd), tol);
  EXPECT_LE(rel_l2_error(rvf, rvd), tol);
  EXPECT_LE(rel_l2_error(dxf, dxd), tol);
  EXPECT_LE(rel_l2_error(dgf, dgd), tol);
  EXPECT_LE(rel_l2_error(dbf, dbd), tol);
}

// One value per channel has no unbiased variance; PyTorch raises, so does the reference.
TEST(BatchNorm2dRef, RejectsSingleValuePerChannel) {
  BatchNorm2dParams p;  // batch 1, spatial 1
  p.channels = 2;
  std::vector<float> x = {1, 2}, gamma = {1, 1}, beta = {0, 0}, rm = {0, 0}, rv = {1, 1}, y(2), sm(2), si(2);
  EXPECT_THROW(ref::batch_norm2d_forward_train(p, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), y.data(),
                                               sm.data(), si.data()),
               std::invalid_argument);
}

}  // namespace
}  // namespace gancu
