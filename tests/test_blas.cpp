// The OpenBLAS paths (gancu::blas) against the fp64-accumulated references (gancu::ref<double> on the same float
// inputs), at DCGAN-like shapes and at odd ones that exercise every branch: im2col/col2im (1×1 windows included),
// batches cut into several GEMM chunks, and dense windows (the kernel covers the whole unpadded map, e.g. 1×1 → 4×4).
// Tolerance everywhere: relative L2 ≤ 1e-5 (fp32 with OpenBLAS's fp32 accumulation vs fp64 accumulation).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv_transpose2d.h"
#include "kernels/cpu/linear.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using testing::poisoned_vector;
using testing::random_vector;
using testing::rel_l2_error;

constexpr double kFp32Tol = 1e-5;

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Exactly the advertised number of scratch floats, NaN-filled (a kernel must not read scratch it did not write),
// followed by a NaN guard band that must stay untouched (a kernel must not use more than it asked for).
class GuardedScratch {
 public:
  explicit GuardedScratch(int64_t floats) : size_(floats), buffer_(poisoned_vector<float>(floats + kGuard)) {}
  float* data() { return buffer_.data(); }
  bool guard_intact() const {
    for (int64_t i = size_; i < size_ + kGuard; ++i)
      if (!std::isnan(buffer_[size_t(i)])) return false;
    return true;
  }

 private:
  static constexpr int64_t kGuard = 64;
  int64_t size_;
  std::vector<float> buffer_;
};

struct ConvCase {
  Conv2dParams params;
  bool with_bias;
};

std::string describe(const Conv2dParams& p) {
  return "batch " + std::to_string(p.batch) + ", " + std::to_string(p.in_channels) + "→" +
         std::to_string(p.out_channels) + " channels, " + std::to_string(p.in_h) + "x" + std::to_string(p.in_w) +
         ", kernel " + std::to_string(p.kernel) + ", stride " + std::to_string(p.stride) + ", pad " +
         std::to_string(p.pad);
}

