// tools/eval/fid.h: feature statistics, the Fréchet distance, the matrix square root, KID and the stats files; and
// tools/eval/images.h: the image sets they compare.
// The independent check against SciPy/NumPy is tests/fid_against_scipy.py (ctest fid_against_scipy).
#include "tools/eval/fid.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/files.h"
#include "tests/safetensors_bytes.h"
#include "tests/temp_dir.h"
#include "tests/testing.h"
#include "tools/eval/images.h"
#include "tools/io/png.h"
#include "tools/io/safetensors.h"

namespace gancu::eval {
namespace {

using testing::close_rel_l2;
using testing::error_of;
using testing::random_vector;

// n rows of d correlated features: standard normal latents mixed by a fixed random matrix, then shifted.
std::vector<double> correlated_features(int64_t n, int d, uint64_t seed, double shift = 0.0, uint64_t mixing_seed = 99) {
  const std::vector<double> latent = random_vector<double>(n * d, seed);
  const std::vector<double> mixing = random_vector<double>(int64_t{d} * d, mixing_seed, 1.0 / std::sqrt(d));
  std::vector<double> x(static_cast<size_t>(n) * d, shift);
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < d; ++k)
      for (int j = 0; j < d; ++j) x[i * d + j] += latent[i * d + k] * mixing[k * d + j];
  return x;
}

FeatureStats diagonal_stats(const std::vector<double>& mean, const std::vector<double>& variances) {
  FeatureStats s;
  s.n = 100;
  s.dim = static_cast<int>(mean.size());
  s.mean = mean;
  s.cov.assign(mean.size() * mean.size(), 0.0);
  for (size_t i = 0; i < mean.size(); ++i) s.cov[i * mean.size() + i] = variances[i];
  return s;
}

double trace(const FeatureStats& s) {
  double t = 0;
  for (int i = 0; i < s.dim; ++i) t += s.cov[static_cast<size_t>(i) * s.dim + i];
  return t;
}

// ---- statistics ---------------------------------------------------------------------------------------------------

TEST(FeatureStats, MatchADirectDoubleLoop) {
  const int64_t n = 37;
  const int d = 5;
  const std::vector<double> x = correlated_features(n, d, 1, 0.7);
  std::vector<double> mean(d, 0.0), cov(static_cast<size_t>(d) * d, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) mean[j] += x[i * d + j] / n;
  for (int a = 0; a < d; ++a)
    for (int b = 0; b < d; ++b) {
      for (int64_t i = 0; i < n; ++i) cov[a * d + b] += (x[i * d + a] - mean[a]) * (x[i * d + b] - mean[b]);
      cov[a * d + b] /= static_cast<double>(n - 1);
    }
  const FeatureStats s = feature_stats(x, n, d);
  EXPECT_EQ(s.n, n);
  EXPECT_EQ(s.dim, d);
  EXPECT_TRUE(close_rel_l2(s.mean, mean, 1e-13, {d}));
  EXPECT_TRUE(close_rel_l2(s.cov, cov, 1e-13, {d, d}));
  for (int a = 0; a < d; ++a)
    for (int b = 0; b < d; ++b) EXPECT_EQ(s.cov[a * d + b], s.cov[b * d + a]) << "covariance not exactly symmetric";
}

TEST(FeatureStats, RefuseTooFewRowsAWrongSizeAndNonFiniteValues) {
  const std::vector<double> x = random_vector<double>(12, 2);
  EXPECT_THROW(feature_stats(x, 1, 12), std::invalid_argument);
  EXPECT_THROW(feature_stats(x, 3, 5), std::invalid_argument);
  EXPECT_THROW(feature_stats(x, 12, 0), std::invalid_argument);
  std::vector<double> with_nan = x;
  with_nan[7] = std::nan("");
  EXPECT_NE(error_of([&] { feature_stats(with_nan, 4, 3); }).find("feature 1 of row 2"), std::string::npos);
}

// ---- Fréchet distance ---------------------------------------------------------------------------------------------

TEST(FrechetDistance, OfASetWithItselfIsZero) {
  const FeatureStats s = feature_stats(correlated_features(300, 16, 3), 300, 16);
  const double fid = frechet_distance(s, s);
  // tr(Σ + Σ − 2 (Σ²)^½) cancels terms of size tr(Σ): what is left is rounding.
  EXPECT_LT(std::abs(fid), 1e-10 * trace(s)) << fid;
}

TEST(FrechetDistance, IsSymmetric) {
  const FeatureStats a = feature_stats(correlated_features(400, 12, 4), 400, 12);
  const FeatureStats b = feature_stats(correlated_features(250, 12, 5, 0.4, 7), 250, 12);
  const double ab = frechet_distance(a, b), ba = frechet_distance(b, a);
  EXPECT_GT(ab, 0.1);
  EXPECT_NEAR(ab, ba, 1e-10 * ab);
}

TEST(FrechetDistance, AMeanShiftAddsExactlyItsSquaredNorm) {
  const FeatureStats a = feature_stats(correlated_features(500, 10, 6), 500, 10);
  const FeatureStats b = feature_stats(correlated_features(500, 10, 8, 0.0, 11), 500, 10);
  FeatureStats shifted = b;
  const std::vector<double> delta = random_vector<double>(10, 9, 0.5);
  double delta_sq = 0;
  for (int i = 0; i < 10; ++i) shifted.mean[i] += delta[i], delta_sq += delta[i] * delta[i];
  // FID(a, b + Δ) − FID(a, b) = ‖μa − μb − Δ‖² − ‖μa − μb‖²; with a = b, exactly ‖Δ‖².
  double cross = 0;
  for (int i = 0; i < 10; ++i) cross += (a.mean[i] - b.mean[i]) * delta[i];
  EXPECT_NEAR(frechet_distance(a, shifted) - frechet_distance(a, b), delta_sq - 2 * cross, 1e-10);
  FeatureStats a_shifted = a;
  for (int i = 0; i < 10; ++i) a_shifted.mean[i] += delta[i];
  EXPECT_NEAR(frechet_distance(a, a_shifted), delta_sq, 1e-10 * (delta_sq + trace(a)));
  // The same through the features: shifting every row shifts the mean and leaves the covariance.
  std::vector<double> x = correlated_features(500, 10, 6);
  for (size_t i = 0; i < x.size(); ++i) x[i] += delta[i % 10];
  EXPECT_NEAR(frechet_distance(a, feature_stats(x, 500, 10)), delta_sq, 1e-9 * (delta_sq + trace(a)));
}

TEST(FrechetDistance, OfDiagonalGaussiansHasTheClosedForm) {
  // Σ1 = diag(a), Σ2 = diag(b): (Σ1 Σ2)^½ = diag(√(ab)), so FID = ‖μ1 − μ2‖² + Σ (√a − √b)².
  const std::vector<double> mu1 = {0.5, -1.0, 2.0, 0.0, 3.0}, mu2 = {0.0, 1.0, 2.5, -0.5, 3.0};
  const std::vector<double> var1 = {1.0, 4.0, 0.25, 9.0, 2.0}, var2 = {2.0, 1.0, 1.0, 0.01, 2.0};
  double want = 0;
  for (size_t i = 0; i < mu1.size(); ++i)
    want += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]) + std::pow(std::sqrt(var1[i]) - std::sqrt(var2[i]), 2);
  EXPECT_NEAR(frechet_distance(diagonal_stats(mu1, var1), diagonal_stats(mu2, var2)), want, 1e-12 * want);
}

