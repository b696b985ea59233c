// GPU tests: elementwise kernels (kernels/cuda/elementwise.h) and the cuBLAS linear layer (kernels/cuda/linear.h)
// against the reference. Tests whose name contains "Small" use tiny sizes; gpu_check.sh runs those under the sanitizers.
#include <cublas_v2.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/philox.h"
#include "kernels/cpu/activations.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/linear.h"
#include "kernels/cuda/activations.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/linear.h"
#include "tests/gpu/gpu_test.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using testing::poisoned_vector;
using testing::random_vector;
using testing::close_rel_l2;

// One fp32 operation per element (or a libm-grade tanhf/expf) against fp64: a few ulps, well inside 1e-5.
constexpr double kTol = 1e-5;

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// Runs a GPU kernel writing n floats and returns them.
template <class F> std::vector<float> gpu_output(int64_t n, F&& launch) {
  DeviceArray<float> out(poisoned_vector<float>(n));
  launch(out.get());
  GANCU_CUDA_CHECK(cudaDeviceSynchronize());
  return out.to_host();
}

void check_activations(int batch, int channels, int spatial, uint64_t seed) {
  SCOPED_TRACE(std::to_string(batch) + "x" + std::to_string(channels) + "x" + std::to_string(spatial));
  const int64_t n = int64_t(batch) * channels * spatial;
  const std::vector<float> x = random_vector<float>(n, seed, 2.0), dy = random_vector<float>(n, seed + 1);
  std::vector<float> slope = random_vector<float>(channels, seed + 2, 0.05);
  for (auto& s : slope) s += 0.25f;
  const std::vector<double> xd = to_double(x), dyd = to_double(dy), sd = to_double(slope);
  DeviceArray<float> d_x(x), d_dy(dy), d_slope(slope);
  std::vector<double> r(n), r2(n);

  const std::vector<int64_t> shape{batch, channels, spatial};
  // One kernel's n outputs against the reference in r (each check names its op: the lambda's line is the same).
  auto expect_close = [&](const char* op, const std::vector<float>& got, const std::vector<double>& want) {
    EXPECT_TRUE(close_rel_l2(got, want, kTol, shape)) << op;
  };

  ref::relu_forward<double>(n, xd.data(), r.data());
  expect_close("relu", gpu_output(n, [&](float* o) { cuda::relu_forward(n, d_x.get(), o, nullptr); }), r);
  ref::relu_backward<double>(n, xd.data(), dyd.data(), r.data());
  expect_close("relu backward",
               gpu_output(n, [&](float* o) { cuda::relu_backward(n, d_x.get(), d_dy.get(), o, nullptr); }), r);
  ref::leaky_relu_forward<double>(n, 0.2, xd.data(), r.data());
  expect_close("leaky relu",
               gpu_output(n, [&](float* o) { cuda::leaky_relu_forward(n, 0.2f, d_x.get(), o, nullptr); }), r);
  ref::leaky_relu_backward<double>(n, double(0.2f), xd.data(), dyd.data(), r.data());
  expect_close("leaky relu backward", gpu_output(n, [&](float* o) {
                 cuda::leaky_relu_backward(n, 0.2f, d_x.get(), d_dy.get(), o, nullptr);
               }), r);
  ref::prelu_forward<double>(batch, channels, spatial, xd.data(), sd.data(), r.data());
  expect_close("prelu", gpu_output(n, [&](float* o) {
                 cuda::prelu_forward(batch, channels, spatial, d_x.get(), d_slope.get(), o, nullptr);
               }), r);
  std::vector<double> dslope(channels);
  ref::prelu_backward<double>(batch, channels, spatial, xd.data(), sd.data(), dyd.data(), r.data(), dslope.data());
  DeviceArray<float> d_dslope(poisoned_vector<float>(channels));
  expect_close("prelu backward", gpu_output(n, [&](float* o) {
                 cuda::prelu_backward(batch, channels, spatial, d_x.get(), d_slope.get(), d_dy.get(), o,
                                      d_dslope.get(), nullptr);
               }), r);
  EXPECT_TRUE(close_rel_l2(d_dslope.to_host(), dslope, kTol, {channels})) << "prelu dslope (a per-channel sum)";

  // tanh / sigmoid: backward takes the forward output y.
  ref::tanh_forward<double>(n, xd.data(), r.data());
  const std::vector<float> y_tanh = gpu_output(n, [&](float* o) { cuda::tanh_forward(n, d_x.get(), o, nullptr); });
  expect_close("tanh", y_tanh, r);
  ref::sigmoid_forward<double>(n, xd.data(), r2.data());
  const std::vector<float> y_sig = gpu_output(n, [&](float* o) { cuda::sigmoid_forward(n, d_x.get(), o, nullptr); });
  expect_close("sigmoid", y_sig, r2);
  DeviceArray<float> d_tanh(y_tanh), d_sig(y_sig);
  const std::vector<double> tanh_d = to_double(y_tanh), sig_d = to_double(y_sig);
  ref::tanh_backward<double>(n, tanh_d.data(), dyd.data(), r.data());
  expect_close("tanh backward",
               gpu_output(n, [&](float* o) { cuda::tanh_backward(n, d_tanh.get(), d_dy.get(), o, nullptr); }), r);
  ref::sigmoid_backward<double>(n, sig_d.data(), dyd.data(), r.data());
  expect_close("sigmoid backward",
               gpu_output(n, [&](float* o) { cuda::sigmoid_backward(n, d_sig.get(), d_dy.get(), o, nullptr); }), r);

  // add, scale.
  ref::add_forward<double>(n, xd.data(), dyd.data(), r.data());
  expect_close("add", gpu_output(n, [&](float* o) { cuda::add_forward(n, d_x.get(), d_dy.get(), o, nullptr); }), r);
  ref::scale<double>(n, double(-0.37f), xd.data(), r.data());
  expect_close("scale", gpu_output(n, [&](float* o) { cuda::scale(n, -0.37f, d_x.get(), o, nullptr); }), r);
}

