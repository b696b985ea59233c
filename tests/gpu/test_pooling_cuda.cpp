// The max-pooling CUDA kernels (kernels/cuda/pooling.h). MaxPoolMaps runs their per-element functions
// (kernels/cuda/pool_maps.h) through a scalar loop on the host against the reference, ties, padding and NaN included:
// no GPU needed. The Small*/Vgg* tests run the kernels against the reference with NaN-poisoned outputs, and a graph
// with a max pool on the CUDA backend against the CPU backend; without a GPU they skip.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "engine/cuda_backend.h"
#include "engine/engine.h"
#include "kernels/cpu/pooling.h"
#include "kernels/cuda/pool_maps.h"
#include "kernels/cuda/pooling.h"
#include "tests/gpu/gpu_test.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using testing::close_rel_l2;
using testing::poisoned_vector;
using testing::random_vector;

// The forward copies a value (exact); the backward sums a few dy in float against the reference's double sums.
constexpr double kTol = 1e-5;

MaxPool2dParams pool(int batch, int channels, int h, int w, int kernel, int stride, int pad) {
  MaxPool2dParams p;
  p.batch = batch;
  p.channels = channels;
  p.in_h = h;
  p.in_w = w;
  p.kernel = kernel;
  p.stride = stride;
  p.pad = pad;
  return p;
}
std::string name(const MaxPool2dParams& p) {
  return std::to_string(p.batch) + "x" + std::to_string(p.channels) + "x" + std::to_string(p.in_h) + "x" +
         std::to_string(p.in_w) + " k" + std::to_string(p.kernel) + " s" + std::to_string(p.stride) + " p" +
         std::to_string(p.pad);
}
std::vector<int64_t> x_dims(const MaxPool2dParams& p) { return {p.batch, p.channels, p.in_h, p.in_w}; }
std::vector<int64_t> y_dims(const MaxPool2dParams& p) { return {p.batch, p.channels, p.out_h(), p.out_w()}; }

// Geometries: VGG's 2×2/2 (even and odd sizes: an odd last row and column belong to no window), overlapping 3×3/2
// padded windows, stride 1, a kernel wider than its stride by more than one, non-square planes.
const MaxPool2dParams kCases[] = {pool(2, 3, 8, 8, 2, 2, 0),  pool(2, 3, 7, 9, 2, 2, 0), pool(2, 3, 7, 9, 3, 2, 1),
                                  pool(1, 4, 6, 5, 3, 1, 1),  pool(1, 2, 11, 6, 4, 3, 2), pool(3, 1, 1, 1, 1, 1, 0),
                                  pool(1, 2, 5, 13, 5, 2, 2)};

// Values on a coarse grid, so that windows hold ties (the first maximum must win) and, with `nan`, a NaN or two.
std::vector<float> tied_values(int64_t n, uint64_t seed, bool nan) {
  std::vector<float> v = random_vector<float>(n, seed);
  for (float& x : v) x = std::round(x * 2.0f) / 2.0f;
  if (nan && n > 3) v[size_t(n / 3)] = v[size_t(n - 2)] = std::numeric_limits<float>::quiet_NaN();
  return v;
}

TEST(MaxPoolMaps, HostEmulationMatchesTheReference) {
  uint64_t seed = 1;
  for (const MaxPool2dParams& p : kCases)
    for (int variant = 0; variant < 3; ++variant) {  // continuous values, ties, ties with NaN
      SCOPED_TRACE(name(p) + " variant " + std::to_string(variant));
      const std::vector<float> x = variant == 0 ? random_vector<float>(p.x_size(), seed++)
                                                : tied_values(p.x_size(), seed++, variant == 2);
      const std::vector<float> dy = random_vector<float>(p.y_size(), seed++);
      std::vector<float> y_ref(size_t(p.y_size())), dx_ref(size_t(p.x_size()));
      ref::max_pool2d_forward(p, x.data(), y_ref.data());
      ref::max_pool2d_backward(p, x.data(), dy.data(), dx_ref.data());
      const cuda::detail::MaxPoolMap map = cuda::detail::plan_max_pool(p, "test");
      std::vector<float> y = poisoned_vector<float>(p.y_size()), dx = poisoned_vector<float>(p.x_size());
      for (int o = 0; o < int(p.y_size()); ++o) y[size_t(o)] = cuda::detail::max_pool_output(map, x.data(), o);
      for (int i = 0; i < int(p.x_size()); ++i)
        dx[size_t(i)] = cuda::detail::max_pool_input_gradient(map, x.data(), dy.data(), i);
      // Same element picked: bit-equal values (NaN where the reference has NaN).
      for (size_t o = 0; o < y.size(); ++o)
        EXPECT_TRUE(y[o] == y_ref[o] || (std::isnan(y[o]) && std::isnan(y_ref[o]))) << "output " << o;
      EXPECT_TRUE(close_rel_l2(dx, dx_ref, kTol, x_dims(p))) << "backward";
    }
}

// The windows containing each row, against a brute-force scan of all windows.
TEST(MaxPoolMaps, WindowsContainingARowAreExactlyThoseThatCoverIt) {
  for (int kernel = 1; kernel <= 5; ++kernel)
    for (int stride = 1; stride <= 4; ++stride)
      for (int pad = 0; 2 * pad <= kernel; ++pad)
        for (int size = kernel; size <= 12; ++size) {
          const int count = (size + 2 * pad - kernel) / stride + 1;
          for (int i = 0; i < size; ++i) {
            int first = 0, last = 0;
            cuda::detail::max_pool_windows_containing(i, pad, kernel, cuda::detail::FastDivmod(stride), count, first,
                                                      last);
            for (int o = 0; o < count; ++o) {
              const bool covers = o * stride - pad <= i && i < o * stride - pad + kernel;
              EXPECT_EQ(covers, first <= o && o <= last)
                  << "k" << kernel << " s" << stride << " p" << pad << " size " << size << " row " << i << " window " << o;
            }
          }
        }
}

