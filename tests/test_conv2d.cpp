// Reference conv2d: gradients against central finite differences, hand-worked values, and a PyTorch cross-check.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using testing::dot;
using testing::numerical_gradient;
using testing::poisoned_vector;
using testing::random_vector;
using testing::rel_l2_error;

// The loss L = ⟨y, r⟩ is linear in each input, so central differences are exact up to rounding (~1e-10 relative).
constexpr double kFiniteDifferenceTol = 1e-7;

std::string describe(const Conv2dParams& p) {
  return "batch " + std::to_string(p.batch) + ", " + std::to_string(p.in_channels) + "→" +
         std::to_string(p.out_channels) + " channels, " + std::to_string(p.in_h) + "x" + std::to_string(p.in_w) +
         ", kernel " + std::to_string(p.kernel) + ", stride " + std::to_string(p.stride) + ", pad " +
         std::to_string(p.pad);
}

struct GradientCase {
  Conv2dParams params;
  bool with_bias;
};

// Odd and non-square sizes, stride 1 and 2, padding 0/1, kernels 1/3/4/9, with and without bias.
const std::vector<GradientCase> kGradientCases = {
    {{.batch = 2, .in_channels = 2, .in_h = 5, .in_w = 4, .out_channels = 3, .kernel = 3, .stride = 1, .pad = 1}, true},
    {{.batch = 1, .in_channels = 3, .in_h = 7, .in_w = 6, .out_channels = 2, .kernel = 3, .stride = 2, .pad = 0}, false},
    {{.batch = 2, .in_channels = 1, .in_h = 6, .in_w = 7, .out_channels = 2, .kernel = 4, .stride = 2, .pad = 1}, true},
    {{.batch = 1, .in_channels = 2, .in_h = 5, .in_w = 3, .out_channels = 3, .kernel = 1, .stride = 2, .pad = 0}, true},
    {{.batch = 1, .in_channels = 2, .in_h = 3, .in_w = 3, .out_channels = 2, .kernel = 1, .stride = 1, .pad = 1}, false},
    {{.batch = 1, .in_channels = 1, .in_h = 10, .in_w = 9, .out_channels = 2, .kernel = 9, .stride = 1, .pad = 1}, true},
    {{.batch = 2, .in_channels = 2, .in_h = 9, .in_w = 11, .out_channels = 1, .kernel = 9, .stride = 2, .pad = 0}, false},
};

TEST(Conv2dRef, BackwardMatchesFiniteDifferences) {
  uint64_t seed = 100;
  for (const GradientCase& c : kGradientCases) {
    const Conv2dParams& p = c.params;
    SCOPED_TRACE(describe(p) + (c.with_bias ? ", bias" : ", no bias"));
    auto x = random_vector<double>(p.x_size(), ++seed);
    auto w = random_vector<double>(p.w_size(), ++seed);
    auto b = random_vector<double>(p.out_channels, ++seed);
    const auto r = random_vector<double>(p.y_size(), ++seed);  // dL/dy
    std::vector<double> y(size_t(p.y_size()));
    const std::function<double()> loss = [&] {
      ref::conv2d_forward<double>(p, x.data(), w.data(), c.with_bias ? b.data() : nullptr, y.data());
      return dot(y, r);
    };

    auto dx = poisoned_vector<double>(p.x_size());
    auto dw = poisoned_vector<double>(p.w_size());
    ref::conv2d_backward_input<double>(p, r.data(), w.data(), dx.data());
    ref::conv2d_backward_weight<double>(p, x.data(), r.data(), dw.data());
    EXPECT_LE(rel_l2_error(dx, numerical_gradient(x, loss)), kFiniteDifferenceTol) << "dx";
    EXPECT_LE(rel_l2_error(dw, numerical_gradient(w, loss)), kFiniteDifferenceTol) << "dweight";
    if (c.with_bias) {
      auto db = poisoned_vector<double>(p.out_channels);
      ref::bias2d_backward<double>(p.batch, p.out_channels, p.out_h() * p.out_w(), r.data(), db.data());
      EXPECT_LE(rel_l2_error(db, numerical_gradient(b, loss)), kFiniteDifferenceTol) << "dbias";
    }
  }
}

TEST(Conv2dRef, BiasAddsPerChannelAndNullMeansNone) {
  const Conv2dParams p{.batch = 2, .in_channels = 3, .in_h = 4, .in_w = 5, .out_channels = 2, .kernel = 3, .stride = 1,
                       .pad = 1};
  const auto x = random_vector<double>(p.x_size(), 1);
  const auto w = random_vector<double>(p.w_size(), 2);
  const auto b = random_vector<double>(p.out_channels, 3);
  auto with_bias = poisoned_vector<double>(p.y_size());
  auto without_bias = poisoned_vector<double>(p.y_size());
  ref::conv2d_forward<double>(p, x.data(), w.data(), b.data(), with_bias.data());
  ref::conv2d_forward<double>(p, x.data(), w.data(), nullptr, without_bias.data());
  const int spatial = p.out_h() * p.out_w();
  for (int64_t i = 0; i < p.y_size(); ++i) {
    const int channel = int(i / spatial) % p.out_channels;
    EXPECT_NEAR(with_bias[size_t(i)], without_bias[size_t(i)] + b[size_t(channel)], 1e-12) << i;  // abs tol 1e-12
  }
}

