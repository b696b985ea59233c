// Reference elementwise ops: add/copy/scale, pixel_shuffle (PyTorch index order, adjoint backward) and Philox dropout.
#include "kernels/cpu/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/philox.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using testing::numerical_gradient;
using testing::poisoned_vector;
using testing::random_vector;
using testing::rel_l2_error;

TEST(ElementwiseRef, AddCopyScaleHandValues) {
  const std::vector<double> a = {1.5, -2, 0.25}, b = {0.5, 3, -1};
  auto y = poisoned_vector<double>(3);
  ref::add_forward<double>(3, a.data(), b.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{2, 1, -0.75}));  // exact in binary
  y = poisoned_vector<double>(3);
  ref::copy<double>(3, a.data(), y.data());
  EXPECT_EQ(y, a);
  auto yf = poisoned_vector<float>(3);
  const std::vector<float> af = {1.5f, -2.f, 0.25f};
  ref::scale<float>(3, -0.5f, af.data(), yf.data());
  EXPECT_EQ(yf, (std::vector<float>{-0.75f, 1.f, -0.125f}));
}

// x = 0..7 as [1, 4, 1, 2], r = 2. PyTorch: y[0, 0, i, 2w + j] = x[0, 2i + j, 0, w], so row 0 interleaves channels 0
// and 1: {0, 2, 1, 3}, row 1 channels 2 and 3: {4, 6, 5, 7} (torch.nn.functional.pixel_shuffle agrees).
// The r = 3 case, x = 0..17 as [1, 9, 1, 2], is F.pixel_shuffle(torch.arange(18.).reshape(1, 9, 1, 2), 3) from
// Debian's python3-torch.
TEST(ElementwiseRef, PixelShuffleHandValues) {
  std::vector<double> x(8);
  for (int i = 0; i < 8; ++i) x[i] = i;
  auto y = poisoned_vector<double>(8);
  ref::pixel_shuffle_forward(1, 1, 1, 2, 2, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{0, 2, 1, 3, 4, 6, 5, 7}));

  std::vector<float> x3(18);
  for (int i = 0; i < 18; ++i) x3[i] = float(i);
  auto y3 = poisoned_vector<float>(18);
  ref::pixel_shuffle_forward(1, 1, 1, 2, 3, x3.data(), y3.data());
  EXPECT_EQ(y3, (std::vector<float>{0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11, 12, 14, 16, 13, 15, 17}));

  // Backward is the inverse permutation: shuffling back the shuffled arange recovers it.
  auto back = poisoned_vector<float>(18);
  ref::pixel_shuffle_backward(1, 1, 1, 2, 3, y3.data(), back.data());
  EXPECT_EQ(back, x3);
}

// f = ⟨w, pixel_shuffle(x)⟩ on [2, 3·2², 3, 5]: the backward is exactly ∂f/∂x.
TEST(ElementwiseRef, PixelShuffleBackwardMatchesFiniteDifferences) {
  const int batch = 2, channels = 3, h = 3, w = 5, r = 2;
  const int64_t n = int64_t(batch) * channels * r * r * h * w;
  std::vector<double> x = random_vector<double>(n, 1);
  const std::vector<double> weights = random_vector<double>(n, 2);
  auto loss = [&] {
    std::vector<double> y(static_cast<size_t>(n));
    ref::pixel_shuffle_forward(batch, channels, h, w, r, x.data(), y.data());
    return testing::dot(weights, y);
  };
  auto dx = poisoned_vector<double>(n);
  ref::pixel_shuffle_backward(batch, channels, h, w, r, weights.data(), dx.data());
  const double tol = 1e-8;  // relative L2 vs central differences in double (f is linear: only rounding remains)
  EXPECT_LE(rel_l2_error(dx, numerical_gradient(x, loss)), tol);
}

// Over n = 10⁶ the kept fraction has standard deviation √(p(1−p)/n) ≈ 4.6e-4 for p = 0.3; allow 5σ.
TEST(ElementwiseRef, DropoutKeepsAboutOneMinusP) {
  const int64_t n = 1'000'000;
  const double p = 0.3;
  const std::vector<float> x(static_cast<size_t>(n), 1.0f);
  auto y = poisoned_vector<float>(n), mask = poisoned_vector<float>(n);
  ref::dropout_forward(n, p, 1234, 7, x.data(), y.data(), mask.data());
  int64_t kept = 0;
  for (float m : mask) kept += m != 0.0f;
  EXPECT_NEAR(double(kept) / double(n), 1 - p, 5 * std::sqrt(p * (1 - p) / double(n)));
}