TEST(FrechetDistance, OfCovariancesOnDisjointDimensionsIsTheirTraces) {
  // Σ1 Σ2 = 0 exactly: its square root is 0 as SciPy takes it (0/0 → 0 in the recurrence), not NaN, so no ε offset.
  const FeatureStats a = diagonal_stats({1, 2, 0, 0}, {3, 1, 0, 0}), b = diagonal_stats({0, 0, 1, 1}, {0, 0, 2, 5});
  EXPECT_DOUBLE_EQ(frechet_distance(a, b), 1 + 4 + 1 + 1 + 3 + 1 + 2 + 5);
}

TEST(FrechetDistance, RefusesMismatchedOrMalformedStats) {
  const FeatureStats a = diagonal_stats({0, 0}, {1, 1}), b = diagonal_stats({0, 0, 0}, {1, 1, 1});
  EXPECT_NE(error_of([&] { frechet_distance(a, b); }).find("dimensions differ (2 and 3)"), std::string::npos);
  FeatureStats broken = a;
  broken.cov.pop_back();
  EXPECT_THROW(frechet_distance(a, broken), std::invalid_argument);
}

TEST(FrechetDistance, TakesTheOffsetWhenTheRootFailsAndRefusesALargeImaginaryPart) {
  // Not covariances (indefinite), but they reach both safeguards: Σ1 Σ2 = [[0, 0], [1, 0]] is nilpotent, with no
  // square root (matrix_sqrt gives NaN, as SciPy does); the ε-offset product has eigenvalues of both signs, so its
  // root has an imaginary diagonal far above 1e-3.
  FeatureStats a = diagonal_stats({0, 0}, {0, 0}), b = diagonal_stats({0, 0}, {1, 0});
  a.cov = {0, 1, 1, 0};
  const std::vector<std::complex<double>> root = matrix_sqrt({0, 0, 1, 0}, 2);
  for (const std::complex<double>& v : root) EXPECT_TRUE(std::isnan(v.real()) && std::isnan(v.imag()));
  EXPECT_NE(error_of([&] { frechet_distance(a, b); }).find("imaginary component"), std::string::npos);
}

