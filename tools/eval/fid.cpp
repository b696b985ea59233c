#include "tools/eval/fid.h"

#include <Eigen/Dense>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/rng.h"
#include "tools/eval/images.h"
#include "tools/io/safetensors.h"

namespace gancu::eval {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMatrix>;

// pytorch-fid's offset for a singular Σ1 Σ2, and its bound on the imaginary part of the square root's diagonal.
constexpr double kSingularOffset = 1e-6;
constexpr double kMaxImaginary = 1e-3;
// Rows of a KID kernel block: bounds the block's memory (rows × m doubles) whatever the subset size.
constexpr int64_t kKernelBlockRows = 256;

[[noreturn]] void invalid(const std::string& what) { throw std::invalid_argument(what); }

void check_features(const char* who, const std::vector<double>& features, int64_t n, int dim, int64_t min_rows) {
  if (dim < 1) invalid(std::string(who) + ": feature dimension " + std::to_string(dim) + " must be at least 1");
  if (n < min_rows)
    invalid(std::string(who) + ": " + std::to_string(n) + " feature rows, at least " + std::to_string(min_rows) +
            " needed");
  if (features.size() != static_cast<size_t>(n) * static_cast<size_t>(dim))
    invalid(std::string(who) + ": " + std::to_string(features.size()) + " values for " + std::to_string(n) + " rows of " +
            std::to_string(dim));
  for (size_t i = 0; i < features.size(); ++i)
    if (!std::isfinite(features[i]))
      invalid(std::string(who) + ": feature " + std::to_string(i % dim) + " of row " + std::to_string(i / dim) +
              " is not finite");
}

// Why `cov` (d × d, finite) cannot be a covariance matrix, or "" if it can: a negative variance, or an asymmetry beyond
// rounding (np.cov's product need not be bitwise symmetric), measured against the entries and √(σ_ii σ_jj). Such a
// matrix is refused before any square root is taken.
std::string covariance_problem(const std::vector<double>& cov, int64_t d) {
  for (int64_t i = 0; i < d; ++i) {
    const double variance = cov[static_cast<size_t>(i * d + i)];
    if (variance < 0) return "variance " + std::to_string(i) + " is negative";
  }
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < i; ++j) {
      const double a = cov[static_cast<size_t>(i * d + j)], b = cov[static_cast<size_t>(j * d + i)];
      const double scale = std::sqrt(cov[static_cast<size_t>(i * d + i)]) * std::sqrt(cov[static_cast<size_t>(j * d + j)]);
      const double tolerance = 1e-8 * std::max(std::abs(a), std::abs(b)) + 1e-12 * scale;
      if (!(std::abs(a - b) <= tolerance))
        return "entries (" + std::to_string(i) + ", " + std::to_string(j) + ") and (" + std::to_string(j) + ", " +
               std::to_string(i) + ") differ: not symmetric";
    }
  return "";
}

void check_stats(const FeatureStats& s, const std::string& which) {
  if (s.dim < 1 || s.n < 2 || s.mean.size() != static_cast<size_t>(s.dim) ||
      s.cov.size() != static_cast<size_t>(s.dim) * static_cast<size_t>(s.dim))
    invalid(which + " are malformed (n " + std::to_string(s.n) + ", dim " +
            std::to_string(s.dim) + ", " + std::to_string(s.mean.size()) + " means, " + std::to_string(s.cov.size()) +
            " covariances)");
  for (const std::vector<double>* values : {&s.mean, &s.cov})
    for (double v : *values)
      if (!std::isfinite(v)) invalid(which + " hold a non-finite value");
  const std::string problem = covariance_problem(s.cov, s.dim);
  if (!problem.empty()) invalid(which + ": the covariance matrix is not one (" + problem + ")");
}

bool all_finite(const Eigen::MatrixXcd& m) {
  for (Eigen::Index i = 0; i < m.size(); ++i)
    if (!std::isfinite(m.data()[i].real()) || !std::isfinite(m.data()[i].imag())) return false;
  return true;
}

// An even power of two near the largest |entry| of a finite matrix, 0 for a zero matrix. Dividing by it is exact, and
// so is the square root of the factor: covariances of any magnitude then keep Σ1 Σ2 and the Schur iteration in range.
int even_exponent(const Eigen::MatrixXd& m) {
  const double largest = m.cwiseAbs().maxCoeff();
  if (largest == 0 || !std::isfinite(largest)) return 0;
  int exponent = 0;
  std::frexp(largest, &exponent);
  return exponent - (exponent & 1);
}