// The mask is the header's contract: kept iff philox_uniform_at(seed, stream, i) > p, scaled by 1/(1−p); dropped
// values are 0; y = x·mask.
TEST(ElementwiseRef, DropoutMaskFollowsPhiloxAndScales) {
  const int64_t n = 4097;
  const double p = 0.4;
  const std::vector<double> x = random_vector<double>(n, 3);
  auto y = poisoned_vector<double>(n), mask = poisoned_vector<double>(n);
  ref::dropout_forward(n, p, 99, 5, x.data(), y.data(), mask.data());
  int kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = double(philox_uniform_at(99, 5, uint64_t(i))) > p;
    kept += keep;
    ASSERT_EQ(mask[i], keep ? 1.0 / (1.0 - p) : 0.0) << i;
    ASSERT_NEAR(y[i], keep ? x[i] / (1 - p) : 0.0, 1e-15 * std::abs(x[i])) << i;  // one rounding in double
  }
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, n);
}

// Same (seed, stream) → same mask; another stream or another seed → a different mask (≈ 2p(1−p) = 42% of positions
// differ for independent masks; require more than 30%).
TEST(ElementwiseRef, DropoutIsReproducibleAndStreamsDiffer) {
  const int64_t n = 10'000;
  const double p = 0.3;
  const std::vector<float> x = random_vector<float>(n, 4);
  auto mask_of = [&](uint64_t seed, uint64_t stream) {
    auto y = poisoned_vector<float>(n), mask = poisoned_vector<float>(n);
    ref::dropout_forward(n, p, seed, stream, x.data(), y.data(), mask.data());
    return mask;
  };
  auto differing = [](const std::vector<float>& a, const std::vector<float>& b) {
    int64_t count = 0;
    for (size_t i = 0; i < a.size(); ++i) count += a[i] != b[i];
    return double(count) / double(a.size());
  };
  const std::vector<float> reference = mask_of(42, 0);
  EXPECT_EQ(mask_of(42, 0), reference);
  EXPECT_GT(differing(mask_of(42, 1), reference), 0.3);
  EXPECT_GT(differing(mask_of(43, 0), reference), 0.3);
}

// p = 0 keeps everything unchanged; p = 1 drops everything (no 0·∞ NaN).
TEST(ElementwiseRef, DropoutEdgeProbabilities) {
  const int64_t n = 257;
  const std::vector<float> x = random_vector<float>(n, 5);
  auto y = poisoned_vector<float>(n), mask = poisoned_vector<float>(n);
  ref::dropout_forward(n, 0.0, 1, 2, x.data(), y.data(), mask.data());
  EXPECT_EQ(y, x);
  EXPECT_EQ(mask, std::vector<float>(static_cast<size_t>(n), 1.0f));
  ref::dropout_forward(n, 1.0, 1, 2, x.data(), y.data(), mask.data());
  EXPECT_EQ(y, std::vector<float>(static_cast<size_t>(n), 0.0f));
  EXPECT_EQ(mask, std::vector<float>(static_cast<size_t>(n), 0.0f));
}

// With the mask fixed (same seed and stream every call), f = ⟨w, dropout(x)⟩ is linear in x; backward = w·mask.
TEST(ElementwiseRef, DropoutBackwardMatchesFiniteDifferences) {
  const int64_t n = 53;
  std::vector<double> x = random_vector<double>(n, 6);
  const std::vector<double> w = random_vector<double>(n, 7);
  std::vector<double> y(static_cast<size_t>(n)), mask(static_cast<size_t>(n));
  auto loss = [&] {
    ref::dropout_forward(n, 0.5, 11, 3, x.data(), y.data(), mask.data());
    return testing::dot(w, y);
  };
  loss();
  auto dx = poisoned_vector<double>(n);
  ref::dropout_backward(n, mask.data(), w.data(), dx.data());
  const double tol = 1e-8;  // relative L2 vs central differences in double
  EXPECT_LE(rel_l2_error(dx, numerical_gradient(x, loss)), tol);
}

}  // namespace
}  // namespace gancu