TEST(MaxPoolMaps, RefusesBadWindowsAndHugeTensors) {
  EXPECT_THROW(cuda::detail::plan_max_pool(pool(1, 1, 4, 4, 2, 2, 2), "test"), std::invalid_argument);
  EXPECT_THROW(cuda::detail::plan_max_pool(pool(1, 1, 2, 2, 3, 1, 0), "test"), std::invalid_argument);
  EXPECT_THROW(cuda::detail::plan_max_pool(pool(1 << 16, 1 << 8, 256, 256, 2, 2, 0), "test"), std::invalid_argument);
}

template <class F> std::vector<float> gpu_output(int64_t n, F&& launch) {
  DeviceArray<float> out(poisoned_vector<float>(n));
  launch(out.get());
  GANCU_CUDA_CHECK(cudaDeviceSynchronize());
  return out.to_host();
}

void check_kernels(const MaxPool2dParams& p, uint64_t seed, bool ties) {
  SCOPED_TRACE(name(p) + (ties ? " with ties" : ""));
  const std::vector<float> x = ties ? tied_values(p.x_size(), seed, false) : random_vector<float>(p.x_size(), seed);
  const std::vector<float> dy = random_vector<float>(p.y_size(), seed + 1);
  const std::vector<double> xd(x.begin(), x.end()), dyd(dy.begin(), dy.end());
  std::vector<double> y_ref(size_t(p.y_size())), dx_ref(size_t(p.x_size()));
  ref::max_pool2d_forward(p, xd.data(), y_ref.data());
  ref::max_pool2d_backward(p, xd.data(), dyd.data(), dx_ref.data());
  DeviceArray<float> d_x(x), d_dy(dy);
  EXPECT_TRUE(close_rel_l2(gpu_output(p.y_size(), [&](float* o) { cuda::max_pool2d_forward(p, d_x.get(), o, nullptr); }),
                           y_ref, kTol, y_dims(p)))
      << "forward";
  const std::vector<float> dx =
      gpu_output(p.x_size(), [&](float* o) { cuda::max_pool2d_backward(p, d_x.get(), d_dy.get(), o, nullptr); });
  EXPECT_TRUE(close_rel_l2(dx, dx_ref, kTol, x_dims(p))) << "backward";
  // Deterministic: a second run gives the same bits.
  EXPECT_EQ(dx, gpu_output(p.x_size(), [&](float* o) { cuda::max_pool2d_backward(p, d_x.get(), d_dy.get(), o, nullptr); }));
}

TEST(MaxPoolCuda, SmallShapesAgainstTheReference) {
  GANCU_REQUIRE_GPU();
  uint64_t seed = 10;
  for (const MaxPool2dParams& p : kCases) {
    check_kernels(p, seed, false);
    check_kernels(p, seed + 2, true);
    seed += 4;
  }
}

// The pools of VGG19's features on SRGAN's 96×96 crops: [16, 64, 96, 96] down to [16, 512, 12, 12].
TEST(MaxPoolCuda, Vgg19PoolsAgainstTheReference) {
  GANCU_REQUIRE_GPU();
  check_kernels(pool(16, 64, 96, 96, 2, 2, 0), 20, false);
  check_kernels(pool(16, 128, 48, 48, 2, 2, 0), 22, false);
  check_kernels(pool(16, 512, 12, 12, 2, 2, 0), 24, true);
}

// A graph with a max pool on the CUDA backend against the CPU backend: output and input gradient.
TEST(MaxPoolCuda, BackendMatchesCpu) {
  GANCU_REQUIRE_GPU();
  auto build = [](Graph& g, ValueId& x, ValueId& y, ValueId& dx) {
    Builder b(g);
    x = b.input("x", Shape{2, 3, 9, 9});
    y = b.max_pool2d(x, 3, 2, 1);
    const ValueId target = b.input("target", Shape{2, 3, 5, 5});
    const ValueId loss = b.mse(y, target);
    dx = append_backward(g, {loss}, {x})[0];
    b.keep(y);
    b.keep(dx);
    return target;
  };
  const auto xs = random_vector<float>(2 * 3 * 9 * 9, 30), ts = random_vector<float>(2 * 3 * 5 * 5, 31);
  std::vector<std::vector<float>> results;
  for (bool gpu : {false, true}) {
    Graph g;
    ValueId x, y, dx;
    const ValueId target = build(g, x, y, dx);
    std::unique_ptr<Backend> backend = gpu ? make_cuda_backend() : make_cpu_backend();
    ParameterStore store(*backend, 1);
    Plan plan(std::move(g), store);
    plan.write(x, xs.data());
    plan.write(target, ts.data());
    plan.run();
    const Tensor yt = plan.read(y), dxt = plan.read(dx);
    results.emplace_back(yt.data(), yt.data() + yt.numel());
    results.emplace_back(dxt.data(), dxt.data() + dxt.numel());
  }
  EXPECT_TRUE(close_rel_l2(results[2], results[0], kTol, {2, 3, 5, 5})) << "forward";
  EXPECT_TRUE(close_rel_l2(results[3], results[1], kTol, {2, 3, 9, 9})) << "input gradient";
}

}  // namespace
}  // namespace gancu
