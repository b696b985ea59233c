// GPU tests: losses (kernels/cuda/losses.h) against the fp64 reference (kernels/cpu/losses.h).
// Tests whose name contains "Small" use tiny sizes only; tools/gpu_check.sh runs those under compute-sanitizer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/cpu/losses.h"
#include "kernels/cuda/losses.h"
#include "tests/gpu/gpu_test.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using testing::poisoned_vector;
using testing::random_vector;
using testing::close_rel_l2;

// dx is one fp32 expression per element (≤ a few ulps); the loss sums fp32 per-element values in fp64, so its error is
// that of one element, ~1e-7 relative. Both are held to the usual 1e-5.
constexpr double kTol = 1e-5;

enum class Loss { kBce, kMse, kL1 };

void run_gpu(Loss loss, int64_t n, const float* x, const float* t, float dloss, float* dx, float* out, void* ws) {
  switch (loss) {
    case Loss::kBce: return cuda::bce_with_logits(n, x, t, dloss, dx, out, ws, nullptr);
    case Loss::kMse: return cuda::mse(n, x, t, dloss, dx, out, ws, nullptr);
    case Loss::kL1: return cuda::l1(n, x, t, dloss, dx, out, ws, nullptr);
  }
}

double run_ref(Loss loss, int64_t n, const double* x, const double* t, double dloss, double* dx) {
  switch (loss) {
    case Loss::kBce: ref::bce_with_logits_backward<double>(n, x, t, dloss, dx); return ref::bce_with_logits_forward<double>(n, x, t);
    case Loss::kMse: ref::mse_backward<double>(n, x, t, dloss, dx); return ref::mse_forward<double>(n, x, t);
    case Loss::kL1: ref::l1_backward<double>(n, x, t, dloss, dx); return ref::l1_forward<double>(n, x, t);
  }
  return 0;
}

void check_loss(Loss loss, int64_t n, uint64_t seed) {
  SCOPED_TRACE("loss " + std::to_string(int(loss)) + " n=" + std::to_string(n));
  // Logits spread wide enough to reach both saturated tails; BCE targets in (0, 1] (smoothed/noisy labels).
  std::vector<float> x = random_vector<float>(n, seed, 3.0), target(static_cast<size_t>(n));
  Rng rng(seed + 1);
  for (auto& t : target) t = loss == Loss::kBce ? rng.uniform() : rng.normal();
  if (loss == Loss::kL1 && n > 2) target[1] = x[1];  // the x == target subgradient (0)
  const float dloss = 0.75f;

  std::vector<double> xd(x.begin(), x.end()), td(target.begin(), target.end()), dx_ref(static_cast<size_t>(n));
  const double loss_ref = run_ref(loss, n, xd.data(), td.data(), double(dloss), dx_ref.data());

  DeviceArray<float> d_x(x), d_t(target), d_dx(poisoned_vector<float>(n)), d_out(poisoned_vector<float>(1));
  DeviceArray<char> d_ws(std::vector<char>(cuda::loss_workspace_bytes(n)));
  run_gpu(loss, n, d_x.get(), d_t.get(), dloss, d_dx.get(), d_out.get(), d_ws.get());
  GANCU_CUDA_CHECK(cudaDeviceSynchronize());
  const float loss_gpu = d_out.to_host()[0];
  EXPECT_LE(std::abs(double(loss_gpu) - loss_ref), kTol * std::abs(loss_ref)) << "loss " << loss_gpu << " vs " << loss_ref;
  EXPECT_TRUE(close_rel_l2(d_dx.to_host(), dx_ref, kTol, {n})) << "dx";

  // Loss only (dx null), twice: the same bits as before (fixed grid, fixed reduction order).
  DeviceArray<float> d_out2(poisoned_vector<float>(1));
  run_gpu(loss, n, d_x.get(), d_t.get(), dloss, nullptr, d_out2.get(), d_ws.get());
  const float again = d_out2.to_host()[0];
  EXPECT_EQ(std::memcmp(&again, &loss_gpu, sizeof(float)), 0) << "loss not bit-identical on a second run";
}

const Loss kLosses[] = {Loss::kBce, Loss::kMse, Loss::kL1};

TEST(LossesCuda, SmallSizes) {
  GANCU_REQUIRE_GPU();
  uint64_t seed = 10;
  for (Loss loss : kLosses)
    for (int64_t n : {1, 2, 7, 128, 255, 257, 4099}) check_loss(loss, n, seed += 3);
}

// DCGAN-64 discriminator logits (batch 128), an SRGAN HR batch (16×3×96×96) and a size beyond the 1024-block grid.
TEST(LossesCuda, ModelSizes) {
  GANCU_REQUIRE_GPU();
  uint64_t seed = 1000;
  for (Loss loss : kLosses)
    for (int64_t n : {int64_t(128), int64_t(16) * 3 * 96 * 96, int64_t(3000017)}) check_loss(loss, n, seed += 3);
}

TEST(LossesCuda, SmallRejectsEmpty) {
  GANCU_REQUIRE_GPU();
  EXPECT_THROW(cuda::mse(0, nullptr, nullptr, 1.0f, nullptr, nullptr, nullptr, nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace gancu