TEST(FrechetDistance, ScalesWithTheFeaturesWhateverTheirMagnitude) {
  // Features scaled by c scale the FID by c². With c = 2^300 the product Σ1 Σ2 (~2^1200) overflows a double unless
  // the covariances are scaled first; the crash the fid_stats fuzz target found came from such an overflow.
  const FeatureStats a = feature_stats(correlated_features(300, 8, 21), 300, 8);
  const FeatureStats b = feature_stats(correlated_features(300, 8, 22, 0.3, 5), 300, 8);
  for (const int e : {-300, 300}) {
    auto scaled = [&](FeatureStats s) {
      for (double& v : s.mean) v = std::ldexp(v, e);
      for (double& v : s.cov) v = std::ldexp(v, 2 * e);
      return s;
    };
    const double want = std::ldexp(frechet_distance(a, b), 2 * e);
    EXPECT_NEAR(frechet_distance(scaled(a), scaled(b)), want, 1e-12 * want) << "scale 2^" << e;
  }
}

TEST(FrechetDistance, RefusesStatisticsWhoseDistanceOverflows) {
  const FeatureStats huge = diagonal_stats({0, 0}, {1e308, 1e308}), unit = diagonal_stats({0, 0}, {1, 1});
  EXPECT_NE(error_of([&] { frechet_distance(huge, unit); }).find("overflows a double"), std::string::npos);
  // Finite entries whose product is not: the square root is refused before the Schur form, never computed on inf.
  const std::vector<std::complex<double>> root = matrix_sqrt({1e200, 0, 0, std::numeric_limits<double>::infinity()}, 2);
  for (const std::complex<double>& v : root) EXPECT_TRUE(std::isnan(v.real()));
}

TEST(MatrixSqrt, SurvivesEigensExceptionalShiftOnTheTopBlock) {
  // Eigen 3.4's ComplexSchur read out of bounds on this matrix (its exceptional shift after 10 iterations on the top
  // 2x2 block; found by the fid_stats fuzz target). Run under ASan in CI; the result must be a root or NaN.
  // The matrix is the square of this one scaled to entries below 1, as frechet_distance(s, s) formed it; without the
  // pad in complex_sqrt, ASan reports a heap-buffer-overflow here.
  const double a[9] = {2.0, 0.5, 1.2027073776566727e-72, 0.5, 1.0, 0.0, 0.0, 2.961426102699664e+92,
                       4.022343392317206e+154};
  std::vector<double> scaled(9), square(9, 0.0);
  for (int i = 0; i < 9; ++i) scaled[size_t(i)] = std::ldexp(a[i], -514);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) square[size_t(i * 3 + j)] += scaled[size_t(i * 3 + k)] * scaled[size_t(k * 3 + j)];
  const std::vector<std::complex<double>> root = matrix_sqrt(square, 3);
  ASSERT_EQ(root.size(), 9u);
  bool all_nan = true;
  for (const auto& r : root) all_nan = all_nan && std::isnan(r.real());
  if (all_nan) return;  // refused: no root found
  // Otherwise it is a root: root² = square, relative to the matrix's size (its entries span 1e-155 to 1).
  double error = 0, norm = 0;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      std::complex<double> product = 0;
      for (int k = 0; k < 3; ++k) product += root[size_t(i * 3 + k)] * root[size_t(k * 3 + j)];
      error += std::norm(product - square[size_t(i * 3 + j)]);
      norm += square[size_t(i * 3 + j)] * square[size_t(i * 3 + j)];
    }
  EXPECT_LE(std::sqrt(error), 1e-8 * std::sqrt(norm));
}

