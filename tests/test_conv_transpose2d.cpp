// Reference conv_transpose2d: gradients against central finite differences, the adjoint identity with conv2d,
// hand-worked values and a PyTorch cross-check.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv_transpose2d.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using testing::dot;
using testing::numerical_gradient;
using testing::poisoned_vector;
using testing::random_vector;
using testing::rel_l2_error;

// L = ⟨y, r⟩ is linear in each input, so central differences are exact up to rounding (~1e-10 relative).
constexpr double kFiniteDifferenceTol = 1e-7;

std::string describe(const ConvTranspose2dParams& p) {
  return "batch " + std::to_string(p.batch) + ", " + std::to_string(p.in_channels) + "→" +
         std::to_string(p.out_channels) + " channels, " + std::to_string(p.in_h) + "x" + std::to_string(p.in_w) + "→" +
         std::to_string(p.out_h()) + "x" + std::to_string(p.out_w()) + ", kernel " + std::to_string(p.kernel) +
         ", stride " + std::to_string(p.stride) + ", pad " + std::to_string(p.pad) + ", output_pad " +
         std::to_string(p.output_pad);
}

struct GradientCase {
  ConvTranspose2dParams params;
  bool with_bias;
};

const std::vector<GradientCase> kGradientCases = {
    {{.batch = 2, .in_channels = 2, .in_h = 3, .in_w = 4, .out_channels = 3, .kernel = 3, .stride = 1, .pad = 1}, true},
    {{.batch = 1, .in_channels = 3, .in_h = 3, .in_w = 3, .out_channels = 2, .kernel = 4, .stride = 2, .pad = 1}, false},
    {{.batch = 2, .in_channels = 2, .in_h = 2, .in_w = 3, .out_channels = 2, .kernel = 3, .stride = 2, .pad = 1,
      .output_pad = 1},
     true},
    {{.batch = 1, .in_channels = 2, .in_h = 3, .in_w = 2, .out_channels = 3, .kernel = 1, .stride = 2, .pad = 0,
      .output_pad = 1},
     false},
    {{.batch = 1, .in_channels = 2, .in_h = 2, .in_w = 3, .out_channels = 1, .kernel = 9, .stride = 1, .pad = 1}, true},
    // DCGAN's first generator layer in miniature: 1x1 → 4x4, stride 1, no padding.
    {{.batch = 2, .in_channels = 3, .in_h = 1, .in_w = 1, .out_channels = 2, .kernel = 4, .stride = 1, .pad = 0}, true},
};

TEST(ConvTranspose2dRef, BackwardMatchesFiniteDifferences) {
  uint64_t seed = 200;
  for (const GradientCase& c : kGradientCases) {
    const ConvTranspose2dParams& p = c.params;
    SCOPED_TRACE(describe(p) + (c.with_bias ? ", bias" : ", no bias"));
    auto x = random_vector<double>(p.x_size(), ++seed);
    auto w = random_vector<double>(p.w_size(), ++seed);
    auto b = random_vector<double>(p.out_channels, ++seed);
    const auto r = random_vector<double>(p.y_size(), ++seed);  // dL/dy
    std::vector<double> y(size_t(p.y_size()));
    const std::function<double()> loss = [&] {
      ref::conv_transpose2d_forward<double>(p, x.data(), w.data(), c.with_bias ? b.data() : nullptr, y.data());
      return dot(y, r);
    };

    auto dx = poisoned_vector<double>(p.x_size());
    auto dw = poisoned_vector<double>(p.w_size());
    ref::conv_transpose2d_backward_input<double>(p, r.data(), w.data(), dx.data());
    ref::conv_transpose2d_backward_weight<double>(p, x.data(), r.data(), dw.data());
    EXPECT_LE(rel_l2_error(dx, numerical_gradient(x, loss)), kFiniteDifferenceTol) << "dx";
    EXPECT_LE(rel_l2_error(dw, numerical_gradient(w, loss)), kFiniteDifferenceTol) << "dweight";
    if (c.with_bias) {
      auto db = poisoned_vector<double>(p.out_channels);
      ref::bias2d_backward<double>(p.batch, p.out_channels, p.out_h() * p.out_w(), r.data(), db.data());
      EXPECT_LE(rel_l2_error(db, numerical_gradient(b, loss)), kFiniteDifferenceTol) << "dbias";
    }
  }
}

// The conv_transpose2d that maps a conv2d's output shape back onto its input shape, with the same weight tensor.
ConvTranspose2dParams transpose_of(const Conv2dParams& c) {
  ConvTranspose2dParams t{.batch = c.batch, .in_channels = c.out_channels, .in_h = c.out_h(), .in_w = c.out_w(),
                          .out_channels = c.in_channels, .kernel = c.kernel, .stride = c.stride, .pad = c.pad};
  t.output_pad = c.in_h - t.out_h();  // rows the strided conv2d never reached
  return t;
}