TEST(Conv2dRef, Bias2dBackwardSumsBatchAndSpatial) {
  // dy [2, 2, 3]: channel 0 holds 1..3 and 7..9 (sum 30), channel 1 holds 4..6 and 10..12 (sum 48). Exact.
  const std::vector<double> dy = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  auto db = poisoned_vector<double>(2);
  ref::bias2d_backward<double>(2, 2, 3, dy.data(), db.data());
  EXPECT_EQ(db[0], 30.0);
  EXPECT_EQ(db[1], 48.0);
}

// Hand-worked: x = [[1,2,3],[4,5,6],[7,8,9]], weight = the Laplacian stencil [[0,1,0],[1,-4,1],[0,1,0]] plus 10 at
// tap (0,0), pad 1, bias 0.5. The Laplacian part is −4·centre + the 4 neighbours (zero outside), e.g. at (0,0):
// −4 + 2 + 4 = 2, at (1,1): −20 + 2 + 4 + 6 + 8 = 0. Tap (0,0) reads x[oh−1][ow−1] (cross-correlation, no flip), so it
// adds 10·[[0,0,0],[0,1,2],[0,4,5]]. Laplacian = [[2,1,−4],[−3,0,−7],[−16,−11,−22]]; total + 0.5 below.
TEST(Conv2dRef, HandWorkedThreeByThree) {
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<double> w = {10, 1, 0, 1, -4, 1, 0, 1, 0};
  const std::vector<double> b = {0.5};
  Conv2dParams p{.batch = 1, .in_channels = 1, .in_h = 3, .in_w = 3, .out_channels = 1, .kernel = 3, .stride = 1,
                 .pad = 1};
  auto y = poisoned_vector<double>(p.y_size());
  ref::conv2d_forward<double>(p, x.data(), w.data(), b.data(), y.data());
  const std::vector<double> expected = {2.5, 1.5, -3.5, -2.5, 10.5, 13.5, -15.5, 29.5, 28.5};
  EXPECT_EQ(y, expected);  // small integers plus 0.5: exact

  // Stride 2 keeps output positions (0,0), (0,2), (2,0), (2,2) of the stride-1 result.
  p.stride = 2;
  y = poisoned_vector<double>(p.y_size());
  ref::conv2d_forward<double>(p, x.data(), w.data(), b.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{2.5, -3.5, -15.5, 28.5}));
}

// PyTorch 1.13 (Debian python3-torch), obtained with:
//   torch.manual_seed(7); lit = lambda s: torch.round(torch.randn(s).double() * 100) / 100
//   x = lit((1,2,3,4)); w = lit((2,2,3,3)); b = lit((2,))
//   torch.nn.functional.conv2d(x, w, b, stride=2, padding=1)
// The inputs have two decimals, so every product is exact to 4 decimals and the outputs below are exact.
TEST(Conv2dRef, MatchesPyTorch) {
  const std::vector<double> x = {-0.82, 0.40, 0.90, -1.39, -0.17, 0.29, -0.64, -0.89, -0.85, -1.22, -0.08, 1.36,
                                 -1.30, 0.09, -1.38, 0.50, -0.87, -0.56, -2.06, -0.36, 1.10, 0.48, 1.40, 1.41};
  const std::vector<double> w = {-0.14, 0.75, 0.61, 1.87, 2.51, -1.25, 0.82, -1.07, -1.64, 0.16, 0.40, -1.37,
                                 -0.10, 0.24, 0.63, -0.09, -0.38, -1.17, 0.36, -0.32, -0.37, -0.88, 0.55, 0.15,
                                 -2.26, 0.40, 0.57, 0.31, 1.29, 0.87, -1.38, -0.96, -0.40, -0.17, 0.76, 0.99};
  const std::vector<double> b = {0.33, -0.88};
  const std::vector<double> expected = {-1.7914, 8.6859, 0.7565, -4.1598, -1.1773, -3.1904, -4.4409, -4.7225};
  const Conv2dParams p{.batch = 1, .in_channels = 2, .in_h = 3, .in_w = 4, .out_channels = 2, .kernel = 3, .stride = 2,
                       .pad = 1};
  ASSERT_EQ(p.y_size(), int64_t(expected.size()));
  auto y = poisoned_vector<double>(p.y_size());
  ref::conv2d_forward<double>(p, x.data(), w.data(), b.data(), y.data());
  EXPECT_LE(rel_l2_error(y, expected), 1e-12);  // only decimal rounding of the literals separates them

  // The float instantiation agrees to float precision.
  const std::vector<float> xf(x.begin(), x.end()), wf(w.begin(), w.end()), bf(b.begin(), b.end());
  auto yf = poisoned_vector<float>(p.y_size());
  ref::conv2d_forward<float>(p, xf.data(), wf.data(), bf.data(), yf.data());
  EXPECT_LE(rel_l2_error(yf, expected), 1e-6);
}

}  // namespace
}  // namespace gancu