TEST(FrechetDistance, RefusesAMatrixThatIsNoCovariance) {
  const FeatureStats a = diagonal_stats({0, 0}, {1, 2});
  FeatureStats asymmetric = a, negative = a;
  asymmetric.cov = {1, 0.5, 0.25, 2};
  negative.cov = {1, 0, 0, -2};
  EXPECT_NE(error_of([&] { frechet_distance(a, asymmetric); }).find("not symmetric"), std::string::npos);
  EXPECT_NE(error_of([&] { frechet_distance(negative, a); }).find("variance 1 is negative"), std::string::npos);
  // Rounding-level asymmetry, as np.cov's product may leave, is accepted.
  FeatureStats rounded = a;
  rounded.cov = {1, 0.5, 0.5 * (1 + 1e-15), 2};
  EXPECT_NO_THROW(frechet_distance(a, rounded));
}

// ---- matrix square root -------------------------------------------------------------------------------------------

TEST(MatrixSqrt, SquaresBackToAProductOfCovariances) {
  const int d = 24;
  const FeatureStats a = feature_stats(correlated_features(200, d, 12), 200, d);
  const FeatureStats b = feature_stats(correlated_features(200, d, 13, 0.0, 5), 200, d);
  std::vector<double> product(static_cast<size_t>(d) * d, 0.0);
  for (int i = 0; i < d; ++i)
    for (int k = 0; k < d; ++k)
      for (int j = 0; j < d; ++j) product[i * d + j] += a.cov[i * d + k] * b.cov[k * d + j];
  const std::vector<std::complex<double>> root = matrix_sqrt(product, d);
  std::vector<double> squared(product.size(), 0.0), imaginary(product.size(), 0.0);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) {
      std::complex<double> sum = 0;
      for (int k = 0; k < d; ++k) sum += root[i * d + k] * root[k * d + j];
      squared[i * d + j] = sum.real();
      imaginary[i * d + j] = root[i * d + j].imag();
    }
  EXPECT_TRUE(close_rel_l2(squared, product, 1e-10, {d, d}));
  // Σ1 Σ2 has real positive eigenvalues: the principal root is real but for rounding.
  for (double v : imaginary) EXPECT_LT(std::abs(v), 1e-8);
}

TEST(MatrixSqrt, IsPrincipalForNegativeAndComplexEigenvalues) {
  // diag(4, −9) → diag(2, 3i); the rotation by 90° (eigenvalues ±i) → its principal root, the rotation by 45°.
  const std::vector<std::complex<double>> d = matrix_sqrt({4, 0, 0, -9}, 2);
  EXPECT_NEAR(std::abs(d[0] - 2.0), 0, 1e-14);
  EXPECT_NEAR(std::abs(d[3] - std::complex<double>(0, 3)), 0, 1e-14);
  EXPECT_NEAR(std::abs(d[1]) + std::abs(d[2]), 0, 1e-14);
  const std::vector<std::complex<double>> r = matrix_sqrt({0, -1, 1, 0}, 2);
  const double h = std::sqrt(0.5);
  const std::vector<std::complex<double>> want = {h, -h, h, h};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(std::abs(r[i] - want[i]), 0, 1e-14) << i;
  EXPECT_THROW(matrix_sqrt({1, 2, 3}, 2), std::invalid_argument);
}

// ---- KID ----------------------------------------------------------------------------------------------------------

// The MMD² of the header, term by term; `biased`: the V-statistic, diagonal terms included and every sum over m².
double mmd2_by_loops(const std::vector<double>& x, const std::vector<double>& y, int64_t m, int d, bool biased = false) {
  auto k = [&](const std::vector<double>& u, int64_t i, const std::vector<double>& v, int64_t j) {
    double dot = 0;
    for (int c = 0; c < d; ++c) dot += u[i * d + c] * v[j * d + c];
    return std::pow(dot / d + 1, 3);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j) {
      if (i != j || biased) xx += k(x, i, x, j), yy += k(y, i, y, j);
      xy += k(x, i, y, j);
    }
  return (xx + yy) / (double(m) * (biased ? m : m - 1)) - 2 * xy / (double(m) * m);
}