const std::vector<Conv2dParams> kAdjointCases = {
    {.batch = 2, .in_channels = 3, .in_h = 7, .in_w = 7, .out_channels = 2, .kernel = 3, .stride = 2, .pad = 1},
    {.batch = 1, .in_channels = 2, .in_h = 8, .in_w = 8, .out_channels = 3, .kernel = 4, .stride = 2, .pad = 1},
    {.batch = 2, .in_channels = 2, .in_h = 6, .in_w = 6, .out_channels = 2, .kernel = 3, .stride = 2, .pad = 1},
    {.batch = 1, .in_channels = 2, .in_h = 6, .in_w = 8, .out_channels = 3, .kernel = 3, .stride = 2, .pad = 1},
    {.batch = 1, .in_channels = 1, .in_h = 10, .in_w = 9, .out_channels = 2, .kernel = 9, .stride = 1, .pad = 1},
    {.batch = 2, .in_channels = 4, .in_h = 4, .in_w = 4, .out_channels = 3, .kernel = 4, .stride = 1, .pad = 0},
};

// ⟨conv2d(x, w), y⟩ = ⟨x, conv_transpose2d(y, w)⟩, and the pairs of backward kernels that are the same sums.
TEST(ConvTranspose2dRef, IsTheAdjointOfConv2d) {
  uint64_t seed = 300;
  for (const Conv2dParams& c : kAdjointCases) {
    const ConvTranspose2dParams t = transpose_of(c);
    SCOPED_TRACE(describe(t));
    ASSERT_EQ(t.out_h(), c.in_h);
    ASSERT_EQ(t.out_w(), c.in_w);  // one output_pad must serve both dimensions
    const auto x = random_vector<double>(c.x_size(), ++seed);
    const auto y = random_vector<double>(c.y_size(), ++seed);
    const auto w = random_vector<double>(c.w_size(), ++seed);

    auto conv_x = poisoned_vector<double>(c.y_size());
    auto transposed_y = poisoned_vector<double>(c.x_size());
    ref::conv2d_forward<double>(c, x.data(), w.data(), nullptr, conv_x.data());
    ref::conv_transpose2d_forward<double>(t, y.data(), w.data(), nullptr, transposed_y.data());
    const double lhs = dot(conv_x, y), rhs = dot(x, transposed_y);
    EXPECT_NEAR(lhs, rhs, 1e-12 * std::abs(lhs));  // same products summed in another order: relative 1e-12

    // conv2d's input gradient is conv_transpose2d's forward: same sums in the same order, so exactly equal.
    auto conv_dx = poisoned_vector<double>(c.x_size());
    ref::conv2d_backward_input<double>(c, y.data(), w.data(), conv_dx.data());
    EXPECT_EQ(conv_dx, transposed_y);

    // And conv_transpose2d's input gradient is conv2d's forward (no bias); weight gradients swap roles of x and dy.
    auto transposed_dx = poisoned_vector<double>(c.y_size());
    ref::conv_transpose2d_backward_input<double>(t, x.data(), w.data(), transposed_dx.data());
    EXPECT_LE(rel_l2_error(transposed_dx, conv_x), 1e-14);  // rounding of reordered sums only
    auto conv_dw = poisoned_vector<double>(c.w_size());
    auto transposed_dw = poisoned_vector<double>(c.w_size());
    ref::conv2d_backward_weight<double>(c, x.data(), y.data(), conv_dw.data());
    ref::conv_transpose2d_backward_weight<double>(t, y.data(), x.data(), transposed_dw.data());
    EXPECT_LE(rel_l2_error(transposed_dw, conv_dw), 1e-14);
  }
}

// Hand-worked: x = [[1,2],[3,4]] (1x1x2x2), kernel 4, stride 2, pad 1 → 4x4. Input pixel (ih, iw) lands on output
// (2·ih − 1 + kh, 2·iw − 1 + kw). With an all-ones weight, output row 0 gets ih = 0 only, rows 1 and 2 get both input
// rows, row 3 gets ih = 1 only (likewise for columns), so each output is the sum of the inputs covering it:
//   [[1, 1+2, 1+2, 2], [1+3, 10, 10, 2+4], [1+3, 10, 10, 2+4], [3, 3+4, 3+4, 4]].
TEST(ConvTranspose2dRef, HandWorkedUpsampleWithOnes) {
  const ConvTranspose2dParams p{.batch = 1, .in_channels = 1, .in_h = 2, .in_w = 2, .out_channels = 1, .kernel = 4,
                                .stride = 2, .pad = 1};
  const std::vector<double> x = {1, 2, 3, 4};
  const std::vector<double> ones(16, 1.0);
  auto y = poisoned_vector<double>(p.y_size());
  ref::conv_transpose2d_forward<double>(p, x.data(), ones.data(), nullptr, y.data());
  EXPECT_EQ(y, (std::vector<double>{1, 3, 3, 2, 4, 10, 10, 6, 4, 10, 10, 6, 3, 7, 7, 4}));  // exact integers
}