TEST(Conv2dBlas, MatchesReference) {
  const std::vector<ConvCase> cases = {
      // DCGAN discriminator: 4x4 stride-2 pad-1 downsampling, and the last layer 4x4 → 1x1 (dense window).
      {{.batch = 4, .in_channels = 3, .in_h = 16, .in_w = 16, .out_channels = 16, .kernel = 4, .stride = 2, .pad = 1}, false},
      {{.batch = 4, .in_channels = 32, .in_h = 16, .in_w = 16, .out_channels = 64, .kernel = 4, .stride = 2, .pad = 1}, true},
      {{.batch = 4, .in_channels = 64, .in_h = 4, .in_w = 4, .out_channels = 1, .kernel = 4, .stride = 1, .pad = 0}, true},
      // Odd shapes.
      {{.batch = 1, .in_channels = 3, .in_h = 7, .in_w = 5, .out_channels = 5, .kernel = 3, .stride = 1, .pad = 1}, true},
      {{.batch = 3, .in_channels = 5, .in_h = 9, .in_w = 7, .out_channels = 7, .kernel = 3, .stride = 2, .pad = 0}, false},
      {{.batch = 3, .in_channels = 5, .in_h = 6, .in_w = 7, .out_channels = 7, .kernel = 1, .stride = 1, .pad = 0}, true},
      {{.batch = 2, .in_channels = 3, .in_h = 5, .in_w = 6, .out_channels = 4, .kernel = 1, .stride = 2, .pad = 0}, false},
      {{.batch = 2, .in_channels = 7, .in_h = 1, .in_w = 1, .out_channels = 3, .kernel = 3, .stride = 1, .pad = 1}, true},
      {{.batch = 2, .in_channels = 5, .in_h = 1, .in_w = 1, .out_channels = 3, .kernel = 1, .stride = 1, .pad = 0}, true},
      {{.batch = 2, .in_channels = 3, .in_h = 11, .in_w = 10, .out_channels = 5, .kernel = 9, .stride = 2, .pad = 1}, true},
      // More images than one GEMM chunk holds (1M column floats each): several chunks, the last one partial.
      {{.batch = 11, .in_channels = 64, .in_h = 64, .in_w = 64, .out_channels = 2, .kernel = 4, .stride = 2, .pad = 1}, true},
      // Stride 1, fewer output than input channels: the window slides over the output (the flipped transposed
      // convolution). SRResNet's closing 9x9 convolution to RGB, several chunks of it, and every pad from 0 to k − 1.
      {{.batch = 3, .in_channels = 64, .in_h = 24, .in_w = 20, .out_channels = 3, .kernel = 9, .stride = 1, .pad = 4}, true},
      {{.batch = 13, .in_channels = 16, .in_h = 96, .in_w = 96, .out_channels = 3, .kernel = 9, .stride = 1, .pad = 4}, true},
      {{.batch = 2, .in_channels = 6, .in_h = 7, .in_w = 9, .out_channels = 5, .kernel = 3, .stride = 1, .pad = 0}, false},
      {{.batch = 2, .in_channels = 6, .in_h = 7, .in_w = 9, .out_channels = 5, .kernel = 4, .stride = 1, .pad = 1}, true},
      {{.batch = 2, .in_channels = 6, .in_h = 3, .in_w = 2, .out_channels = 1, .kernel = 5, .stride = 1, .pad = 4}, true},
  };
  uint64_t seed = 500;
  for (const ConvCase& c : cases) {
    const Conv2dParams& p = c.params;
    SCOPED_TRACE(describe(p) + (c.with_bias ? ", bias" : ", no bias"));
    const auto x = random_vector<float>(p.x_size(), ++seed);
    const auto w = random_vector<float>(p.w_size(), ++seed, 0.1);
    const auto b = random_vector<float>(p.out_channels, ++seed);
    const auto dy = random_vector<float>(p.y_size(), ++seed);
    const auto xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
    const float* bias = c.with_bias ? b.data() : nullptr;
    const double* bias_d = c.with_bias ? bd.data() : nullptr;

    std::vector<double> y_ref(size_t(p.y_size())), dx_ref(size_t(p.x_size())), dw_ref(size_t(p.w_size()));
    ref::conv2d_forward<double>(p, xd.data(), wd.data(), bias_d, y_ref.data());
    ref::conv2d_backward_input<double>(p, dyd.data(), wd.data(), dx_ref.data());
    ref::conv2d_backward_weight<double>(p, xd.data(), dyd.data(), dw_ref.data());

    auto y = poisoned_vector<float>(p.y_size());
    auto dx = poisoned_vector<float>(p.x_size());
    auto dw = poisoned_vector<float>(p.w_size());
    GuardedScratch forward_scratch(blas::conv_scratch_floats(p));
    blas::conv2d_forward(p, x.data(), w.data(), bias, y.data(), forward_scratch.data());
    GuardedScratch input_scratch(blas::conv_scratch_floats(p));
    blas::conv2d_backward_input(p, dy.data(), w.data(), dx.data(), input_scratch.data());
    GuardedScratch weight_scratch(blas::conv_scratch_floats(p));
    blas::conv2d_backward_weight(p, x.data(), dy.data(), dw.data(), weight_scratch.data());

    EXPECT_LE(rel_l2_error(y, y_ref), kFp32Tol) << "forward";
    EXPECT_LE(rel_l2_error(dx, dx_ref), kFp32Tol) << "backward_input";
    EXPECT_LE(rel_l2_error(dw, dw_ref), kFp32Tol) << "backward_weight";
    EXPECT_TRUE(forward_scratch.guard_intact() && input_scratch.guard_intact() && weight_scratch.guard_intact());
  }
}

struct ConvTransposeCase {
  ConvTranspose2dParams params;
  bool with_bias;
};

std::string describe(const ConvTranspose2dParams& p) {
  return "batch " + std::to_string(p.batch) + ", " + std::to_string(p.in_channels) + "→" +
         std::to_string(p.out_channels) + " channels, " + std::to_string(p.in_h) + "x" + std::to_string(p.in_w) + "→" +
         std::to_string(p.out_h()) + "x" + std::to_string(p.out_w()) + ", kernel " + std::to_string(p.kernel) +
         ", stride " + std::to_string(p.stride) + ", pad " + std::to_string(p.pad) + ", output_pad " +
         std::to_string(p.output_pad);
}