TEST(Kid, OneSubsetMatchesTheEstimatorWrittenAsLoops) {
  // 300 rows: more than one 256-row kernel block.
  for (const int64_t m : {2, 7, 300}) {
    const std::vector<double> x = correlated_features(m, 3, 20), y = correlated_features(m, 3, 21, 0.3);
    const double want = mmd2_by_loops(x, y, m, 3);
    EXPECT_NEAR(polynomial_mmd2_unbiased(x.data(), y.data(), m, 3), want, 1e-12 * (std::abs(want) + 1)) << m;
    // Every row of both sets in one subset: only the order of rows changes, which the estimator ignores.
    const Kid kid = kernel_inception_distance(x, m, y, m, 3, 1, static_cast<int>(m) + 5, 3);
    EXPECT_NEAR(kid.mean, want, 1e-12 * (std::abs(want) + 1)) << m;
    EXPECT_EQ(kid.stddev, 0.0);
  }
}

TEST(Kid, IsNearZeroForOneDistributionAndClearlyPositiveForShiftedOnes) {
  const int d = 8;
  const std::vector<double> a = correlated_features(2000, d, 30), b = correlated_features(2000, d, 31);
  const std::vector<double> shifted = correlated_features(2000, d, 32, 0.5);
  const Kid same = kernel_inception_distance(a, 2000, b, 2000, d, 50, 200, 1);
  const Kid apart = kernel_inception_distance(a, 2000, shifted, 2000, d, 50, 200, 1);
  // Unbiased: the subsets' mean lies within a few standard errors of 0 (subsets overlap, so the bound is loose).
  EXPECT_LT(std::abs(same.mean), 3 * same.stddev) << same.mean << " ± " << same.stddev;
  EXPECT_GT(same.stddev, 0.0);
  EXPECT_GT(apart.mean, 10 * same.stddev + 10 * apart.stddev / std::sqrt(50.0)) << apart.mean << " ± " << apart.stddev;
}

TEST(Kid, IsUnbiasedWhereTheBiasedEstimatorIsNot) {
  // 4000 independent pairs of tiny samples (m = 4) of one distribution: the unbiased MMD² averages to 0 within its
  // standard error; including the diagonal terms (the biased V-statistic) averages to a clearly positive value.
  const int d = 3, m = 4, trials = 4000;
  double sum = 0, sum_sq = 0, biased_sum = 0;
  for (int t = 0; t < trials; ++t) {
    const std::vector<double> x = random_vector<double>(m * d, 1000 + 2 * t), y = random_vector<double>(m * d, 1001 + 2 * t);
    const double v = polynomial_mmd2_unbiased(x.data(), y.data(), m, d);
    sum += v, sum_sq += v * v;
    biased_sum += mmd2_by_loops(x, y, m, d, /*biased=*/true);
  }
  const double mean = sum / trials, se = std::sqrt((sum_sq / trials - mean * mean) / trials);
  EXPECT_LT(std::abs(mean), 4 * se) << mean << " ± " << se;
  EXPECT_GT(biased_sum / trials, 20 * se);
}

TEST(Kid, IsDeterministicForASeedClipsTheSubsetSizeAndRefusesBadArguments) {
  const std::vector<double> a = correlated_features(50, 4, 40), b = correlated_features(80, 4, 41, 0.2);
  const Kid first = kernel_inception_distance(a, 50, b, 80, 4, 5, 1000, 9);
  const Kid again = kernel_inception_distance(a, 50, b, 80, 4, 5, 1000, 9);
  EXPECT_EQ(std::memcmp(&first, &again, sizeof(Kid)), 0);
  const Kid other = kernel_inception_distance(a, 50, b, 80, 4, 5, 1000, 10);
  EXPECT_NE(first.mean, other.mean);  // 50 of 80 rows of b drawn differently
  EXPECT_THROW(kernel_inception_distance(a, 50, b, 80, 4, 0), std::invalid_argument);
  EXPECT_THROW(kernel_inception_distance(a, 50, b, 80, 5), std::invalid_argument);
  EXPECT_THROW(kernel_inception_distance(a, 1, b, 80, 4), std::invalid_argument);
}