TEST(ElementwiseCuda, SmallActivations) {
  GANCU_REQUIRE_GPU();
  check_activations(1, 1, 1, 10);
  check_activations(3, 5, 7, 20);
  check_activations(2, 64, 9, 30);
}

// DCGAN-64 generator 64x32x32 at batch 128, SRGAN 64x96x96 at batch 16.
TEST(ElementwiseCuda, ModelActivations) {
  GANCU_REQUIRE_GPU();
  check_activations(128, 64, 1024, 40);
  check_activations(16, 64, 9216, 50);
}

// A permutation: exact equality.
void check_pixel_shuffle(int batch, int channels, int h, int w, int r, uint64_t seed) {
  SCOPED_TRACE("pixel_shuffle " + std::to_string(batch) + "x" + std::to_string(channels) + "x" + std::to_string(h) +
               "x" + std::to_string(w) + " r" + std::to_string(r));
  const int64_t n = int64_t(batch) * channels * r * r * h * w;
  const std::vector<float> x = random_vector<float>(n, seed), dy = random_vector<float>(n, seed + 1);
  std::vector<float> y_ref(n), dx_ref(n);
  ref::pixel_shuffle_forward<float>(batch, channels, h, w, r, x.data(), y_ref.data());
  ref::pixel_shuffle_backward<float>(batch, channels, h, w, r, dy.data(), dx_ref.data());
  DeviceArray<float> d_x(x), d_dy(dy);
  EXPECT_EQ(gpu_output(n, [&](float* o) { cuda::pixel_shuffle_forward(batch, channels, h, w, r, d_x.get(), o, nullptr); }),
            y_ref);
  EXPECT_EQ(gpu_output(n, [&](float* o) { cuda::pixel_shuffle_backward(batch, channels, h, w, r, d_dy.get(), o, nullptr); }),
            dx_ref);
}

TEST(ElementwiseCuda, SmallPixelShuffle) {
  GANCU_REQUIRE_GPU();
  check_pixel_shuffle(1, 1, 1, 1, 2, 1);
  check_pixel_shuffle(2, 3, 5, 7, 2, 2);
  check_pixel_shuffle(1, 2, 3, 4, 3, 3);
  check_pixel_shuffle(2, 2, 2, 2, 1, 4);
  // Two negative sizes multiply to a positive h·w: each is checked on its own, before anything is launched.
  EXPECT_THROW(cuda::pixel_shuffle_forward(1, 1, -2, -3, 2, nullptr, nullptr, nullptr), std::invalid_argument);
  EXPECT_THROW(cuda::pixel_shuffle_backward(1, 1, -2, -3, 2, nullptr, nullptr, nullptr), std::invalid_argument);
}

// SRGAN upsampling blocks: 256 → 64 channels, 24→48 and 48→96, batch 16.
TEST(ElementwiseCuda, ModelPixelShuffle) {
  GANCU_REQUIRE_GPU();
  check_pixel_shuffle(16, 64, 24, 24, 2, 5);
  check_pixel_shuffle(16, 64, 48, 48, 2, 6);
}