// Same input, a weight that is 1 at the single tap (kh, kw) = (1, 2): pixel (ih, iw) lands only on (2·ih, 2·iw + 1),
// which pins down the orientation (no flip, rows then columns). Bias 0.25 then fills every output.
TEST(ConvTranspose2dRef, HandWorkedSingleTap) {
  const ConvTranspose2dParams p{.batch = 1, .in_channels = 1, .in_h = 2, .in_w = 2, .out_channels = 1, .kernel = 4,
                                .stride = 2, .pad = 1};
  const std::vector<double> x = {1, 2, 3, 4};
  std::vector<double> w(16, 0.0);
  w[1 * 4 + 2] = 1.0;
  const std::vector<double> b = {0.25};
  auto y = poisoned_vector<double>(p.y_size());
  ref::conv_transpose2d_forward<double>(p, x.data(), w.data(), b.data(), y.data());
  const double o = 0.25;
  EXPECT_EQ(y, (std::vector<double>{o, 1 + o, o, 2 + o, o, o, o, o, o, 3 + o, o, 4 + o, o, o, o, o}));  // exact
}

// PyTorch 1.13 (Debian python3-torch), obtained with:
//   torch.manual_seed(7); lit = lambda s: torch.round(torch.randn(s).double() * 100) / 100
//   (a conv2d case drawn first: lit((1,2,3,4)), lit((2,2,3,3)), lit((2,)) — see test_conv2d.cpp), then
//   x = lit((1,2,2,3)); w = lit((2,2,3,3)); b = lit((2,))
//   torch.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)  # → shape (1, 2, 4, 6)
// Two-decimal inputs make the outputs exact to 4 decimals.
TEST(ConvTranspose2dRef, MatchesPyTorch) {
  const std::vector<double> x = {-1.68, -0.72, 0.96, 0.13, 0.55, 2.13, -0.88, -2.08, 1.83, -0.55, 1.04, -1.26};
  const std::vector<double> w = {-0.38, -0.27, 0.68, -0.39, 1.33,  0.11,  0.34, -0.32, -1.30, -0.79, 1.74, 0.59,
                                 0.28,  -0.93, -0.15, -0.53, 0.63, 1.00,  -2.19, -0.99, -0.06, 1.27, -1.54, 0.06,
                                 0.68,  -1.03, -0.08, 0.14,  -0.32, 0.80, 1.55,  0.61,  -0.67, -0.71, -0.69, 0.23};
  const std::vector<double> b = {-1.20, 1.27};
  const std::vector<double> expected = {
      -2.0792, -3.7984, 1.0456,  0.5457,  -2.7414, -0.9846, 0.7534,  -2.97,   -0.0053, 3.7348,  -2.7198, -1.0704,
      -0.1801, -0.1124, -2.0701, -3.508,  3.5733,  -1.0413, -0.6751, -0.4308, -2.4472, -2.1308, -0.5838, -3.8682,
      2.2956,  -1.314,  0.6708,  5.8769,  1.4935,  -0.1001, 1.221,   0.5938,  2.8758,  -2.4391, 4.7215,  2.8996,
      0.8136,  3.385,   1.3929,  -0.8659, -1.4795, 1.7947,  1.7314,  0.2436,  0.8989,  1.8249,  3.4813,  3.1102};
  const ConvTranspose2dParams p{.batch = 1, .in_channels = 2, .in_h = 2, .in_w = 3, .out_channels = 2, .kernel = 3,
                                .stride = 2, .pad = 1, .output_pad = 1};
  ASSERT_EQ(p.out_h(), 4);
  ASSERT_EQ(p.out_w(), 6);
  auto y = poisoned_vector<double>(p.y_size());
  ref::conv_transpose2d_forward<double>(p, x.data(), w.data(), b.data(), y.data());
  EXPECT_LE(rel_l2_error(y, expected), 1e-12);  // only decimal rounding of the literals separates them

  const std::vector<float> xf(x.begin(), x.end()), wf(w.begin(), w.end()), bf(b.begin(), b.end());
  auto yf = poisoned_vector<float>(p.y_size());
  ref::conv_transpose2d_forward<float>(p, xf.data(), wf.data(), bf.data(), yf.data());
  EXPECT_LE(rel_l2_error(yf, expected), 1e-6);  // float instantiation: float rounding of inputs and outputs
}

}  // namespace
}  // namespace gancu
