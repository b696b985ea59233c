// Reference Adam step: a hand-worked first step and four steps against torch.optim.Adam, with and without weight decay.
#include "kernels/cpu/adam.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "tests/testing.h"

namespace gancu {
namespace {

// Step 1 by hand: m = (1−β1)g and v = (1−β2)g², so the bias-corrected moments are g and g², and the update is
// lr·g/(|g| + eps). With lr = 2e-4, eps = 1e-8: g = 0.1 → 2e-4·0.1/(0.1 + 1e-8) = 1.99999980000002e-4;
// g = −0.5 → −1.99999996000000e-4 (sign of g; magnitude ≈ lr whatever |g|).
TEST(AdamRef, FirstStepHandValues) {
  AdamParams p;  // lr 2e-4, betas (0.5, 0.999), eps 1e-8, no weight decay
  std::vector<double> param = {1.0, -2.0}, m = {0, 0}, v = {0, 0};
  const std::vector<double> grad = {0.1, -0.5};
  ref::adam_step<double>(2, p, 1, param.data(), grad.data(), m.data(), v.data());
  const double tol = 1e-16;  // absolute, on values of size 1: rounding only
  EXPECT_NEAR(param[0], 1.0 - 2e-4 * 0.1 / (0.1 + 1e-8), tol);
  EXPECT_NEAR(param[0], 1.0 - 1.99999980000002e-4, tol);
  EXPECT_NEAR(param[1], -2.0 + 1.99999996000000e-4, 4 * tol);
  EXPECT_NEAR(m[0], 0.05, tol);
  EXPECT_NEAR(m[1], -0.25, tol);
  EXPECT_NEAR(v[0], 0.001 * 0.01, 1e-18);  // ~1e-14 relative
  EXPECT_NEAR(v[1], 0.001 * 0.25, 1e-18);
}

// Inputs and expected values. The expected ones come from Debian's python3-torch 1.13, computed once in float64:
//   p = torch.tensor(kParam0, dtype=torch.float64, requires_grad=True)
//   opt = torch.optim.Adam([p], lr=2e-4, betas=(0.5, 0.999), eps=1e-8, weight_decay=wd)   # wd = 0.0 and 0.1
//   for g in kGrads: p.grad = torch.tensor(g, dtype=torch.float64); opt.step()
//   print(p.tolist(), opt.state[p]["exp_avg"].tolist(), opt.state[p]["exp_avg_sq"].tolist())
const std::vector<double> kParam0 = {0.5, -1.25, 2.0, 0.0, -0.3};
const std::vector<std::vector<double>> kGrads = {{0.1, -0.2, 0.3, -0.4, 0.05},
                                                 {-0.3, 0.25, 0.1, 0.2, -0.15},
                                                 {0.2, 0.1, -0.5, 0.05, 0.3},
                                                 {0.0, -0.1, 0.2, -0.3, 0.4}};

struct TorchAdamResult {
  double weight_decay;
  std::vector<double> param, m, v;
};
const TorchAdamResult kTorchNoDecay = {
    0.0,
    {0.4998879836793829, -1.2499840124479278, 1.999772073308127, 0.00028649478510756553, -0.3004004685143682},
    {0.018750000000000003, -0.0062500000000000056, 0.0062500000000000056, -0.13749999999999998, 0.259375},
    {0.00013975011999000012, 0.00012224518246000012, 0.0003894602799100004, 0.0002919380198400003,
     0.00027485752999750025}};
const TorchAdamResult kTorchDecay = {
    0.1,
    {0.49975715656551223, -1.249628080169283, 1.9995220654504025, 0.00028646088361551603, -0.30033585456563666},
    {0.06561180160677656, -0.12341723758853484, 0.19371953734346958, -0.13748360140868388, 0.23124014218432792},
    {0.0001497490683461756, 0.00017214444405523152, 0.0005889618917182713, 0.00029193732431619866,
     0.00024245703970607118}};

// The parameter moves by ~1e-4 per step, so it is compared through its displacement param − param0, which a wrong
// bias correction or eps placement changes at the 1e-3 relative level or more.
template <class T>
void check_against_torch(const TorchAdamResult& expected, double displacement_tol, double moment_tol) {
  AdamParams p;
  p.lr = 2e-4, p.beta1 = 0.5, p.beta2 = 0.999, p.eps = 1e-8, p.weight_decay = expected.weight_decay;
  const size_t n = kParam0.size();
  std::vector<T> param(kParam0.begin(), kParam0.end()), m(n, T(0)), v(n, T(0));
  for (size_t step = 0; step < kGrads.size(); ++step) {
    const std::vector<T> grad(kGrads[step].begin(), kGrads[step].end());
    ref::adam_step<T>(int64_t(n), p, int64_t(step) + 1, param.data(), grad.data(), m.data(), v.data());
  }
  std::vector<double> displacement(n), expected_displacement(n);
  for (size_t i = 0; i < n; ++i) {
    displacement[i] = double(param[i]) - double(T(kParam0[i]));
    expected_displacement[i] = expected.param[i] - kParam0[i];
  }
  EXPECT_LE(testing::rel_l2_error(displacement, expected_displacement), displacement_tol);
  EXPECT_LE(testing::rel_l2_error(m, expected.m), moment_tol);
  EXPECT_LE(testing::rel_l2_error(v, expected.v), moment_tol);
}
// Relative L2 tolerances. Double: 1e-12 for everything (only rounding order differs from torch). Float: 1e-6 for the
// moments (fp32 rounding); 2e-3 for the displacement, because an fp32 parameter of size ~1 is rounded to ~1e-7 at
// every step while it moves only ~1e-4 per step (measured: 3e-4).
TEST(AdamRef, MatchesTorchWithoutWeightDecayDouble) { check_against_torch<double>(kTorchNoDecay, 1e-12, 1e-12); }
TEST(AdamRef, MatchesTorchWithWeightDecayDouble) { check_against_torch<double>(kTorchDecay, 1e-12, 1e-12); }
TEST(AdamRef, MatchesTorchWithoutWeightDecayFloat) { check_against_torch<float>(kTorchNoDecay, 2e-3, 1e-6); }
TEST(AdamRef, MatchesTorchWithWeightDecayFloat) { check_against_torch<float>(kTorchDecay, 2e-3, 1e-6); }

TEST(AdamRef, RejectsStepZero) {
  AdamParams p;
  std::vector<float> param = {1}, grad = {1}, m = {0}, v = {0};
  EXPECT_THROW(ref::adam_step<float>(1, p, 0, param.data(), grad.data(), m.data(), v.data()), std::invalid_argument);
}

}  // namespace
}  // namespace gancu