TEST(ConvTranspose2dBlas, MatchesReference) {
  const std::vector<ConvTransposeCase> cases = {
      // DCGAN generator: first layer 1x1 → 4x4 (dense window), 8x8 → 16x16 upsampling, and the last layer to RGB.
      {{.batch = 4, .in_channels = 100, .in_h = 1, .in_w = 1, .out_channels = 64, .kernel = 4, .stride = 1, .pad = 0}, false},
      {{.batch = 4, .in_channels = 64, .in_h = 8, .in_w = 8, .out_channels = 32, .kernel = 4, .stride = 2, .pad = 1}, true},
      {{.batch = 4, .in_channels = 16, .in_h = 16, .in_w = 16, .out_channels = 3, .kernel = 4, .stride = 2, .pad = 1}, false},
      // Odd shapes.
      {{.batch = 1, .in_channels = 3, .in_h = 5, .in_w = 7, .out_channels = 5, .kernel = 3, .stride = 1, .pad = 1}, true},
      {{.batch = 2, .in_channels = 7, .in_h = 3, .in_w = 4, .out_channels = 3, .kernel = 3, .stride = 2, .pad = 1,
        .output_pad = 1}, true},
      {{.batch = 1, .in_channels = 5, .in_h = 1, .in_w = 1, .out_channels = 7, .kernel = 3, .stride = 2, .pad = 1}, true},
      {{.batch = 2, .in_channels = 3, .in_h = 6, .in_w = 5, .out_channels = 5, .kernel = 1, .stride = 1, .pad = 0}, true},
      {{.batch = 3, .in_channels = 5, .in_h = 4, .in_w = 4, .out_channels = 3, .kernel = 1, .stride = 2, .pad = 0,
        .output_pad = 1}, false},
      {{.batch = 2, .in_channels = 7, .in_h = 1, .in_w = 1, .out_channels = 5, .kernel = 1, .stride = 1, .pad = 0}, true},
      {{.batch = 2, .in_channels = 3, .in_h = 3, .in_w = 3, .out_channels = 2, .kernel = 9, .stride = 2, .pad = 1}, true},
      // More images than one GEMM chunk holds (1M column floats each): several chunks, the last one partial.
      {{.batch = 11, .in_channels = 2, .in_h = 32, .in_w = 32, .out_channels = 64, .kernel = 4, .stride = 2, .pad = 1}, true},
  };
  uint64_t seed = 600;
  for (const ConvTransposeCase& c : cases) {
    const ConvTranspose2dParams& p = c.params;
    SCOPED_TRACE(describe(p) + (c.with_bias ? ", bias" : ", no bias"));
    const auto x = random_vector<float>(p.x_size(), ++seed);
    const auto w = random_vector<float>(p.w_size(), ++seed, 0.1);
    const auto b = random_vector<float>(p.out_channels, ++seed);
    const auto dy = random_vector<float>(p.y_size(), ++seed);
    const auto xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
    const float* bias = c.with_bias ? b.data() : nullptr;
    const double* bias_d = c.with_bias ? bd.data() : nullptr;

    std::vector<double> y_ref(size_t(p.y_size())), dx_ref(size_t(p.x_size())), dw_ref(size_t(p.w_size()));
    ref::conv_transpose2d_forward<double>(p, xd.data(), wd.data(), bias_d, y_ref.data());
    ref::conv_transpose2d_backward_input<double>(p, dyd.data(), wd.data(), dx_ref.data());
    ref::conv_transpose2d_backward_weight<double>(p, xd.data(), dyd.data(), dw_ref.data());

    auto y = poisoned_vector<float>(p.y_size());
    auto dx = poisoned_vector<float>(p.x_size());
    auto dw = poisoned_vector<float>(p.w_size());
    GuardedScratch forward_scratch(blas::conv_scratch_floats(p));
    blas::conv_transpose2d_forward(p, x.data(), w.data(), bias, y.data(), forward_scratch.data());
    GuardedScratch input_scratch(blas::conv_scratch_floats(p));
    blas::conv_transpose2d_backward_input(p, dy.data(), w.data(), dx.data(), input_scratch.data());
    GuardedScratch weight_scratch(blas::conv_scratch_floats(p));
    blas::conv_transpose2d_backward_weight(p, x.data(), dy.data(), dw.data(), weight_scratch.data());

    EXPECT_LE(rel_l2_error(y, y_ref), kFp32Tol) << "forward";
    EXPECT_LE(rel_l2_error(dx, dx_ref), kFp32Tol) << "backward_input";
    EXPECT_LE(rel_l2_error(dw, dw_ref), kFp32Tol) << "backward_weight";
    EXPECT_TRUE(forward_scratch.guard_intact() && input_scratch.guard_intact() && weight_scratch.guard_intact());
  }
}