// The principal square root as scipy.linalg.sqrtm takes it: a complex Schur form A = U T U*, then R = T^½ by the
// Björck–Hammarling recurrence R_ii = √T_ii, R_ij = (T_ij − Σ_{i<k<j} R_ik R_kj) / (R_ii + R_jj), column by column,
// and U R U*. Eigen's own MatrixFunctions sqrt runs the same recurrence but divides 0 by 0 where two eigenvalues are
// exactly 0 (a singular Σ1 Σ2, e.g. features on disjoint dimensions) and returns NaN; SciPy sets such an entry to 0
// and fails (all NaN) only for a nonzero numerator over a zero denominator. Following SciPy keeps gancu's FID equal to
// pytorch-fid's there too (the ε offset would otherwise change the FID by ~1e-3 relative).
// A non-finite matrix has no root; it is refused before the Schur form, whose QR iteration reads out of bounds once
// an infinity or NaN appears in it (found by the fid_stats fuzz target). The matrix is scaled to entries of at most 1
// first (exactly, by an even power of two, see even_exponent), so no norm inside the iteration can overflow either.
Eigen::MatrixXcd complex_sqrt(const Eigen::MatrixXd& unscaled) {
  const Eigen::Index n = unscaled.rows();
  if (!unscaled.allFinite()) return Eigen::MatrixXcd::Constant(n, n, std::complex<double>(std::nan(""), std::nan("")));
  const int exponent = even_exponent(unscaled);
  // The matrix goes in with a zero row and column in front, a decoupled eigenvalue 0 that the Schur form keeps apart
  // (exactly: its Householder and Givens rotations never touch index 0). Eigen 3.4's exceptional shift, after 10 QR
  // iterations on the top 2x2 block, reads T(iu − 1, iu − 2) with iu = 1, out of bounds (found by the fuzz target on a
  // finite, scaled matrix); with the pad the top block of the input is never the matrix's top block.
  const Eigen::Index padded = n + 1;
  Eigen::MatrixXcd m = Eigen::MatrixXcd::Zero(padded, padded);
  m.bottomRightCorner(n, n) = (unscaled * std::ldexp(1.0, -exponent)).cast<std::complex<double>>();
  const Eigen::ComplexSchur<Eigen::MatrixXcd> schur(m);
  if (schur.info() != Eigen::Success || !schur.matrixT().allFinite())
    return Eigen::MatrixXcd::Constant(n, n, std::complex<double>(std::nan(""), std::nan("")));
  const Eigen::MatrixXcd& t = schur.matrixT();
  Eigen::MatrixXcd r = Eigen::MatrixXcd::Zero(padded, padded);
  for (Eigen::Index i = 0; i < padded; ++i) r(i, i) = std::sqrt(t(i, i));
  for (Eigen::Index j = 1; j < padded; ++j)
    for (Eigen::Index i = j - 1; i >= 0; --i) {
      std::complex<double> sum = 0;
      for (Eigen::Index k = i + 1; k < j; ++k) sum += r(i, k) * r(k, j);
      const std::complex<double> numerator = t(i, j) - sum, denominator = r(i, i) + r(j, j);
      if (denominator != 0.0) {
        r(i, j) = numerator / denominator;
      } else if (numerator != 0.0) {
        return Eigen::MatrixXcd::Constant(n, n, std::complex<double>(std::nan(""), std::nan("")));
      }
    }
  const Eigen::MatrixXcd root = schur.matrixU() * r * schur.matrixU().adjoint();
  return root.bottomRightCorner(n, n) * std::ldexp(1.0, exponent / 2);
}

// (Σ1 Σ2)^½ of the scaled covariances, and the exponent e with (Σ1 Σ2)^½ = 2^e × the returned root.
Eigen::MatrixXcd scaled_product_root(const Eigen::MatrixXd& sigma1, const Eigen::MatrixXd& sigma2, int& exponent) {
  const int e1 = even_exponent(sigma1), e2 = even_exponent(sigma2);
  exponent = (e1 + e2) / 2;
  // Evaluated first: in a product of scaled operands Eigen moves the scalars out and multiplies the unscaled ones.
  const Eigen::MatrixXd scaled1 = sigma1 * std::ldexp(1.0, -e1), scaled2 = sigma2 * std::ldexp(1.0, -e2);
  return complex_sqrt(scaled1 * scaled2);
}

[[noreturn]] void bad_file(const std::string& path, const std::string& problem) {
  throw std::runtime_error(path + ": " + problem);
}

}  // namespace

