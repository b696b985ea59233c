// Reference linear layer: gradients against central finite differences, hand-worked values, a PyTorch cross-check.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/linear.h"
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

struct GradientCase {
  LinearParams params;
  bool with_bias;
};

TEST(LinearRef, BackwardMatchesFiniteDifferences) {
  const std::vector<GradientCase> cases = {
      {{.batch = 3, .in_features = 5, .out_features = 4}, true},
      {{.batch = 1, .in_features = 7, .out_features = 1}, true},
      {{.batch = 4, .in_features = 1, .out_features = 3}, false},
      {{.batch = 2, .in_features = 6, .out_features = 9}, false},
  };
  uint64_t seed = 400;
  for (const GradientCase& c : cases) {
    const LinearParams& p = c.params;
    SCOPED_TRACE("batch " + std::to_string(p.batch) + ", " + std::to_string(p.in_features) + "→" +
                 std::to_string(p.out_features) + (c.with_bias ? ", bias" : ", no bias"));
    auto x = random_vector<double>(int64_t(p.batch) * p.in_features, ++seed);
    auto w = random_vector<double>(int64_t(p.out_features) * p.in_features, ++seed);
    auto b = random_vector<double>(p.out_features, ++seed);
    const auto r = random_vector<double>(int64_t(p.batch) * p.out_features, ++seed);  // dL/dy
    std::vector<double> y(r.size());
    const std::function<double()> loss = [&] {
      ref::linear_forward<double>(p, x.data(), w.data(), c.with_bias ? b.data() : nullptr, y.data());
      return dot(y, r);
    };

    auto dx = poisoned_vector<double>(int64_t(x.size()));
    auto dw = poisoned_vector<double>(int64_t(w.size()));
    ref::linear_backward_input<double>(p, r.data(), w.data(), dx.data());
    ref::linear_backward_weight<double>(p, x.data(), r.data(), dw.data());
    EXPECT_LE(rel_l2_error(dx, numerical_gradient(x, loss)), kFiniteDifferenceTol) << "dx";
    EXPECT_LE(rel_l2_error(dw, numerical_gradient(w, loss)), kFiniteDifferenceTol) << "dweight";
    if (c.with_bias) {
      auto db = poisoned_vector<double>(p.out_features);
      ref::linear_backward_bias<double>(p, r.data(), db.data());
      EXPECT_LE(rel_l2_error(db, numerical_gradient(b, loss)), kFiniteDifferenceTol) << "dbias";
    }
  }
}

// Hand-worked, batch 2, 3 → 2 features: W = [[1, 0, −1], [2, 1, 0]], b = [0.5, −1].
//   x0 = [1, 2, 3]:  y0 = [1 − 3 + 0.5, 2 + 2 − 1] = [−1.5, 3]
//   x1 = [0, 1, −1]: y1 = [0 + 0 + 1 + 0.5, 0 + 1 + 0 − 1] = [1.5, 0]
// With dy = [[1, 0], [0, 2]]: dx = dy·W = [[1, 0, −1], [4, 2, 0]], dW = dyᵀ·x = [[1, 2, 3], [0, 2, −2]], db = [1, 2].
TEST(LinearRef, HandWorked) {
  const LinearParams p{.batch = 2, .in_features = 3, .out_features = 2};
  const std::vector<double> x = {1, 2, 3, 0, 1, -1};
  const std::vector<double> w = {1, 0, -1, 2, 1, 0};
  const std::vector<double> b = {0.5, -1};
  const std::vector<double> dy = {1, 0, 0, 2};
  auto y = poisoned_vector<double>(4);
  auto dx = poisoned_vector<double>(6);
  auto dw = poisoned_vector<double>(6);
  auto db = poisoned_vector<double>(2);
  ref::linear_forward<double>(p, x.data(), w.data(), b.data(), y.data());
  ref::linear_backward_input<double>(p, dy.data(), w.data(), dx.data());
  ref::linear_backward_weight<double>(p, x.data(), dy.data(), dw.data());
  ref::linear_backward_bias<double>(p, dy.data(), db.data());
  // All small integers and halves: exact.
  EXPECT_EQ(y, (std::vector<double>{-1.5, 3, 1.5, 0}));
  EXPECT_EQ(dx, (std::vector<double>{1, 0, -1, 4, 2, 0}));
  EXPECT_EQ(dw, (std::vector<double>{1, 2, 3, 0, 2, -2}));
  EXPECT_EQ(db, (std::vector<double>{1, 2}));

  ref::linear_forward<double>(p, x.data(), w.data(), nullptr, y.data());  // no bias
  EXPECT_EQ(y, (std::vector<double>{-2, 4, 1, 1}));
}

// PyTorch 1.13 (Debian python3-torch), obtained with:
//   torch.manual_seed(7); lit = lambda s: torch.round(torch.randn(s).double() * 100) / 100
//   (conv2d and conv_transpose2d cases drawn first, see test_conv2d.cpp and test_conv_transpose2d.cpp), then
//   x = lit((2,3)); w = lit((4,3)); b = lit((4,)); torch.nn.functional.linear(x, w, b)
TEST(LinearRef, MatchesPyTorch) {
  const LinearParams p{.batch = 2, .in_features = 3, .out_features = 4};
  const std::vector<double> x = {0.36, 0.63, -0.62, 0.57, -0.08, 0.97};
  const std::vector<double> w = {-0.78, 0.56, 0.23, -2.19, -0.31, 0.39, 0.38, -0.72, -1.08, -2.11, -0.80, -0.01};
  const std::vector<double> b = {0.87, -0.88, -1.05, -1.11};
  const std::vector<double> expected = {0.7994, -2.1055, -0.6972, -2.3674, 0.6037, -1.7252, -1.8234, -2.2584};
  auto y = poisoned_vector<double>(8);
  ref::linear_forward<double>(p, x.data(), w.data(), b.data(), y.data());
  EXPECT_LE(rel_l2_error(y, expected), 1e-12);  // two-decimal inputs: outputs exact to 4 decimals
}

}  // namespace
}  // namespace gancu
