// Reference antialiased bicubic resize against torch.nn.functional.interpolate(mode="bicubic", antialias=True,
// align_corners=False), plus constant and identity invariants.
#include "kernels/cpu/resize.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <utility>
#include <vector>

#include "tests/testing.h"

namespace gancu {
namespace {

using testing::poisoned_vector;
using testing::rel_l2_error;

// A deterministic integer pattern in [−8, 8], the same one the expected values were computed from: element i of the
// flattened NCHW input is ((37·i) mod 17) − 8.
std::vector<double> pattern(int64_t n) {
  std::vector<double> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[size_t(i)] = double((37 * i) % 17 - 8);
  return x;
}

// Expected outputs from Debian's python3-torch 1.13, computed once in float64:
//   i = torch.arange(n*c*h*w, dtype=torch.float64); x = (((i * 37) % 17) - 8).reshape(n, c, h, w)
//   F.interpolate(x, size=(out_h, out_w), mode="bicubic", antialias=True, align_corners=False).reshape(-1).tolist()
struct TorchResizeCase {
  int batch, channels, in_h, in_w, out_h, out_w;
  std::vector<double> expected;
};
const TorchResizeCase kDownsample2 = {
    1, 2, 8, 8, 4, 4,
    {-2.6975718212216173, 1.6454984572139384,  0.8444290076089245,   -1.4340960417359643,  -0.7892441156039478,
     -0.018425485606952785, 1.0995512887404777, 0.11303533060855227,  -0.7628955913474739,  -1.4797334565674332,
     1.4565674334014103,  0.7397295681814509,   0.18417044519528736,  -1.7496970969774315,  0.6745125280690136,
     1.1976506013550183,  0.8497750389523995,   -0.1969596613948088,  -2.287701329542334,   1.962062989093328,
     0.15855963554708324, -0.012924673156333624, -1.0498203664226828, -0.34280544740795776, 1.3746143034845961,
     0.45458475574305685, -0.5093245479345864,  -1.7363047446729456,  0.8717459428231296,   0.5270512592688328,
     0.34472787192452464, -1.6828661963200922}};
const TorchResizeCase kDownsample4 = {
    1, 1, 8, 8, 2, 2, {-0.3599926015838495, 0.4166258972894993, -0.7591449163401486, 0.7720610908686765}};
const TorchResizeCase kShrink7x5To3x4 = {
    1, 1, 7, 5, 3, 4,
    {0.24184502191189725, -4.013881622601059, -2.011918129848917, 2.170011525523673, 4.397474196394014,
     2.512178617795705, -4.697166098669262, -2.606689483714826, -1.170011525523675, 3.011918129848917,
     5.222536622090651, -4.5256526662824825}};
const TorchResizeCase kEnlarge3x3To5x5 = {
    1, 1, 3, 3, 5, 5,
    {-8.905660377358492, -7.761334835257678, -5.6792452830188696, -3.597155730780062, -2.452830188679247,
     -4.711489721205297, -3.567164179104481, -1.4850746268656727, 0.5970149253731353, 1.7413404674739508,
     0.7735849056603767, 1.9179104477611935, 4.0, 6.082089552238807, 7.226415094339623,
     -4.017459870459026, -2.873134328358211, -0.7910447761194033, 1.2910447761194037, 2.4353703182202193,
     -7.830188679245284, -6.685863137144469, -4.60377358490566, -2.5216840326668533, -1.3773584905660379}};

template <class T> std::vector<T> run_resize(const TorchResizeCase& c) {
  const std::vector<double> xd = pattern(int64_t(c.batch) * c.channels * c.in_h * c.in_w);
  const std::vector<T> x(xd.begin(), xd.end());
  auto y = poisoned_vector<T>(int64_t(c.batch) * c.channels * c.out_h * c.out_w);
  ref::resize_bicubic(c.batch, c.channels, c.in_h, c.in_w, c.out_h, c.out_w, x.data(), y.data());
  return y;
}

// Relative L2 tolerances: double 1e-12 (torch sums the same taps in another order), float 1e-6 (fp32 output
// rounding of values of size ~1–8; the inputs are small integers, exact in fp32).
TEST(ResizeRef, DownsampleBy2MatchesTorch) {
  const std::vector<double> x = pattern(2 * 8 * 8);
  auto y = poisoned_vector<double>(2 * 4 * 4);
  ref::bicubic_downsample(1, 2, 8, 8, 2, x.data(), y.data());
  EXPECT_LE(rel_l2_error(y, kDownsample2.expected), 1e-12);
  EXPECT_LE(rel_l2_error(run_resize<float>(kDownsample2), kDownsample2.expected), 1e-6);
}

TEST(ResizeRef, DownsampleBy4MatchesTorch) {
  const std::vector<double> xd = pattern(64);
  const std::vector<float> xf(xd.begin(), xd.end());
  auto y = poisoned_vector<float>(4);
  ref::bicubic_downsample(1, 1, 8, 8, 4, xf.data(), y.data());
  EXPECT_LE(rel_l2_error(y, kDownsample4.expected), 1e-6);
  EXPECT_LE(rel_l2_error(run_resize<double>(kDownsample4), kDownsample4.expected), 1e-12);
}

TEST(ResizeRef, NonIntegerShrinkMatchesTorch) {
  EXPECT_LE(rel_l2_error(run_resize<double>(kShrink7x5To3x4), kShrink7x5To3x4.expected), 1e-12);
  EXPECT_LE(rel_l2_error(run_resize<float>(kShrink7x5To3x4), kShrink7x5To3x4.expected), 1e-6);
}

TEST(ResizeRef, EnlargementMatchesTorch) {
  EXPECT_LE(rel_l2_error(run_resize<double>(kEnlarge3x3To5x5), kEnlarge3x3To5x5.expected), 1e-12);
  EXPECT_LE(rel_l2_error(run_resize<float>(kEnlarge3x3To5x5), kEnlarge3x3To5x5.expected), 1e-6);
}

// The weights of every output are normalised to sum to 1, so a constant image stays constant (to rounding, 1e-6
// relative in fp32), whether shrinking, enlarging or both at once.
TEST(ResizeRef, ConstantImageStaysConstant) {
  const int in_h = 9, in_w = 6;
  const std::vector<float> x(2 * 3 * in_h * in_w, 0.625f);
  for (auto [out_h, out_w] : {std::pair{3, 2}, std::pair{4, 5}, std::pair{13, 11}, std::pair{2, 17}}) {
    auto y = poisoned_vector<float>(2 * 3 * out_h * out_w);
    ref::resize_bicubic(2, 3, in_h, in_w, out_h, out_w, x.data(), y.data());
    for (float v : y) ASSERT_NEAR(v, 0.625f, 0.625f * 1e-6f) << out_h << "x" << out_w;
  }
}

// At scale 1 the cubic kernel samples only its integer points (1 at 0, 0 elsewhere): the identity, exactly.
TEST(ResizeRef, SameSizeIsIdentity) {
  const std::vector<double> x = testing::random_vector<double>(2 * 5 * 7, 3);
  auto y = poisoned_vector<double>(2 * 5 * 7);
  ref::resize_bicubic(2, 1, 5, 7, 5, 7, x.data(), y.data());
  EXPECT_EQ(y, x);
}

TEST(ResizeRef, DownsampleRejectsIndivisibleSizes) {
  const std::vector<float> x(7 * 8);
  std::vector<float> y(16);
  EXPECT_THROW(ref::bicubic_downsample(1, 1, 7, 8, 2, x.data(), y.data()), std::invalid_argument);
}

}  // namespace
}  // namespace gancu