FeatureStats feature_stats(const std::vector<double>& features, int64_t n, int dim) {
  check_features("feature_stats", features, n, dim, 2);
  const ConstRowMap x(features.data(), n, dim);
  FeatureStats stats;
  stats.n = n;
  stats.dim = dim;
  // Row order, in double: the mean a plain loop gives.
  Eigen::RowVectorXd mean = Eigen::RowVectorXd::Zero(dim);
  for (int64_t i = 0; i < n; ++i) mean += x.row(i);
  mean /= static_cast<double>(n);
  const RowMatrix centred = x.rowwise() - mean;
  // A rank-n update of the lower triangle, mirrored: the result is exactly symmetric, as the square root assumes.
  Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(dim, dim);
  cov.selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose(), 1.0 / static_cast<double>(n - 1));
  cov.triangularView<Eigen::StrictlyUpper>() = cov.transpose();
  stats.mean.assign(mean.data(), mean.data() + dim);
  stats.cov.resize(static_cast<size_t>(dim) * dim);
  Eigen::Map<RowMatrix>(stats.cov.data(), dim, dim) = cov;
  return stats;
}

std::vector<std::complex<double>> matrix_sqrt(const std::vector<double>& matrix, int dim) {
  if (dim < 1 || matrix.size() != static_cast<size_t>(dim) * static_cast<size_t>(dim))
    invalid("matrix_sqrt: " + std::to_string(matrix.size()) + " values for a " + std::to_string(dim) + "x" +
            std::to_string(dim) + " matrix");
  const Eigen::MatrixXcd root = complex_sqrt(ConstRowMap(matrix.data(), dim, dim));
  std::vector<std::complex<double>> out(matrix.size());
  Eigen::Map<Eigen::Matrix<std::complex<double>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(out.data(), dim, dim) =
      root;
  return out;
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  check_stats(a, "frechet_distance: stats a");
  check_stats(b, "frechet_distance: stats b");
  if (a.dim != b.dim)
    invalid("frechet_distance: feature dimensions differ (" + std::to_string(a.dim) + " and " + std::to_string(b.dim) +
            ")");
  const int d = a.dim;
  const Eigen::Map<const Eigen::VectorXd> mu1(a.mean.data(), d), mu2(b.mean.data(), d);
  const Eigen::MatrixXd sigma1 = ConstRowMap(a.cov.data(), d, d), sigma2 = ConstRowMap(b.cov.data(), d, d);

  int exponent = 0;
  Eigen::MatrixXcd root = scaled_product_root(sigma1, sigma2, exponent);
  if (!all_finite(root)) {
    const Eigen::MatrixXd offset = kSingularOffset * Eigen::MatrixXd::Identity(d, d);
    root = scaled_product_root(sigma1 + offset, sigma2 + offset, exponent);
    if (!all_finite(root))
      throw std::runtime_error("frechet_distance: the square root of the covariance product is not finite, even with "
                               "an offset of 1e-6 on the diagonals");
  }
  double max_imaginary = 0, trace_root = 0;
  for (int i = 0; i < d; ++i) {
    max_imaginary = std::max(max_imaginary, std::abs(root(i, i).imag()));
    trace_root += root(i, i).real();
  }
  max_imaginary = std::ldexp(max_imaginary, exponent);
  trace_root = std::ldexp(trace_root, exponent);
  if (max_imaginary > kMaxImaginary)
    throw std::runtime_error("frechet_distance: the square root of the covariance product has an imaginary component "
                             "of " + std::to_string(max_imaginary) + " on its diagonal (above 1e-3)");
  const double fid = (mu1 - mu2).squaredNorm() + sigma1.trace() + sigma2.trace() - 2.0 * trace_root;
  if (!std::isfinite(fid))
    throw std::runtime_error("frechet_distance: the distance of these statistics overflows a double (means or "
                             "covariances near 1e154 or above)");
  return fid;
}

double polynomial_mmd2_unbiased(const double* x, const double* y, int64_t m, int dim) {
  if (m < 2 || dim < 1) invalid("polynomial_mmd2_unbiased: needs at least 2 rows and 1 feature");
  const ConstRowMap xs(x, m, dim), ys(y, m, dim);
  const double inv_dim = 1.0 / dim;
  auto kernel = [&](const ConstRowMap& u, int64_t row, int64_t rows, const ConstRowMap& v, int64_t col, int64_t cols) {
    return ((u.middleRows(row, rows) * v.middleRows(col, cols).transpose()).array() * inv_dim + 1.0).cube().eval();
  };
  // Σ_{i≠j} k(u_i, u_j), row block by row block in a fixed order. k is symmetric: each block row computes its square
  // diagonal block and only the columns to its right, counted twice, which saves almost half of the GEMM work.
  auto off_diagonal_sum = [&](const ConstRowMap& u) {
    double total = 0;
    for (int64_t r = 0; r < m; r += kKernelBlockRows) {
      const int64_t rows = std::min(kKernelBlockRows, m - r);
      const Eigen::ArrayXXd square = kernel(u, r, rows, u, r, rows);
      total += square.sum() - square.matrix().trace();
      if (r + rows < m) total += 2.0 * kernel(u, r, rows, u, r + rows, m - r - rows).sum();
    }
    return total;
  };
  double cross = 0;
  for (int64_t r = 0; r < m; r += kKernelBlockRows) {
    const int64_t rows = std::min(kKernelBlockRows, m - r);
    cross += kernel(xs, r, rows, ys, 0, m).sum();
  }
  const double within = off_diagonal_sum(xs) + off_diagonal_sum(ys);
  const double md = static_cast<double>(m);
  return within / (md * (md - 1)) - 2.0 * cross / (md * md);
}

