// GPU tests: fused multi-tensor Adam (kernels/cuda/adam.h) against ref::adam_step over several steps.
// Tests whose name contains "Small" use tiny sizes only; tools/gpu_check.sh runs those under compute-sanitizer.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/adam.h"
#include "kernels/cuda/adam.h"
#include "tests/gpu/gpu_test.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using testing::random_vector;
using testing::close_rel_l2;

// The reference keeps fp32 state and computes each update in fp64; the kernel computes it in fp32. Parameters, m and
// v agree to a few ulps (≤ 1e-6 relative). The update itself (param_after − param_before, ~lr) carries the rounding of
// the stored fp32 parameter (≤ ulp(|p|)/2 ≈ 6e-8·|p| per step against steps of ~2e-4), hence 1e-3 on the update.
constexpr double kStateTol = 1e-6;
constexpr double kUpdateTol = 1e-3;

// One tensor's host state (reference) and device state (kernel).
struct TensorState {
  std::vector<float> param, m, v, param_start;
  DeviceArray<float> d_param, d_grad, d_m, d_v;
  explicit TensorState(int64_t n, uint64_t seed)
      : param(random_vector<float>(n, seed)), m(size_t(n), 0.0f), v(size_t(n), 0.0f), param_start(param),
        d_param(param), d_grad(std::vector<float>(size_t(n))), d_m(m), d_v(v) {}
};

void check_adam(const std::vector<int64_t>& sizes, int steps, uint64_t seed) {
  SCOPED_TRACE(std::to_string(sizes.size()) + " tensors, " + std::to_string(steps) + " steps");
  AdamParams p;
  p.lr = 2e-4;
  p.beta1 = 0.5;
  p.beta2 = 0.999;
  p.weight_decay = 1e-2;
  std::vector<std::unique_ptr<TensorState>> tensors;
  std::vector<cuda::AdamTensor> list;
  for (size_t k = 0; k < sizes.size(); ++k) {
    tensors.push_back(std::make_unique<TensorState>(sizes[k], seed + 7 * k));
    TensorState& t = *tensors.back();
    list.push_back({t.d_param.get(), t.d_grad.get(), t.d_m.get(), t.d_v.get(), sizes[k]});
  }
  DeviceArray<int64_t> d_step(std::vector<int64_t>{0});

  for (int step = 1; step <= steps; ++step) {
    for (size_t k = 0; k < sizes.size(); ++k) {  // fresh gradients every step
      TensorState& t = *tensors[k];
      const std::vector<float> grad = random_vector<float>(sizes[k], seed + 1000 * step + k, 0.1);
      t.d_grad.upload(grad);
      ref::adam_step<float>(sizes[k], p, step, t.param.data(), grad.data(), t.m.data(), t.v.data());
    }
    cuda::adam_step(p, list.data(), int(list.size()), d_step.get(), nullptr);
  }
  GANCU_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(d_step.to_host()[0], steps) << "the device step count advances once per call";

  for (size_t k = 0; k < sizes.size(); ++k) {
    SCOPED_TRACE("tensor " + std::to_string(k) + " of size " + std::to_string(sizes[k]));
    const TensorState& t = *tensors[k];
    const std::vector<float> param = t.d_param.to_host();
    EXPECT_TRUE(close_rel_l2(param, t.param, kStateTol, {sizes[k]})) << "param";
    EXPECT_TRUE(close_rel_l2(t.d_m.to_host(), t.m, kStateTol, {sizes[k]})) << "m";
    EXPECT_TRUE(close_rel_l2(t.d_v.to_host(), t.v, kStateTol, {sizes[k]})) << "v";
    std::vector<double> update(param.size()), update_ref(param.size());
    for (size_t i = 0; i < param.size(); ++i) {
      update[i] = double(param[i]) - double(t.param_start[i]);
      update_ref[i] = double(t.param[i]) - double(t.param_start[i]);
    }
    EXPECT_TRUE(close_rel_l2(update, update_ref, kUpdateTol, {sizes[k]})) << "update";
  }
}

// Chunk boundaries (8192 elements per block), a 1-element tensor and an empty one.
TEST(AdamCuda, SmallTensorList) {
  GANCU_REQUIRE_GPU();
  check_adam({1, 3, 0, 8191, 8192, 8193, 20000}, 5, 10);
}

// More tensors than one launch carries (kAdamTensorsPerLaunch): the step must still be read before it advances.
TEST(AdamCuda, SmallManyTensors) {
  GANCU_REQUIRE_GPU();
  std::vector<int64_t> sizes;
  for (int k = 0; k < cuda::kAdamTensorsPerLaunch + 5; ++k) sizes.push_back(1 + 37 * k);
  check_adam(sizes, 3, 20);
}

// DCGAN-64 generator parameter list (ConvTranspose2d weights, BatchNorm gamma/beta).
TEST(AdamCuda, Dcgan64Generator) {
  GANCU_REQUIRE_GPU();
  check_adam({100 * 512 * 16, 512, 512, 512 * 256 * 16, 256, 256, 256 * 128 * 16, 128, 128, 128 * 64 * 16, 64, 64,
              64 * 3 * 16},
             4, 30);
}

}  // namespace
}  // namespace gancu
