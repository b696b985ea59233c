// gancu's side of tests/fid_against_scipy.py: reads two feature sets from .npy files ([n, d] float32, the values
// taken as doubles on both sides) and prints, as one JSON object, everything the script compares with SciPy/NumPy:
// both sets' stats, the covariance product Σa Σb and gancu's square root of it, the FID, and the KID of the whole sets
// (one subset of every row, so no random draw is involved; the sets must then have equal sizes).
//   gancu_fid_oracle a.npy b.npy
#include <complex>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/npy.h"
#include "tools/eval/fid.h"

namespace {

struct Features {
  std::vector<double> values;
  int64_t n = 0;
  int dim = 0;
};

Features read_features(const char* path) {
  const gancu::Tensor t = gancu::read_npy(path);
  if (t.shape().rank() != 2) throw std::runtime_error(std::string(path) + ": expected [n, d] features");
  return {std::vector<double>(t.data(), t.data() + t.numel()), t.dim(0), static_cast<int>(t.dim(1))};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s a.npy b.npy\n", argv[0]);
    return 2;
  }
  try {
    const Features a = read_features(argv[1]), b = read_features(argv[2]);
    const gancu::eval::FeatureStats sa = gancu::eval::feature_stats(a.values, a.n, a.dim);
    const gancu::eval::FeatureStats sb = gancu::eval::feature_stats(b.values, b.n, b.dim);
    // The product by a plain double loop, so the script takes the square root of exactly the matrix gancu did.
    const int d = a.dim;
    std::vector<double> product(static_cast<size_t>(d) * d, 0.0);
    for (int i = 0; i < d; ++i)
      for (int k = 0; k < d; ++k)
        for (int j = 0; j < d; ++j) product[i * d + j] += sa.cov[i * d + k] * sb.cov[k * d + j];
    const std::vector<std::complex<double>> root = gancu::eval::matrix_sqrt(product, d);
    std::vector<double> root_re, root_im;
    for (const std::complex<double>& v : root) root_re.push_back(v.real()), root_im.push_back(v.imag());
    nlohmann::json out = {{"mean_a", sa.mean}, {"cov_a", sa.cov},       {"mean_b", sb.mean},
                          {"cov_b", sb.cov},   {"product", product},    {"sqrt_re", root_re},
                          {"sqrt_im", root_im}, {"fid", gancu::eval::frechet_distance(sa, sb)}};
    if (a.n == b.n) {
      const gancu::eval::Kid kid =
          gancu::eval::kernel_inception_distance(a.values, a.n, b.values, b.n, d, 1, static_cast<int>(a.n), 7);
      out["kid_mean"] = kid.mean;
      out["kid_stddev"] = kid.stddev;
    }
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gancu_fid_oracle: %s\n", e.what());
    return 1;
  }
  return 0;
}