TEST(LinearBlas, MatchesReference) {
  struct LinearCase {
    LinearParams params;
    bool with_bias;
  };
  const std::vector<LinearCase> cases = {
      {{.batch = 4, .in_features = 100, .out_features = 256}, true},  // a generator's projection of z
      {{.batch = 64, .in_features = 128, .out_features = 1}, true},   // a discriminator's logit
      {{.batch = 1, .in_features = 7, .out_features = 3}, false},
      {{.batch = 5, .in_features = 3, .out_features = 5}, true},
      {{.batch = 3, .in_features = 1, .out_features = 1}, false},
  };
  uint64_t seed = 700;
  for (const LinearCase& c : cases) {
    const LinearParams& p = c.params;
    SCOPED_TRACE("batch " + std::to_string(p.batch) + ", " + std::to_string(p.in_features) + "→" +
                 std::to_string(p.out_features) + (c.with_bias ? ", bias" : ", no bias"));
    const int64_t x_size = int64_t(p.batch) * p.in_features, y_size = int64_t(p.batch) * p.out_features;
    const int64_t w_size = int64_t(p.out_features) * p.in_features;
    const auto x = random_vector<float>(x_size, ++seed);
    const auto w = random_vector<float>(w_size, ++seed, 0.1);
    const auto b = random_vector<float>(p.out_features, ++seed);
    const auto dy = random_vector<float>(y_size, ++seed);
    const auto xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);

    std::vector<double> y_ref(static_cast<size_t>(y_size)), dx_ref(static_cast<size_t>(x_size)),
        dw_ref(static_cast<size_t>(w_size));
    ref::linear_forward<double>(p, xd.data(), wd.data(), c.with_bias ? bd.data() : nullptr, y_ref.data());
    ref::linear_backward_input<double>(p, dyd.data(), wd.data(), dx_ref.data());
    ref::linear_backward_weight<double>(p, xd.data(), dyd.data(), dw_ref.data());

    auto y = poisoned_vector<float>(y_size);
    auto dx = poisoned_vector<float>(x_size);
    auto dw = poisoned_vector<float>(w_size);
    blas::linear_forward(p, x.data(), w.data(), c.with_bias ? b.data() : nullptr, y.data());
    blas::linear_backward_input(p, dy.data(), w.data(), dx.data());
    blas::linear_backward_weight(p, x.data(), dy.data(), dw.data());
    EXPECT_LE(rel_l2_error(y, y_ref), kFp32Tol) << "forward";
    EXPECT_LE(rel_l2_error(dx, dx_ref), kFp32Tol) << "backward_input";
    EXPECT_LE(rel_l2_error(dw, dw_ref), kFp32Tol) << "backward_weight";
  }
}

// The scratch contract the engine plans with: the images of a batch share GEMMs in chunks; the scratch holds one
// chunk's column matrix [Cin·k·k (conv2d) or Cout·k·k (transposed), grid·chunk] and the larger of its two tensors
// (conv2d: x and y; transposed: y and x) held images innermost. Small batches fit in one chunk; dense windows need no
// scratch.
TEST(ConvBlas, ScratchIsOneChunksMatrices) {
  const Conv2dParams conv{.batch = 8, .in_channels = 32, .in_h = 16, .in_w = 16, .out_channels = 64, .kernel = 4,
                          .stride = 2, .pad = 1};
  EXPECT_EQ(blas::conv_scratch_floats(conv), int64_t(8) * (32 * 4 * 4 * 8 * 8 + 32 * 16 * 16));
  const ConvTranspose2dParams transposed{.batch = 8, .in_channels = 64, .in_h = 8, .in_w = 8, .out_channels = 32,
                                         .kernel = 4, .stride = 2, .pad = 1};
  EXPECT_EQ(blas::conv_scratch_floats(transposed), int64_t(8) * (32 * 4 * 4 * 8 * 8 + 32 * 16 * 16));
  const Conv2dParams dense{.batch = 8, .in_channels = 64, .in_h = 4, .in_w = 4, .out_channels = 1, .kernel = 4};
  EXPECT_EQ(blas::conv_scratch_floats(dense), 0);
  // A large layer is cut into chunks: the scratch stays bounded (tens of MB) whatever the batch.
  const Conv2dParams large{.batch = 4096, .in_channels = 64, .in_h = 32, .in_w = 32, .out_channels = 128,
                           .kernel = 4, .stride = 2, .pad = 1};
  EXPECT_LE(blas::conv_scratch_floats(large) * int64_t(sizeof(float)), int64_t(64) << 20);
}


// The test binaries start as `gan` does (tests/main.cpp): on a CPU with AVX2 and FMA, OpenBLAS must not be left on a
// pre-AVX fallback (Debian's 0.3.21 picks Prescott on CPUs newer than itself, 3-4.5x slower GEMMs).
TEST(OpenBlasCore, RunsAvxKernelsOnAnAvxCpu) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) GTEST_SKIP() << "this CPU has no AVX2/FMA";
  const char* chosen = std::getenv("OPENBLAS_CORETYPE");
  if (chosen != nullptr && blas::openblas_runs_fallback_kernels())
    GTEST_SKIP() << "OPENBLAS_CORETYPE=" << chosen << " was chosen outside";
  EXPECT_FALSE(blas::openblas_runs_fallback_kernels()) << "OpenBLAS runs its " << blas::openblas_core() << " kernels";
}

}  // namespace
}  // namespace gancu
