// Core: Philox known answers, the seeded RNG's determinism and distribution, Shape and Tensor semantics.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/philox.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "tests/testing.h"

namespace gancu {
namespace {

// Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors), so the generator is the
// published one and gives the same numbers on every machine and on the GPU.
TEST(Philox, KnownAnswers) {
  struct Case {
    uint32_t c[4], k[2], out[4];
  } cases[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}, {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Case& t : cases) {
    Philox4x32 r = philox4x32_10(t.c[0], t.c[1], t.c[2], t.c[3], t.k[0], t.k[1]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.v[i], t.out[i]) << "lane " << i;
  }
}

TEST(Rng, SameSeedSameStreamSameNumbers) {
  Rng a(7, 3), b(7, 3), c(7, 4), d(8, 3);
  int differ_stream = 0, differ_seed = 0;
  for (int i = 0; i < 1000; ++i) {
    const float x = a.normal();
    EXPECT_EQ(x, b.normal());
    differ_stream += x != c.normal();
    differ_seed += x != d.normal();
  }
  EXPECT_GT(differ_stream, 990);
  EXPECT_GT(differ_seed, 990);
}

TEST(Rng, CounterRestoresTheStream) {
  Rng a(1, 2);
  for (int i = 0; i < 17; ++i) a.uniform();
  Rng b(1, 2);
  b.set_counter(a.counter());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.normal(), b.normal());
}

TEST(Rng, DistributionsHaveTheRightMoments) {
  // n = 200,000: the sample mean's standard error is 1/sqrt(n) ≈ 0.0022; bounds at ~5 standard errors.
  Rng rng(123, 0);
  const int n = 200000;
  double s = 0, s2 = 0, u = 0, u_min = 1, u_max = 0;
  for (int i = 0; i < n; ++i) {
    const double x = rng.normal();
    s += x;
    s2 += x * x;
    const double v = rng.uniform();
    u += v;
    u_min = std::min(u_min, v);
    u_max = std::max(u_max, v);
  }
  EXPECT_NEAR(s / n, 0.0, 0.011);
  EXPECT_NEAR(s2 / n, 1.0, 0.016);
  EXPECT_NEAR(u / n, 0.5, 0.004);
  EXPECT_GT(u_min, 0.0);   // (0, 1]: never exactly 0, so log() is safe
  EXPECT_LE(u_max, 1.0);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(rng.below(10), 10u);
}

TEST(Tensor, ShapeAndViews) {
  Shape s{2, 3, 4, 5};
  EXPECT_EQ(s.rank(), 4);
  EXPECT_EQ(s.numel(), 120);
  EXPECT_EQ(s.str(), "[2, 3, 4, 5]");
  EXPECT_EQ(Shape{}.numel(), 1);  // a scalar
  EXPECT_THROW((Shape{1, 2, 3, 4, 5}), std::invalid_argument);
  EXPECT_THROW((Shape{2, -1}), std::invalid_argument);

  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t[i], 0.0f);
  Tensor r = t.reshaped(Shape{6, 20});
  r[7] = 3.5f;
  EXPECT_EQ(t[7], 3.5f);  // a reshape shares memory
  EXPECT_THROW(t.reshaped(Shape{7, 20}), std::invalid_argument);
  Tensor c = t.clone();
  c[7] = 1.0f;
  EXPECT_EQ(t[7], 3.5f);  // a clone does not
  float buffer[6] = {1, 2, 3, 4, 5, 6};
  Tensor v = Tensor::view(buffer, Shape{2, 3});
  EXPECT_FALSE(v.owns_memory());
  v[5] = 9;
  EXPECT_EQ(buffer[5], 9.0f);
  Rng rng(5);
  Tensor n(Shape{1000});
  n.fill_normal(rng, 2.0f, 0.5f);
  double mean = 0;
  for (int64_t i = 0; i < n.numel(); ++i) mean += n[i] / 1000.0;
  EXPECT_NEAR(mean, 2.0, 0.08);  // 5 standard errors (0.5/sqrt(1000))
}

}  // namespace
}  // namespace gancu

namespace gancu {
namespace {

// The kernel tests' comparison: passes within tolerance, and a failure names the shape, the error and the first
// mismatching elements by index (what a GPU run's log must carry back).
TEST(Testing, CloseRelL2ReportsShapeAndFirstMismatches) {
  std::vector<float> want = {1, 2, 3, 4, 5, 6};
  std::vector<float> got = want;
  EXPECT_TRUE(testing::close_rel_l2(got, want, 1e-6, {1, 2, 3}));
  got[4] = 50.0f;
  got[5] = std::numeric_limits<float>::quiet_NaN();
  const ::testing::AssertionResult r = testing::close_rel_l2(got, want, 1e-5, {1, 2, 3});
  ASSERT_FALSE(r);
  const std::string message = r.message();
  EXPECT_NE(message.find("shape [1, 2, 3]"), std::string::npos) << message;
  EXPECT_NE(message.find("1 non-finite"), std::string::npos) << message;
  EXPECT_NE(message.find("at [0, 1, 1]: got 50, expected 5"), std::string::npos) << message;
  EXPECT_NE(message.find("at [0, 1, 2]: got nan, expected 6"), std::string::npos) << message;
  EXPECT_FALSE(testing::close_rel_l2(std::vector<float>(5), want, 1.0));
}

}  // namespace
}  // namespace gancu