// ---- stats files --------------------------------------------------------------------------------------------------

class FeatureStatsFile : public testing::TempDirTest {};

TEST_F(FeatureStatsFile, RoundTripsBitExactWithMetadata) {
  const FeatureStats s = feature_stats(correlated_features(64, 7, 50, 0.1), 64, 7);
  const std::map<std::string, std::string> metadata = {{"classifier", "runs/clf/classifier.safetensors"},
                                                       {"data", "fashion-mnist"}};
  save_feature_stats(path("ref.safetensors"), s, metadata);
  std::map<std::string, std::string> read_metadata;
  const FeatureStats loaded = load_feature_stats(path("ref.safetensors"), &read_metadata);
  EXPECT_EQ(loaded.n, 64);
  EXPECT_EQ(loaded.dim, 7);
  ASSERT_EQ(loaded.mean.size(), s.mean.size());
  ASSERT_EQ(loaded.cov.size(), s.cov.size());
  EXPECT_EQ(std::memcmp(loaded.mean.data(), s.mean.data(), s.mean.size() * sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(loaded.cov.data(), s.cov.data(), s.cov.size() * sizeof(double)), 0);
  EXPECT_EQ(read_metadata, metadata);
  EXPECT_EQ(frechet_distance(loaded, s), frechet_distance(s, s));
  EXPECT_THROW(save_feature_stats(path("x.safetensors"), s, {{"n", "3"}}), std::invalid_argument);
}

// A one-line std::runtime_error starting with the path and holding `what`.
void expect_refused(const std::string& file, const std::string& what) {
  try {
    load_feature_stats(file);
    ADD_FAILURE() << file << " was accepted";
  } catch (const std::runtime_error& e) {
    testing::expect_one_line_error(e.what(), file, what);
  }
}

TEST_F(FeatureStatsFile, RefusesTruncatedGarbageAndMisshapenFilesWithOneLine) {
  const FeatureStats s = feature_stats(correlated_features(10, 3, 51), 10, 3);
  save_feature_stats(path("ok.safetensors"), s, {});
  const std::vector<char> bytes = read_file(path("ok.safetensors"));
  const std::string whole(bytes.begin(), bytes.end());
  expect_refused(write_bytes("truncated.safetensors", whole.substr(0, whole.size() - 5)), "truncated");
  expect_refused(write_bytes("garbage.safetensors", "this is not a stats file at all\n"), "header length");
  expect_refused(path("missing.safetensors"), "cannot open");

  const auto f64 = [](std::vector<int64_t> shape, std::vector<double> values) { return F64Array{shape, values}; };
  save_safetensors_f64(path("no-n.safetensors"), {{"mean", f64({2}, {0, 0})}, {"cov", f64({2, 2}, {1, 0, 0, 1})}});
  expect_refused(path("no-n.safetensors"), "no metadata \"n\"");
  for (const char* n : {"1", "abc", "12x", ""}) {
    save_safetensors_f64(path("bad-n.safetensors"), {{"mean", f64({2}, {0, 0})}, {"cov", f64({2, 2}, {1, 0, 0, 1})}},
                         {{"n", n}});
    expect_refused(path("bad-n.safetensors"), "metadata \"n\" must be an integer of at least 2");
  }
  save_safetensors_f64(path("shape.safetensors"), {{"mean", f64({2}, {0, 0})}, {"cov", f64({2, 1}, {1, 0})}},
                       {{"n", "5"}});
  expect_refused(path("shape.safetensors"), "\"cov\" must have shape [2, 2]");
  save_safetensors_f64(path("rank.safetensors"), {{"mean", f64({1, 2}, {0, 0})}, {"cov", f64({2, 2}, {1, 0, 0, 1})}},
                       {{"n", "5"}});
  expect_refused(path("rank.safetensors"), "\"mean\" must have shape [d]");
  save_safetensors_f64(path("nan.safetensors"), {{"mean", f64({1}, {0})}, {"cov", f64({1, 1}, {std::nan("")})}},
                       {{"n", "5"}});
  expect_refused(path("nan.safetensors"), "\"cov\" holds a non-finite value");
  save_safetensors_f64(path("asymmetric.safetensors"), {{"mean", f64({2}, {0, 0})}, {"cov", f64({2, 2}, {1, 3, 0, 1})}},
                       {{"n", "5"}});
  expect_refused(path("asymmetric.safetensors"), "\"cov\" is not a covariance matrix: entries (1, 0) and (0, 1) differ");
  save_safetensors_f64(path("no-cov.safetensors"), {{"mean", f64({1}, {0})}}, {{"n", "5"}});
  expect_refused(path("no-cov.safetensors"), "missing tensor \"cov\"");
  // float32 tensors of the right names: a checkpoint-like file, not stats.
  save_safetensors(path("f32.safetensors"), {{"mean", Tensor(Shape{2})}, {"cov", Tensor(Shape{2, 2})}}, {{"n", "5"}});
  expect_refused(path("f32.safetensors"), "has dtype F32, expected F64");
}

// ---- the image sets -----------------------------------------------------------------------------------------------

TEST(EvalImages, GeneratorOutputIsRoundedAsGridsAreThenPaddedAsTrainingData) {
  // 28×28 generator output, as the MLP GAN makes: edge values, rounding ties, out-of-range and NaN, then random.
  Tensor out(Shape{3, 1, 28, 28});
  const std::vector<float> noise = random_vector<float>(out.numel(), 60, 0.6);
  for (int64_t i = 0; i < out.numel(); ++i) out[i] = noise[i];
  const float edge[] = {-1.0f, 1.0f, 0.0f, -2.0f, 3.0f, std::nanf(""), -0.5f};
  for (int i = 0; i < 7; ++i) out[i] = edge[i];
  const ImageSet set = images_from_generator(out, 1, 32);
  ASSERT_EQ(set.count, 3);
  ASSERT_EQ(set.channels, 1);
  ASSERT_EQ(set.height, 32);
  ASSERT_EQ(set.width, 32);
  ASSERT_EQ(set.pixels.size(), 3u * 32 * 32);
  // round((x + 1) · 127.5): −1 → 0, 1 → 255, 0 → 127.5 → 128 (ties away from 0), clamped, NaN → 0, −0.5 → 63.75 → 64.
  const uint8_t want_edge[] = {0, 255, 128, 0, 255, 0, 64};
  for (int i = 0; i < 7; ++i) EXPECT_EQ(set.pixels[(2 * 32) + 2 + i], want_edge[i]) << i;
  // Every pixel: the grid's byte inside, zero in the 2-pixel border, exactly as conform_images pads MNIST.
  ImageSet bytes{3, 1, 28, 28, {}, "bytes"};
  for (int64_t i = 0; i < out.numel(); ++i) bytes.pixels.push_back(byte_from_unit(out[i]));
  EXPECT_EQ(set.pixels, conform_images(bytes, 1, 32).pixels);
  for (int64_t n = 0; n < 3; ++n)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const uint8_t got = set.pixels[(n * 32 + y) * 32 + x];
        if (y < 2 || y >= 30 || x < 2 || x >= 30)
          EXPECT_EQ(got, 0) << n << "," << y << "," << x;
        else
          EXPECT_EQ(got, byte_from_unit(out[(n * 28 + y - 2) * 28 + x - 2])) << n << "," << y << "," << x;
      }
}