// Dropout: the same Philox counters and double comparison as the reference, so mask and y agree bit for bit.
void check_dropout(int64_t n, double p, uint64_t seed) {
  SCOPED_TRACE("dropout n=" + std::to_string(n) + " p=" + std::to_string(p));
  const std::vector<float> x = random_vector<float>(n, seed), dy = random_vector<float>(n, seed + 1);
  std::vector<float> y_ref(n), mask_ref(n), dx_ref(n);
  ref::dropout_forward<float>(n, p, seed, 9, x.data(), y_ref.data(), mask_ref.data());
  ref::dropout_backward<float>(n, mask_ref.data(), dy.data(), dx_ref.data());
  DeviceArray<float> d_x(x), d_dy(dy), d_mask(poisoned_vector<float>(n));
  EXPECT_EQ(gpu_output(n, [&](float* o) { cuda::dropout_forward(n, p, seed, 9, d_x.get(), o, d_mask.get(), nullptr); }),
            y_ref);
  const std::vector<float> mask = d_mask.to_host();
  EXPECT_EQ(mask, mask_ref);
  DeviceArray<float> d_mask_ref(mask_ref);
  EXPECT_EQ(gpu_output(n, [&](float* o) { cuda::dropout_backward(n, d_mask_ref.get(), d_dy.get(), o, nullptr); }),
            dx_ref);
}

TEST(ElementwiseCuda, SmallDropout) {
  GANCU_REQUIRE_GPU();
  check_dropout(1, 0.5, 1);
  check_dropout(1000, 0.3, 2);
  check_dropout(1000, 0.0, 3);
  check_dropout(1000, 1.0, 4);
  EXPECT_THROW(cuda::dropout_forward(1, 1.5, 0, 0, nullptr, nullptr, nullptr, nullptr), std::invalid_argument);
}

TEST(ElementwiseCuda, ModelDropout) {
  GANCU_REQUIRE_GPU();
  check_dropout(int64_t(128) * 64 * 1024, 0.3, 5);
}

