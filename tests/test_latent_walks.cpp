// Latent walks: the slerp and arithmetic math on its own, then `gan sample --interpolate / --arithmetic` end to end on
// a tiny trained run, whose --raw images must equal the generator applied to the walk's latents through plain --z.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numbers>

#include "core/npy.h"
#include "core/rng.h"
#include "tests/temp_dir.h"
#include "tests/testing.h"
#include "tests/train_test.h"
#include "tools/gan/latent.h"
#include "tools/gan/sample.h"
#include "tools/gan/train.h"
#include "tools/io/png.h"

namespace gancu::app {
namespace {

constexpr int64_t kNz = 100;

Tensor gaussian(int64_t n, uint64_t seed) {
  Tensor t(Shape{n});
  Rng rng(seed, 7);
  t.fill_normal(rng);
  return t;
}

double dot(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * b[i];
  return s;
}
double norm(const float* a, int64_t n) { return std::sqrt(dot(a, a, n)); }
double angle(const float* a, const float* b, int64_t n) {
  return std::acos(std::clamp(dot(a, b, n) / (norm(a, n) * norm(b, n)), -1.0, 1.0));
}

Tensor first_row(const Tensor& t) {
  Shape s = t.shape();
  s[0] = 1;
  Tensor row(s);
  std::copy(t.data(), t.data() + row.numel(), row.data());
  return row;
}

bool bit_identical(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.data(), b.data(), size_t(a.numel()) * sizeof(float)) == 0;
}

TEST(Slerp, EndpointsAreExact) {
  const Tensor a = gaussian(kNz, 1), b = gaussian(kNz, 2);
  const Tensor path = slerp_path(a.data(), b.data(), kNz, 7);
  ASSERT_EQ(path.shape(), (Shape{7, kNz, 1, 1}));
  EXPECT_EQ(std::memcmp(path.data(), a.data(), kNz * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(path.data() + 6 * kNz, b.data(), kNz * sizeof(float)), 0);
}

TEST(Slerp, EqualNormsMoveAtConstantAngularStepsOnTheSphere) {
  const Tensor a = gaussian(kNz, 3);
  Tensor b = gaussian(kNz, 4);
  const double scale = norm(a.data(), kNz) / norm(b.data(), kNz);
  for (int64_t i = 0; i < kNz; ++i) b[i] = float(b[i] * scale);
  const double omega = angle(a.data(), b.data(), kNz);
  ASSERT_GT(omega, 1.0);  // two Gaussian vectors in 100 dimensions are nearly orthogonal
  const int steps = 9;
  const Tensor path = slerp_path(a.data(), b.data(), kNz, steps);
  for (int i = 0; i < steps; ++i) {
    const float* p = path.data() + i * kNz;
    EXPECT_NEAR(norm(p, kNz), norm(a.data(), kNz), 1e-5 * norm(a.data(), kNz)) << "step " << i;
    EXPECT_NEAR(angle(a.data(), p, kNz), omega * i / (steps - 1), 1e-5) << "step " << i;
    if (i > 0) {
      EXPECT_NEAR(angle(p - kNz, p, kNz), omega / (steps - 1), 1e-5) << "step " << i;
    }
  }
  // Linear interpolation would cut through the ball: its midpoint is shorter by cos(ω/2).
  EXPECT_LT(std::cos(omega / 2), 0.9);
}

TEST(Slerp, UnequalNormsFollowTheDefinitionInThePlane) {
  // a = (1, 0, 0, 0), b = 3·(cos θ, sin θ, 0, 0): slerp(t) = s0·a + s1·b with s0 = sin((1−t)θ)/sin θ, s1 = sin(tθ)/sin θ,
  // written out by coordinates; its norm is not the linear interpolation of the norms.
  const double theta = std::numbers::pi / 3;
  const float a[4] = {1, 0, 0, 0};
  const float b[4] = {float(3 * std::cos(theta)), float(3 * std::sin(theta)), 0, 0};
  for (double t : {0.25, 0.5, 0.8}) {
    const double s0 = std::sin((1 - t) * theta) / std::sin(theta), s1 = std::sin(t * theta) / std::sin(theta);
    float p[4];
    slerp(a, b, 4, t, p);
    EXPECT_NEAR(p[0], s0 + s1 * b[0], 1e-6) << t;
    EXPECT_NEAR(p[1], s1 * b[1], 1e-6) << t;
    EXPECT_EQ(p[2], 0.0f);
    EXPECT_NEAR(norm(p, 4), std::hypot(s0 + s1 * b[0], s1 * b[1]), 1e-6) << t;
    if (t == 0.5) {
      EXPECT_GT(norm(p, 4) - 2.0, 0.05);  // 2.08, not the mean of the norms
    }
  }
}

TEST(Slerp, NearlyParallelAntiparallelAndZeroFallBackToLinear) {
  const Tensor a = gaussian(kNz, 5);
  auto expect_linear = [&](const Tensor& b, const char* what) {
    for (double t : {0.0, 0.3, 0.5, 1.0}) {
      std::vector<float> p(kNz);
      slerp(a.data(), b.data(), kNz, t, p.data());
      for (int64_t i = 0; i < kNz; ++i) {
        ASSERT_TRUE(std::isfinite(p[i])) << what << " t=" << t;
        ASSERT_EQ(p[i], float((1 - t) * a[i] + t * double(b[i]))) << what << " t=" << t << " i=" << i;
      }
    }
  };
  Tensor twice(Shape{kNz}), opposite(Shape{kNz}), nudged(Shape{kNz}), zero(Shape{kNz});
  for (int64_t i = 0; i < kNz; ++i) {
    twice[i] = 2.5f * a[i];
    opposite[i] = -a[i];
    nudged[i] = a[i] * (i % 2 ? 1.0f + 1e-7f : 1.0f);  // an angle of ~1e-7 rad: below kSlerpParallelSin
  }
  ASSERT_LT(std::sin(angle(a.data(), nudged.data(), kNz)), kSlerpParallelSin);
  expect_linear(twice, "parallel");
  expect_linear(opposite, "antiparallel");
  expect_linear(nudged, "nearly parallel");
  expect_linear(zero, "zero");
}

TEST(LatentArithmetic, MeanAndAMinusBPlusCAreExact) {
  Tensor z(Shape{3, 2, 1, 1});
  const float values[6] = {1, 2, 3, 4, 5, 9};
  std::copy(values, values + 6, z.data());
  const Tensor mean = mean_latent(z);
  ASSERT_EQ(mean.shape(), Shape{2});
  EXPECT_EQ(mean[0], 3.0f);
  EXPECT_EQ(mean[1], 5.0f);
  // Rounded once, from double: the mean of 0.1, 0.2, 0.4 as floats.
  Tensor w(Shape{3, 1});
  w[0] = 0.1f, w[1] = 0.2f, w[2] = 0.4f;
  EXPECT_EQ(mean_latent(w)[0], float((double(0.1f) + double(0.2f) + double(0.4f)) / 3));

  Tensor b(Shape{2}), c(Shape{2});
  b[0] = 1, b[1] = 1;
  c[0] = 0.5f, c[1] = -2;
  const Tensor r = latent_arithmetic(mean, b, c);
  EXPECT_EQ(r[0], 2.5f);
  EXPECT_EQ(r[1], 2.0f);
  EXPECT_THROW(latent_arithmetic(mean, b, Tensor(Shape{3})), std::invalid_argument);
  EXPECT_THROW(mean_latent(Tensor(Shape{0, 2})), std::invalid_argument);
  EXPECT_THROW(slerp_path(b.data(), c.data(), 2, 1), std::invalid_argument);
}

// ---- end to end: a tiny run trained for two steps, then the walks through run_sample --------------------------------

class LatentWalks : public testing::TempDirTest {
 protected:
  static void SetUpTestSuite() {
    run_ = testing::fresh_temp_dir("latent_walks_run") / "run";
    TrainOptions o = testing::tiny_train_options();
    o.steps = 2;
    o.progress = false;
    o.out = run_.string();
    recipes::DcganRecipe recipe = testing::tiny_dcgan();
    ASSERT_EQ(run_train(o, recipe), 0);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(run_.parent_path()); }

  SampleOptions options() const {
    SampleOptions s;
    s.checkpoint = run_.string();
    s.out = path("grid.png");
    return s;
  }
  // The generator on the given latents through the plain --z path.
  Tensor generate(const std::string& z_file) const {
    SampleOptions s = options();
    s.z = z_file;
    s.out = path("plain.png");
    s.raw = path("plain.npy");
    EXPECT_EQ(run_sample(s), 0);
    return read_npy(s.raw);
  }
  std::string write(const std::string& name, const Tensor& t) const {
    write_npy(path(name), t);
    return path(name);
  }
  static void expect_error_naming(const SampleOptions& s, const std::string& needle) {
    try {
      run_sample(s);
      ADD_FAILURE() << "accepted: expected an error naming " << needle;
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  static std::filesystem::path run_;
};
std::filesystem::path LatentWalks::run_;

TEST_F(LatentWalks, InterpolationRowsAreSlerpsOfTheSeededPairs) {
  // The endpoints are the latents of plain `--n 6` with the same seed.
  SampleOptions plain = options();
  plain.n = 6;
  plain.seed = 9;
  plain.save_z = path("ends.npy");
  plain.raw = path("ends_images.npy");
  ASSERT_EQ(run_sample(plain), 0);
  const Tensor ends = read_npy(plain.save_z);
  ASSERT_EQ(ends.shape(), (Shape{6, 16, 1, 1}));

  SampleOptions s = options();
  s.interpolate = 3;
  s.steps = 5;
  s.seed = 9;
  s.raw = path("walk.npy");
  s.save_z = path("walk_z.npy");
  ASSERT_EQ(run_sample(s), 0);
  const Image png = read_png(s.out);
  EXPECT_EQ(png.width, 5 * 34 + 2);  // 5 tiles of 32 + 2 padding per row, 3 rows
  EXPECT_EQ(png.height, 3 * 34 + 2);

  const Tensor z = read_npy(s.save_z), images = read_npy(s.raw);
  ASSERT_EQ(z.shape(), (Shape{15, 16, 1, 1}));
  ASSERT_EQ(images.shape(), (Shape{15, 1, 32, 32}));
  for (int64_t p = 0; p < 3; ++p) {
    const Tensor row = slerp_path(ends.data() + 2 * p * 16, ends.data() + (2 * p + 1) * 16, 16, 5);
    EXPECT_EQ(std::memcmp(row.data(), z.data() + p * 5 * 16, 5 * 16 * sizeof(float)), 0) << "pair " << p;
  }
  EXPECT_TRUE(bit_identical(generate(s.save_z), images));

  // The same pairs from --z give the same walk.
  SampleOptions from_file = s;
  from_file.z = plain.save_z;
  from_file.seed = 1;
  from_file.raw = path("walk2.npy");
  ASSERT_EQ(run_sample(from_file), 0);
  EXPECT_TRUE(bit_identical(read_npy(from_file.raw), images));
}

TEST_F(LatentWalks, ArithmeticShowsTheEquationAndItsRawResultIsTheGeneratorOnAMinusBPlusC) {
  Tensor a(Shape{3, 16}), b(Shape{2, 16, 1, 1}), c(Shape{1, 16});
  Rng rng(11, 3);
  a.fill_normal(rng), b.fill_normal(rng), c.fill_normal(rng);
  SampleOptions s = options();
  s.arithmetic = {write("a.npy", a), write("b.npy", b), write("c.npy", c)};
  s.raw = path("arith.npy");
  s.save_z = path("arith_z.npy");
  ASSERT_EQ(run_sample(s), 0);

  const Tensor z = read_npy(s.save_z), images = read_npy(s.raw);
  ASSERT_EQ(z.shape(), (Shape{4, 16, 1, 1}));
  ASSERT_EQ(images.shape(), (Shape{4, 1, 32, 32}));
  const Tensor ma = mean_latent(a), mb = mean_latent(b), mc = mean_latent(c);
  const Tensor want[4] = {ma, mb, mc, latent_arithmetic(ma, mb, mc)};
  for (int k = 0; k < 4; ++k) EXPECT_EQ(std::memcmp(want[k].data(), z.data() + k * 16, 16 * sizeof(float)), 0) << k;
  EXPECT_TRUE(bit_identical(generate(s.save_z), images));

  // 4 columns; rows 0..2 hold the files' own vectors (a has 3), row 3 the equation. b has no third vector: black.
  const Image png = read_png(s.out);
  EXPECT_EQ(png.width, 4 * 34 + 2);
  EXPECT_EQ(png.height, 4 * 34 + 2);
  const int x = 34 + 2 + 16, y = 2 * 34 + 2 + 16;  // the middle of tile (row 2, column b)
  EXPECT_EQ(png.pixels[size_t(y) * png.width + x], 0);

  // One vector per file: only the equation row.
  s.arithmetic = {write("a1.npy", first_row(a)), write("b1.npy", first_row(b)), write("c1.npy", c)};
  ASSERT_EQ(run_sample(s), 0);
  EXPECT_EQ(read_png(s.out).height, 34 + 2);
}

TEST_F(LatentWalks, ReferenceDeviceWalksTheSameLatents) {
  // The walks only choose the latents; every device runs the same generator plan on them (cuda likewise, on a GPU).
  SampleOptions s = options();
  s.interpolate = 2;
  s.steps = 4;
  s.raw = path("cpu.npy");
  s.save_z = path("cpu_z.npy");
  ASSERT_EQ(run_sample(s), 0);
  SampleOptions r = s;
  r.device = "reference";
  r.raw = path("ref.npy");
  r.save_z = path("ref_z.npy");
  ASSERT_EQ(run_sample(r), 0);
  EXPECT_TRUE(bit_identical(read_npy(s.save_z), read_npy(r.save_z)));
  const Tensor cpu = read_npy(s.raw), ref = read_npy(r.raw);
  EXPECT_TRUE(testing::close_rel_l2(std::vector<float>(cpu.data(), cpu.data() + cpu.numel()),
                                    std::vector<float>(ref.data(), ref.data() + ref.numel()), 1e-5, cpu.shape().dims()));
}

TEST_F(LatentWalks, BadInputIsRefusedNamingTheFile) {
  SampleOptions s = options();
  s.interpolate = 2;
  s.z = write("three.npy", Tensor(Shape{3, 16}));
  expect_error_naming(s, "three.npy");  // 3 vectors for 2 pairs
  s.z = write("wide.npy", Tensor(Shape{4, 17}));
  expect_error_naming(s, "wide.npy");
  Tensor nan(Shape{4, 16, 1, 1});
  nan[21] = std::numeric_limits<float>::quiet_NaN();
  s.z = write("nan.npy", nan);
  expect_error_naming(s, "nan.npy");
  s.z.clear();
  s.steps = 1;
  expect_error_naming(s, "--steps");

  SampleOptions r = options();
  r.arithmetic = {write("a.npy", Tensor(Shape{2, 16})), write("b.npy", Tensor(Shape{1, 16})), write("c.npy", nan)};
  expect_error_naming(r, "c.npy");
  r.arithmetic[1] = write("b_wrong.npy", Tensor(Shape{1, 8}));
  expect_error_naming(r, "b_wrong.npy");
  r.arithmetic[1] = write("empty.npy", Tensor(Shape{0, 16}));
  expect_error_naming(r, "empty.npy");
  r.arithmetic.pop_back();
  expect_error_naming(r, "three .npy files");
}

}  // namespace
}  // namespace gancu::app