TEST(EvalImages, GeneratorOutputIsConvertedAndResizedAsTrainingData) {
  Tensor out(Shape{2, 3, 20, 20});
  const std::vector<float> noise = random_vector<float>(out.numel(), 61, 0.5);
  for (int64_t i = 0; i < out.numel(); ++i) out[i] = noise[i];
  ImageSet bytes{2, 3, 20, 20, {}, "bytes"};
  for (int64_t i = 0; i < out.numel(); ++i) bytes.pixels.push_back(byte_from_unit(out[i]));
  const ImageSet grey16 = images_from_generator(out, 1, 16);
  EXPECT_EQ(grey16.channels, 1);
  EXPECT_EQ(grey16.height, 16);
  EXPECT_EQ(grey16.pixels, conform_images(bytes, 1, 16).pixels);
  // Already the wanted size: the rounded bytes themselves.
  EXPECT_EQ(images_from_generator(out, 3, 20).pixels, bytes.pixels);
  EXPECT_THROW(images_from_generator(Tensor(Shape{2, 20, 20}), 1, 32), std::invalid_argument);
  EXPECT_THROW(images_from_generator(Tensor(Shape{2, 2, 20, 20}), 1, 32), std::invalid_argument);
}

TEST(EvalImages, NoiseIsUniformBytesFixedByTheSeed) {
  const ImageSet a = noise_images(40, 3, 32, 5);
  EXPECT_EQ(a.count, 40);
  EXPECT_EQ(a.channels, 3);
  EXPECT_EQ(a.height, 32);
  EXPECT_EQ(a.width, 32);
  ASSERT_EQ(a.pixels.size(), 40u * 3 * 32 * 32);
  EXPECT_EQ(noise_images(40, 3, 32, 5).pixels, a.pixels);
  EXPECT_NE(noise_images(40, 3, 32, 6).pixels, a.pixels);
  // 122,880 bytes over 256 values: 480 expected per value, a binomial standard deviation of 22; ±6σ.
  std::vector<int> histogram(256, 0);
  for (uint8_t v : a.pixels) ++histogram[v];
  for (int v = 0; v < 256; ++v) EXPECT_NEAR(histogram[v], 480, 6 * 22) << v;
  // An odd byte count still fills every byte from the stream (a set's bytes are a prefix of a larger one's).
  const ImageSet odd = noise_images(1, 1, 5, 5);
  EXPECT_TRUE(std::equal(odd.pixels.begin(), odd.pixels.end(), a.pixels.begin()));
  EXPECT_THROW(noise_images(2, 2, 32, 1), std::invalid_argument);
}