// Philox fills: statistics, and agreement with the host-side philox_*_at (few-ulp libm vs CUDA math differences for
// the normal; the uniform is one multiply-add, possibly fused on the GPU: 1e-6 covers both).
void check_fills(int64_t n, uint64_t seed) {
  SCOPED_TRACE("fill n=" + std::to_string(n));
  const std::vector<float> normal =
      gpu_output(n, [&](float* o) { cuda::fill_normal(n, 1.5f, 2.0f, seed, 3, o, nullptr); });
  const std::vector<float> uniform =
      gpu_output(n, [&](float* o) { cuda::fill_uniform(n, -1.0f, 3.0f, seed, 4, o, nullptr); });
  std::vector<double> normal_host(n), uniform_host(n);
  double sum = 0, squares = 0, usum = 0;
  float umin = 1e30f, umax = -1e30f;
  for (int64_t i = 0; i < n; ++i) {
    normal_host[i] = 1.5 + 2.0 * double(philox_normal_at(seed, 3, uint64_t(i)));
    uniform_host[i] = -1.0 + 4.0 * double(philox_uniform_at(seed, 4, uint64_t(i)));
    sum += normal[i];
    squares += double(normal[i]) * normal[i];
    usum += uniform[i];
    umin = std::min(umin, uniform[i]);
    umax = std::max(umax, uniform[i]);
  }
  EXPECT_TRUE(close_rel_l2(normal, normal_host, 1e-6, {n})) << "normal: GPU vs CPU Philox";
  EXPECT_TRUE(close_rel_l2(uniform, uniform_host, 1e-6, {n})) << "uniform: GPU vs CPU Philox";
  // 5σ bounds on the sample statistics (false-failure probability ~1e-6 each).
  const double mean = sum / n, var = squares / n - mean * mean;
  EXPECT_NEAR(mean, 1.5, 5 * 2.0 / std::sqrt(double(n)));
  EXPECT_NEAR(var, 4.0, 5 * 4.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(usum / n, 1.0, 5 * (4.0 / std::sqrt(12.0)) / std::sqrt(double(n)));
  EXPECT_GT(umin, -1.0f);  // (lo, hi]
  EXPECT_LE(umax, 3.0f);
}

TEST(ElementwiseCuda, SmallPhiloxFills) {
  GANCU_REQUIRE_GPU();
  check_fills(4099, 11);
}

TEST(ElementwiseCuda, ModelPhiloxFills) {
  GANCU_REQUIRE_GPU();
  check_fills(int64_t(1) << 22, 12);
}

// ---- linear (cuBLAS) --------------------------------------------------------------------------------------------

// Fresh random inputs of a linear layer and its four passes by the double reference.
struct LinearCase {
  int64_t nx, nw, ny;
  std::vector<float> x, w, b, dy;
  std::vector<double> y, dx, dw, db;
};
LinearCase linear_case(const LinearParams& p, uint64_t seed) {
  LinearCase c;
  c.nx = int64_t(p.batch) * p.in_features, c.nw = int64_t(p.out_features) * p.in_features;
  c.ny = int64_t(p.batch) * p.out_features;
  c.x = random_vector<float>(c.nx, seed), c.w = random_vector<float>(c.nw, seed + 1, 0.05);
  c.b = random_vector<float>(p.out_features, seed + 2), c.dy = random_vector<float>(c.ny, seed + 3);
  const std::vector<double> xd = to_double(c.x), wd = to_double(c.w), bd = to_double(c.b), dyd = to_double(c.dy);
  c.y.resize(size_t(c.ny)), c.dx.resize(size_t(c.nx)), c.dw.resize(size_t(c.nw)), c.db.resize(size_t(p.out_features));
  ref::linear_forward<double>(p, xd.data(), wd.data(), bd.data(), c.y.data());
  ref::linear_backward_input<double>(p, dyd.data(), wd.data(), c.dx.data());
  ref::linear_backward_weight<double>(p, xd.data(), dyd.data(), c.dw.data());
  ref::linear_backward_bias<double>(p, dyd.data(), c.db.data());
  return c;
}

// Strict fp32 SGEMM over k ≤ 8192 products: ≤ 1e-5. TF32 rounds the inputs to 10 mantissa bits (2^-11 ≈ 5e-4
// relative each): 5e-3 on the result.
void check_linear(cublasHandle_t handle, cuda::MathMode mode, const LinearParams& p, uint64_t seed) {
  SCOPED_TRACE(std::string(cuda::to_string(mode)) + " linear " + std::to_string(p.batch) + "x" +
               std::to_string(p.in_features) + "->" + std::to_string(p.out_features));
  const double tol = mode == cuda::MathMode::kFp32 ? 1e-5 : 5e-3;
  const LinearCase lc = linear_case(p, seed);
  const int64_t nx = lc.nx, nw = lc.nw, ny = lc.ny;
  const std::vector<float>&x = lc.x, &w = lc.w, &b = lc.b, &dy = lc.dy;
  const std::vector<double>&y = lc.y, &dx = lc.dx, &dw = lc.dw, &db = lc.db;
  DeviceArray<float> d_x(x), d_w(w), d_b(b), d_dy(dy);
  EXPECT_TRUE(close_rel_l2(gpu_output(ny, [&](float* o) {
                             cuda::linear_forward(handle, mode, p, d_x.get(), d_w.get(), d_b.get(), o, nullptr);
                           }), y, tol, {p.batch, p.out_features})) << "y";
  EXPECT_TRUE(close_rel_l2(gpu_output(nx, [&](float* o) {
                             cuda::linear_backward_input(handle, mode, p, d_dy.get(), d_w.get(), o, nullptr);
                           }), dx, tol, {p.batch, p.in_features})) << "dx";
  EXPECT_TRUE(close_rel_l2(gpu_output(nw, [&](float* o) {
                             cuda::linear_backward_weight(handle, mode, p, d_x.get(), d_dy.get(), o, nullptr);
                           }), dw, tol, {p.out_features, p.in_features})) << "dweight";
  EXPECT_TRUE(close_rel_l2(gpu_output(p.out_features, [&](float* o) {
                             cuda::linear_backward_bias(p, d_dy.get(), o, nullptr);
                           }), db, kTol, {p.out_features})) << "dbias";
}

TEST(LinearCuda, DcganShapesFp32AndTf32) {
  GANCU_REQUIRE_GPU();
  cublasHandle_t handle = nullptr;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  for (cuda::MathMode mode : {cuda::MathMode::kFp32, cuda::MathMode::kTf32}) {
    check_linear(handle, mode, LinearParams{1, 1, 1}, 1);
    check_linear(handle, mode, LinearParams{3, 5, 7}, 2);
    check_linear(handle, mode, LinearParams{128, 100, 8192}, 3);  // a z → 512×4×4 projection
    check_linear(handle, mode, LinearParams{64, 8192, 1}, 4);     // a discriminator head
  }
  cublasDestroy(handle);
}

// The linear kernels as a captured CUDA graph does them: a CublasHandle (bound once to a non-blocking stream, with its
// own workspace) records all four into one graph, which is replayed twice over poisoned outputs; each replay must
// match the reference. Without a user workspace, cuBLAS's GEMMs under capture take scratch from its internal pool.
// The shapes include a long reduction (in = 8192), where cuBLAS may pick a split-K GEMM that uses its workspace.
void check_linear_captured(cuda::MathMode mode, const LinearParams& p, uint64_t seed) {
  const double tol = mode == cuda::MathMode::kFp32 ? 1e-5 : 5e-3;
  const LinearCase lc = linear_case(p, seed);
  const int64_t nx = lc.nx, nw = lc.nw, ny = lc.ny;
  const std::vector<float>&x = lc.x, &w = lc.w, &b = lc.b, &dy = lc.dy;
  const std::vector<double>&y = lc.y, &dx = lc.dx, &dw = lc.dw, &db = lc.db;

  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  {
    const cuda::CublasHandle blas(stream);
    DeviceArray<float> d_x(x), d_w(w), d_b(b), d_dy(dy);
    DeviceArray<float> d_y(poisoned_vector<float>(ny)), d_dx(poisoned_vector<float>(nx)),
        d_dw(poisoned_vector<float>(nw)), d_db(poisoned_vector<float>(p.out_features));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const auto enqueue = [&] {
      cuda::linear_forward(blas.get(), mode, p, d_x.get(), d_w.get(), d_b.get(), d_y.get(), stream);
      cuda::linear_backward_input(blas.get(), mode, p, d_dy.get(), d_w.get(), d_dx.get(), stream);
      cuda::linear_backward_weight(blas.get(), mode, p, d_x.get(), d_dy.get(), d_dw.get(), stream);
      cuda::linear_backward_bias(p, d_dy.get(), d_db.get(), stream);
    };
    enqueue();  // eagerly once, as the backend's warm-up step does (cuBLAS initialises outside the capture)
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    enqueue();
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    cudaGraphDestroy(graph);
    const std::vector<int64_t> shape_y{p.batch, p.out_features}, shape_x{p.batch, p.in_features},
        shape_w{p.out_features, p.in_features};
    for (int replay = 0; replay < 2; ++replay) {
      d_y.upload(poisoned_vector<float>(ny));
      d_dx.upload(poisoned_vector<float>(nx));
      d_dw.upload(poisoned_vector<float>(nw));
      d_db.upload(poisoned_vector<float>(p.out_features));
      // cudaMemcpy from pageable memory may return before its DMA lands, and the non-blocking stream does not wait
      // for the legacy stream: finish the copies before the replay.
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      const std::string what = std::string(cuda::to_string(mode)) + " replay " + std::to_string(replay);
      EXPECT_TRUE(testing::close_rel_l2(d_y.to_host(), y, tol, shape_y)) << what << ": y";
      EXPECT_TRUE(testing::close_rel_l2(d_dx.to_host(), dx, tol, shape_x)) << what << ": dx";
      EXPECT_TRUE(testing::close_rel_l2(d_dw.to_host(), dw, tol, shape_w)) << what << ": dweight";
      EXPECT_TRUE(testing::close_rel_l2(d_db.to_host(), db, kTol, {p.out_features})) << what << ": dbias";
    }
    cudaGraphExecDestroy(exec);
  }
  cudaStreamDestroy(stream);
}

TEST(LinearCuda, SmallCapturedGraphReplaysMatchReference) {
  GANCU_REQUIRE_GPU();
  for (cuda::MathMode mode : {cuda::MathMode::kFp32, cuda::MathMode::kTf32})
    check_linear_captured(mode, LinearParams{3, 5, 7}, 11);
}

TEST(LinearCuda, CapturedGraphReplaysMatchReferenceOnDcganShapes) {
  GANCU_REQUIRE_GPU();
  for (cuda::MathMode mode : {cuda::MathMode::kFp32, cuda::MathMode::kTf32}) {
    check_linear_captured(mode, LinearParams{128, 100, 8192}, 12);  // a z → 512×4×4 projection
    check_linear_captured(mode, LinearParams{64, 8192, 1}, 13);     // a discriminator head: split-K territory
  }
}

// A handle bound to one stream refuses a call on another instead of rebinding (which would drop its workspace).
TEST(LinearCuda, SmallHandleBoundToAnotherStreamIsRefused) {
  GANCU_REQUIRE_GPU();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  {
    const cuda::CublasHandle blas(stream);
    const LinearParams p{2, 3, 4};
    DeviceArray<float> x(random_vector<float>(6, 21)), w(random_vector<float>(12, 22)), y(poisoned_vector<float>(8));
    EXPECT_THROW(cuda::linear_forward(blas.get(), cuda::MathMode::kFp32, p, x.get(), w.get(), nullptr, y.get(), nullptr),
                 std::invalid_argument);
    EXPECT_EQ(cudaPeekAtLastError(), cudaSuccess);
  }
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace gancu
