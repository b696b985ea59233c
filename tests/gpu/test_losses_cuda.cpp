// GPU tests: losses (kernels/cuda/losses.h) against the fp64 reference (kernels/cpu/losses.h); CrossEntropyRows runs
// cross_entropy's per-row arithmetic on the host, without a GPU.
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

// ---- cross_entropy: logits [batch, classes], labels [batch] ------------------------------------------------------

struct CrossEntropyCase {
  std::vector<float> logits, labels;
  std::vector<double> want_dlogits;
  double want_loss = 0;
};

// Fresh random logits (spread 4, so softmax reaches both saturated ends) and labels, with the fp64 reference.
CrossEntropyCase cross_entropy_case(int batch, int classes, uint64_t seed, float dloss) {
  CrossEntropyCase c;
  c.logits = random_vector<float>(int64_t(batch) * classes, seed, 4.0);
  Rng rng(seed + 1);
  for (int n = 0; n < batch; ++n) c.labels.push_back(float(rng.below(uint64_t(classes))));
  const std::vector<double> x(c.logits.begin(), c.logits.end()), y(c.labels.begin(), c.labels.end());
  c.want_loss = ref::cross_entropy_forward<double>(batch, classes, x.data(), y.data());
  c.want_dlogits.resize(x.size());
  ref::cross_entropy_backward<double>(batch, classes, x.data(), y.data(), double(dloss), c.want_dlogits.data());
  return c;
}

// Needs no GPU: the kernel's per-row arithmetic (cuda::detail::cross_entropy_row) run on the host row by row, summed
// and divided as the finishing kernel does, against the reference. Labels that are not class indices give NaN rows.
TEST(CrossEntropyRows, HostEmulationMatchesReference) {
  uint64_t seed = 300;
  for (auto [batch, classes] : {std::pair{1, 1}, {1, 2}, {7, 10}, {128, 10}, {33, 1000}}) {
    SCOPED_TRACE(std::to_string(batch) + "x" + std::to_string(classes));
    const float dloss = 0.75f;
    const CrossEntropyCase c = cross_entropy_case(batch, classes, seed += 3, dloss);
    std::vector<float> dlogits = poisoned_vector<float>(int64_t(batch) * classes);
    double sum = 0;
    for (int n = 0; n < batch; ++n)
      sum += cuda::detail::cross_entropy_row(classes, c.logits.data() + int64_t(n) * classes, c.labels[n],
                                             double(dloss) / batch, dlogits.data() + int64_t(n) * classes);
    const float loss = float(sum / batch);
    EXPECT_LE(std::abs(double(loss) - c.want_loss), kTol * std::max(c.want_loss, 1e-30)) << loss << " vs " << c.want_loss;
    EXPECT_TRUE(close_rel_l2(dlogits, c.want_dlogits, kTol, {batch, classes}));
  }
  const std::vector<float> row = {0.5f, -1.0f, 2.0f};
  for (float bad : {-1.0f, 3.0f, 0.5f, std::nanf("")}) {
    std::vector<float> d(3, 0.0f);
    EXPECT_TRUE(std::isnan(cuda::detail::cross_entropy_row(3, row.data(), bad, 1.0, d.data()))) << bad;
    for (float v : d) EXPECT_TRUE(std::isnan(v)) << bad;
  }
}

void check_cross_entropy(int batch, int classes, uint64_t seed) {
  SCOPED_TRACE("cross_entropy " + std::to_string(batch) + "x" + std::to_string(classes));
  const float dloss = 0.75f;
  const CrossEntropyCase c = cross_entropy_case(batch, classes, seed, dloss);
  DeviceArray<float> d_x(c.logits), d_y(c.labels), d_dx(poisoned_vector<float>(int64_t(batch) * classes));
  DeviceArray<float> d_out(poisoned_vector<float>(1));
  DeviceArray<char> d_ws(std::vector<char>(cuda::cross_entropy_workspace_bytes(batch)));
  cuda::cross_entropy(batch, classes, d_x.get(), d_y.get(), dloss, d_dx.get(), d_out.get(), d_ws.get(), nullptr);
  GANCU_CUDA_CHECK(cudaDeviceSynchronize());
  const float loss = d_out.to_host()[0];
  EXPECT_LE(std::abs(double(loss) - c.want_loss), kTol * c.want_loss) << "loss " << loss << " vs " << c.want_loss;
  EXPECT_TRUE(close_rel_l2(d_dx.to_host(), c.want_dlogits, kTol, {batch, classes})) << "dlogits";

  // Loss only (dlogits null), again: the same bits (one thread per row, fixed-order sum).
  DeviceArray<float> d_out2(poisoned_vector<float>(1));
  cuda::cross_entropy(batch, classes, d_x.get(), d_y.get(), dloss, nullptr, d_out2.get(), d_ws.get(), nullptr);
  const float again = d_out2.to_host()[0];
  EXPECT_EQ(std::memcmp(&again, &loss, sizeof(float)), 0) << "loss not bit-identical on a second run";
}

// Classifier heads (K = 10) at the classifier's batch sizes, a partial block, K = 1 and a wide head.
TEST(LossesCuda, SmallCrossEntropy) {
  GANCU_REQUIRE_GPU();
  uint64_t seed = 500;
  for (auto [batch, classes] : {std::pair{1, 1}, {1, 2}, {7, 10}, {128, 10}, {256, 10}, {257, 10}, {33, 1000}})
    check_cross_entropy(batch, classes, seed += 3);
}

TEST(LossesCuda, SmallCrossEntropyBadLabelGivesNaN) {
  GANCU_REQUIRE_GPU();
  const CrossEntropyCase c = cross_entropy_case(4, 10, 77, 1.0f);
  std::vector<float> labels = c.labels;
  labels[2] = 10.0f;
  DeviceArray<float> d_x(c.logits), d_y(labels), d_dx(std::vector<float>(40, 0.0f)), d_out(std::vector<float>(1, 0.0f));
  DeviceArray<char> d_ws(std::vector<char>(cuda::cross_entropy_workspace_bytes(4)));
  cuda::cross_entropy(4, 10, d_x.get(), d_y.get(), 1.0f, d_dx.get(), d_out.get(), d_ws.get(), nullptr);
  EXPECT_TRUE(std::isnan(d_out.to_host()[0]));
  const std::vector<float> dx = d_dx.to_host();
  for (int k = 0; k < 10; ++k) {
    EXPECT_TRUE(std::isnan(dx[20 + k])) << k;
    EXPECT_TRUE(std::isfinite(dx[k])) << k;
  }
}

}  // namespace
}  // namespace gancu
