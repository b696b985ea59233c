// FID and KID between two sets of features (row-major [n × d] doubles, one row per image), in double throughout.
// The formulas are those of pytorch-fid (Heusel et al. 2017) and torch-fidelity/clean-fid (KID, Bińkowski et al. 2018),
// so numbers computed in another feature space by those tools are computed here the same way; tests/fid_against_scipy.py
// checks them against SciPy and NumPy.
#pragma once
#include <complex>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gancu::eval {

// Mean and covariance of a feature set in double (covariance unbiased, 1/(n − 1), as numpy.cov(rowvar=False)).
struct FeatureStats {
  int64_t n = 0;
  int dim = 0;
  std::vector<double> mean;  // dim
  std::vector<double> cov;   // dim × dim, row-major, symmetric
};
// n ≥ 2, dim ≥ 1, features.size() == n · dim and every value finite; otherwise std::invalid_argument.
FeatureStats feature_stats(const std::vector<double>& features, int64_t n, int dim);

// Fréchet distance ‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½), the matrix square root as scipy.linalg.sqrtm takes it
// (matrix_sqrt), with pytorch-fid's safeguards: when the square root is not finite (a singular product), it is taken again of
// (Σ1 + εI)(Σ2 + εI) with ε = 1e-6; its imaginary part must be negligible (every diagonal entry within 1e-3 of 0,
// else std::runtime_error) and only the real part counts. Throws std::invalid_argument for mismatched or malformed
// stats.
double frechet_distance(const FeatureStats& a, const FeatureStats& b);

// The principal square root of a real dim × dim matrix (row-major), as scipy.linalg.sqrtm computes it: Eigen's complex
// Schur decomposition, then the Björck–Hammarling recurrence on the triangular factor with SciPy's convention for
// exactly singular matrices (0/0 → 0). Complex arithmetic throughout, so a product with slightly negative or complex
// eigenvalues (rounding in a near-singular Σ1 Σ2) gets SciPy's answer rather than NaN. Row-major result; all NaN where
// SciPy fails too (a nonzero entry over a zero pair of eigenvalues).
std::vector<std::complex<double>> matrix_sqrt(const std::vector<double>& matrix, int dim);

// KID (Bińkowski et al. 2018): the unbiased MMD² with the cubic polynomial kernel k(x, y) = (x·y / d + 1)³, averaged
// over `subsets` random subsets of `subset_size` rows of each set (drawn without replacement with the given seed;
// subset_size is clipped to the smaller set), as torch-fidelity/clean-fid do. Per subset of m rows:
//   MMD² = Σ_{i≠j} k(x_i, x_j) / (m(m − 1)) + Σ_{i≠j} k(y_i, y_j) / (m(m − 1)) − 2 Σ_{i,j} k(x_i, y_j) / m².
// Mean and standard deviation (population, as numpy.std) over the subsets. Needs at least 2 rows in each set and
// subsets ≥ 1, else std::invalid_argument.
struct Kid {
  double mean = 0, stddev = 0;
};
Kid kernel_inception_distance(const std::vector<double>& a, int64_t na, const std::vector<double>& b, int64_t nb, int dim,
                              int subsets = 100, int subset_size = 1000, uint64_t seed = 1);
// The MMD² above of two sets of m rows each (m ≥ 2): one subset's term of the KID.
double polynomial_mmd2_unbiased(const double* x, const double* y, int64_t m, int dim);

// Stats saved and loaded as safetensors (float64 "mean" [d], "cov" [d, d], metadata "n"), so a reference set's stats
// are computed once per classifier. `metadata` may not use the key "n" (std::invalid_argument). Loading a bad file
// (unreadable, truncated, missing or misshapen tensors, n < 2, non-finite values) throws
// std::runtime_error("<path>: ..."); `metadata`, when given, receives the file's metadata other than "n".
void save_feature_stats(const std::string& path, const FeatureStats& stats,
                        const std::map<std::string, std::string>& metadata);
FeatureStats load_feature_stats(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

}  // namespace gancu::eval