TEST(EvalImages, SubsetDrawsDistinctImagesInOrderWithTheirLabels) {
  ImageSet set{300, 1, 2, 2, {}, "numbered"};
  for (int i = 0; i < 300; ++i) {
    for (int p = 0; p < 4; ++p) set.pixels.push_back(static_cast<uint8_t>(p == 0 ? i % 256 : i / 256));
    set.labels.push_back(i % 10);
  }
  set.class_names = mnist_class_names();
  const ImageSet sub = subset(set, 100, 3);
  ASSERT_EQ(sub.count, 100);
  ASSERT_EQ(sub.pixels.size(), 400u);
  ASSERT_EQ(sub.labels.size(), 100u);
  EXPECT_EQ(sub.class_names, set.class_names);
  std::vector<int> drawn;
  for (int i = 0; i < 100; ++i) {
    const int index = sub.pixels[i * 4] + 256 * sub.pixels[i * 4 + 1];
    EXPECT_EQ(sub.pixels[i * 4 + 2], sub.pixels[i * 4 + 1]);  // the whole image came along
    EXPECT_EQ(sub.labels[i], index % 10);
    drawn.push_back(index);
  }
  EXPECT_TRUE(std::is_sorted(drawn.begin(), drawn.end()));
  EXPECT_EQ(std::set<int>(drawn.begin(), drawn.end()).size(), 100u);
  EXPECT_EQ(subset(set, 100, 3).pixels, sub.pixels);
  EXPECT_NE(subset(set, 100, 4).pixels, sub.pixels);
  EXPECT_EQ(subset(set, 300, 8).pixels, set.pixels);
  EXPECT_THROW(subset(set, 301, 1), std::invalid_argument);
}

TEST(EvalImages, DrawsWithoutReplacementUniformly) {
  Rng rng(11);
  const std::vector<int64_t> all = draw_without_replacement(50, 50, rng);
  EXPECT_EQ(std::set<int64_t>(all.begin(), all.end()).size(), 50u);
  EXPECT_EQ(*std::max_element(all.begin(), all.end()), 49);
  // Each of 5 indices first with probability 1/5: 20,000 draws, 4,000 expected, σ ≈ 57; ±6σ.
  std::vector<int> first(5, 0);
  for (int t = 0; t < 20000; ++t) ++first[draw_without_replacement(5, 2, rng)[0]];
  for (int v : first) EXPECT_NEAR(v, 4000, 6 * 57);
  EXPECT_THROW(draw_without_replacement(3, 4, rng), std::invalid_argument);
}

}  // namespace
}  // namespace gancu::eval