Kid kernel_inception_distance(const std::vector<double>& a, int64_t na, const std::vector<double>& b, int64_t nb, int dim,
                              int subsets, int subset_size, uint64_t seed) {
  check_features("kernel_inception_distance (a)", a, na, dim, 2);
  check_features("kernel_inception_distance (b)", b, nb, dim, 2);
  if (subsets < 1) invalid("kernel_inception_distance: subsets must be at least 1");
  if (subset_size < 2) invalid("kernel_inception_distance: subset_size must be at least 2");
  const int64_t m = std::min<int64_t>({subset_size, na, nb});
  Rng rng(seed);
  std::vector<double> x(static_cast<size_t>(m) * dim), y(x.size()), values;
  auto gather = [&](const std::vector<double>& from, int64_t n, std::vector<double>& to) {
    const std::vector<int64_t> rows = draw_without_replacement(n, m, rng);
    for (int64_t i = 0; i < m; ++i)
      std::copy_n(from.begin() + rows[i] * dim, dim, to.begin() + i * dim);
  };
  for (int s = 0; s < subsets; ++s) {
    gather(a, na, x);
    gather(b, nb, y);
    values.push_back(polynomial_mmd2_unbiased(x.data(), y.data(), m, dim));
  }
  Kid kid;
  for (double v : values) kid.mean += v;
  kid.mean /= static_cast<double>(values.size());
  double var = 0;
  for (double v : values) var += (v - kid.mean) * (v - kid.mean);
  kid.stddev = std::sqrt(var / static_cast<double>(values.size()));
  return kid;
}

void save_feature_stats(const std::string& path, const FeatureStats& stats,
                        const std::map<std::string, std::string>& metadata) {
  check_stats(stats, "save_feature_stats: the stats");
  if (metadata.count("n")) invalid("save_feature_stats: metadata key \"n\" is reserved for the row count");
  std::map<std::string, std::string> all = metadata;
  all["n"] = std::to_string(stats.n);
  save_safetensors_f64(path, {{"mean", {{stats.dim}, stats.mean}}, {"cov", {{stats.dim, stats.dim}, stats.cov}}}, all);
}

FeatureStats load_feature_stats(const std::string& path, std::map<std::string, std::string>* metadata) {
  std::map<std::string, std::string> meta;
  std::map<std::string, F64Array> arrays = load_safetensors_f64(path, {"mean", "cov"}, &meta);
  F64Array& mean = arrays.at("mean");
  F64Array& cov = arrays.at("cov");
  if (mean.shape.size() != 1 || mean.shape[0] < 1 || mean.shape[0] > std::numeric_limits<int>::max())
    bad_file(path, "tensor \"mean\" must have shape [d] with d ≥ 1");
  const int64_t d = mean.shape[0];
  if (cov.shape != std::vector<int64_t>{d, d})
    bad_file(path, "tensor \"cov\" must have shape [" + std::to_string(d) + ", " + std::to_string(d) +
                       "] to match \"mean\"");
  const auto n_text = meta.find("n");
  if (n_text == meta.end()) bad_file(path, "no metadata \"n\" (the number of feature rows)");
  int64_t n = 0;
  const std::string& text = n_text->second;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (error != std::errc() || end != text.data() + text.size() || n < 2)
    bad_file(path, "metadata \"n\" must be an integer of at least 2");
  for (const F64Array* array : {&mean, &cov})
    for (double v : array->values)
      if (!std::isfinite(v)) bad_file(path, std::string("tensor \"") + (array == &mean ? "mean" : "cov") +
                                                "\" holds a non-finite value");
  const std::string problem = covariance_problem(cov.values, d);
  if (!problem.empty()) bad_file(path, "tensor \"cov\" is not a covariance matrix: " + problem);
  FeatureStats stats;
  stats.n = n;
  stats.dim = static_cast<int>(d);
  stats.mean = std::move(mean.values);
  stats.cov = std::move(cov.values);
  if (metadata) {
    meta.erase("n");
    *metadata = std::move(meta);
  }
  return stats;
}

}  // namespace gancu::eval
