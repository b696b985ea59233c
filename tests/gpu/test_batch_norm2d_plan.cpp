// Host tests of the batch-norm kernels' split plan, traversal and numerics (kernels/cuda/batch_norm2d_plan.h): no GPU
// needed, so CI runs them. They drive the very code the kernels run (BnChannelWalk, ShiftedSums, channel_moments,
// add_grad) through a scalar loop that emulates each block's threads: thread t of a block takes units
// first + t, first + t + kBnThreads, … of its split, as the kernels' loops do.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/builder.h"
#include "engine/cuda_dispatch.h"
#include "kernels/cuda/batch_norm2d.h"
#include "kernels/cuda/batch_norm2d_plan.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using cuda::detail::BnChannelWalk;
using cuda::detail::BnSplitPlan;
using cuda::detail::kBnMaxSplits;
using cuda::detail::kBnMinSplitValues;
using cuda::detail::kBnThreads;
using cuda::detail::kTargetBlocks;
using cuda::detail::plan_batch_norm2d;

BatchNorm2dParams params(int batch, int channels, int spatial) {
  BatchNorm2dParams p;
  p.batch = batch;
  p.channels = channels;
  p.spatial = spatial;
  return p;
}

std::string describe(const BatchNorm2dParams& p) {
  return std::to_string(p.batch) + "x" + std::to_string(p.channels) + "x" + std::to_string(p.spatial);
}

// Every DCGAN-64 batch norm at batch 128 (G: 512x4x4 … 64x32x32; D: 128x16x16 … 512x4x4, the same shapes), SRGAN's,
// the GPU tests' split shapes, and random shapes (odd and float4 spatial sizes, 1 to 700 channels).
std::vector<BatchNorm2dParams> test_shapes() {
  std::vector<BatchNorm2dParams> shapes = {params(128, 512, 16), params(128, 256, 64),  params(128, 128, 256),
                                           params(128, 64, 1024), params(16, 64, 576),  params(16, 64, 2304),
                                           params(2, 2, 8192),    params(3, 1, 9001),   params(5, 3, 4100),
                                           params(2, 1, 1),       params(1, 5, 9),      params(4, 3, 1)};
  std::mt19937_64 rng(11);
  const int spatials[] = {1, 3, 4, 7, 16, 25, 64, 100, 256, 1024, 4099, 9216, 65536};
  while (shapes.size() < 60) {
    const BatchNorm2dParams p = params(1 + int(rng() % 256), 1 + int(rng() % 700), spatials[rng() % std::size(spatials)]);
    if (p.size() <= (int64_t(1) << 21)) shapes.push_back(p);
  }
  return shapes;
}

// Calls f(c, split, thread, offset) for every kVec-unit each thread of each block visits, in the kernels' order.
template <class F> void walk_all(const BatchNorm2dParams& p, const BnSplitPlan& plan, int vec, F&& f) {
  const cuda::detail::BnWalkShape shape = cuda::detail::make_walk_shape(p, vec);
  for (int c = 0; c < p.channels; ++c) {
    const BnChannelWalk walk = shape.channel(c);
    for (int split = 0; split < plan.splits; ++split)
      for (int t = 0; t < kBnThreads; ++t)
        for (int u = plan.begin(split) / vec + t; u < plan.end(split) / vec; u += kBnThreads)
          f(c, split, t, walk.offset(u));
  }
}

TEST(BatchNorm2dPlan, SplitsAreValidAndAimAtTheBlockTarget) {
  for (const BatchNorm2dParams& p : test_shapes()) {
    SCOPED_TRACE(describe(p));
    const BnSplitPlan plan = plan_batch_norm2d(p);
    const int64_t count = int64_t(p.batch) * p.spatial;
    ASSERT_EQ(plan.count, count);
    EXPECT_EQ(plan.unit, p.spatial % 4 == 0 ? 4 : 1);
    ASSERT_GE(plan.splits, 1);
    EXPECT_LE(plan.splits, kBnMaxSplits);
    EXPECT_EQ(plan.chunk % plan.unit, 0);
    EXPECT_EQ(plan.begin(0), 0);
    EXPECT_EQ(plan.end(plan.splits - 1), count);
    for (int s = 0; s < plan.splits; ++s) {
      EXPECT_LT(plan.begin(s), plan.end(s)) << "empty split " << s;
      if (s + 1 < plan.splits) {
        EXPECT_EQ(plan.end(s), plan.begin(s + 1)) << "gap or overlap after split " << s;
      }
      EXPECT_LE(plan.end(s) - plan.begin(s), plan.chunk);
    }
    if (plan.splits > 1) {
      EXPECT_GE(plan.chunk, kBnMinSplitValues) << "a split too short to pay for itself";
    }
    // Never past the target with several splits (one wave), and within one split of it unless the minimum split
    // length or the split cap binds (rounding the chunk up may drop one split).
    if (plan.splits > 1) {
      EXPECT_LE(plan.blocks(), kTargetBlocks);
    }
    const int64_t cap = std::min<int64_t>({count / kBnMinSplitValues, kBnMaxSplits, kTargetBlocks / p.channels});
    EXPECT_GE(plan.splits + 1, cap);
    EXPECT_LE(plan.splits, std::max<int64_t>(cap, 1));
    // A pure function of the shape: the same plan every time.
    const BnSplitPlan again = plan_batch_norm2d(p);
    EXPECT_EQ(again.splits, plan.splits);
    EXPECT_EQ(again.chunk, plan.chunk);
  }
}

// The plans of DCGAN-64's batch norms at batch 128 (both networks use these shapes): the two narrow layers split to
// 256 blocks, the wide ones already have ≥ 256 blocks with one per channel.
TEST(BatchNorm2dPlan, DcganPlans) {
  struct Expected {
    BatchNorm2dParams p;
    int splits;
  };
  const Expected expected[] = {{params(128, 512, 16), 1},
                               {params(128, 256, 64), 1},
                               {params(128, 128, 256), 2},
                               {params(128, 64, 1024), 4}};
  for (const Expected& e : expected) EXPECT_EQ(plan_batch_norm2d(e.p).splits, e.splits) << describe(e.p);
}

// Every element of every channel is visited exactly once, by blocks of its own channel, with the float4 walk (when
// the plan allows it) and the scalar walk (used when a pointer is not 16-byte aligned).
TEST(BatchNorm2dPlan, WalkCoversEveryValueOnce) {
  for (const BatchNorm2dParams& p : test_shapes()) {
    SCOPED_TRACE(describe(p));
    const BnSplitPlan plan = plan_batch_norm2d(p);
    for (int vec : {plan.unit, 1}) {
      std::vector<uint8_t> visits(size_t(p.size()), 0);
      bool in_range = true, own_channel = true;
      walk_all(p, plan, vec, [&](int c, int, int, int64_t offset) {
        for (int j = 0; j < vec; ++j) {
          const int64_t i = offset + j;
          if (i < 0 || i >= p.size()) {
            in_range = false;
            continue;
          }
          own_channel &= (i / p.spatial) % p.channels == c;
          ++visits[size_t(i)];
        }
      });
      ASSERT_TRUE(in_range) << "vec " << vec << ": an offset outside the tensor";
      EXPECT_TRUE(own_channel) << "vec " << vec << ": a block visited another channel's value";
      const auto wrong = std::find_if(visits.begin(), visits.end(), [](uint8_t v) { return v != 1; });
      EXPECT_EQ(wrong, visits.end()) << "vec " << vec << ": element " << (wrong - visits.begin()) << " visited "
                                     << int(wrong == visits.end() ? 1 : *wrong) << " times";
    }
  }
}

// Direct two-pass double statistics of channel c.
void direct_moments(const BatchNorm2dParams& p, const std::vector<float>& x, int c, double* mean, double* var) {
  double sum = 0, m2 = 0;
  for (int n = 0; n < p.batch; ++n)
    for (int s = 0; s < p.spatial; ++s) sum += x[(size_t(n) * p.channels + c) * p.spatial + s];
  const double count = double(p.batch) * p.spatial;
  *mean = sum / count;
  for (int n = 0; n < p.batch; ++n)
    for (int s = 0; s < p.spatial; ++s) {
      const double d = x[(size_t(n) * p.channels + c) * p.spatial + s] - *mean;
      m2 += d * d;
    }
  *var = m2 / count;
}

// The forward statistics as the kernels make them: per-thread ShiftedSums, summed per block, the blocks' partials
// merged in split order, then channel_moments. Equal to the direct double statistics to ~1e-12, for data centred
// at 3 (spread 2) and at 100 (spread 0.1, where unshifted fp32 sums would lose every digit of the variance).
TEST(BatchNorm2dPlan, MergedPartialsMatchDoubleStatistics) {
  const BatchNorm2dParams shapes[] = {params(2, 2, 8192), params(3, 1, 9001), params(5, 3, 4100),
                                      params(128, 64, 1024), params(7, 1, 13), params(2, 1, 1)};
  struct Data {
    float mean;
    double spread;
  };
  for (const Data data : {Data{3.0f, 2.0}, Data{100.0f, 0.1}})
    for (const BatchNorm2dParams& p : shapes) {
      SCOPED_TRACE(describe(p) + " mean " + std::to_string(data.mean) + " spread " + std::to_string(data.spread));
      std::vector<float> x = testing::random_vector<float>(p.size(), 77, data.spread);
      for (float& v : x) v += data.mean;
      const BnSplitPlan plan = plan_batch_norm2d(p);
      // [channel][split][thread] sums, then blocks, then channels.
      std::vector<cuda::detail::ShiftedSums> threads(size_t(plan.blocks()) * kBnThreads, {0.0, 0.0});
      walk_all(p, plan, plan.unit, [&](int c, int split, int t, int64_t offset) {
        const float pivot = x[size_t(c) * p.spatial];
        for (int j = 0; j < plan.unit; ++j)
          threads[(size_t(c) * plan.splits + split) * kBnThreads + t].add(x[size_t(offset + j)], pivot);
      });
      for (int c = 0; c < p.channels; ++c) {
        cuda::detail::ShiftedSums channel{0.0, 0.0};
        for (int split = 0; split < plan.splits; ++split) {
          cuda::detail::ShiftedSums block{0.0, 0.0};
          for (int t = 0; t < kBnThreads; ++t) block = block + threads[(size_t(c) * plan.splits + split) * kBnThreads + t];
          channel = channel + block;
        }
        const cuda::detail::ChannelMoments m =
            cuda::detail::channel_moments(channel, x[size_t(c) * p.spatial], plan.count);
        double mean, var;
        direct_moments(p, x, c, &mean, &var);
        EXPECT_NEAR(m.mean, mean, 1e-12 * (std::abs(mean) + std::sqrt(var))) << "channel " << c;
        EXPECT_NEAR(m.var, var, 1e-10 * var + 1e-300) << "channel " << c;
        if (plan.count > 1) {
          EXPECT_NEAR(m.unbiased_var, var * plan.count / (plan.count - 1), 1e-10 * var + 1e-300);
        }
      }
    }
}

// Backward's per-channel sums through the same emulation, against double sums of the same fp32 per-element values
// (g and g·x̂ rounded as the kernels round them): the split and merge must not change them beyond double rounding.
TEST(BatchNorm2dPlan, MergedGradientSumsMatchDirectSums) {
  const BatchNorm2dParams p = params(5, 3, 4100);
  const std::vector<float> x = testing::random_vector<float>(p.size(), 5, 2.0);
  const std::vector<float> dy = testing::random_vector<float>(p.size(), 6, 1.0);
  const BnSplitPlan plan = plan_batch_norm2d(p);
  ASSERT_GT(plan.splits, 1);
  cuda::detail::BnChannelConsts k{0.25f, 0.5f, 0.6f, 0.1f, 0.3f};  // mean, invstd, scale, shift, PReLU slope
  std::vector<cuda::detail::GradSums> partials(size_t(plan.blocks()), {0.0, 0.0, 0.0});
  walk_all(p, plan, plan.unit, [&](int c, int split, int, int64_t offset) {
    for (int j = 0; j < plan.unit; ++j)
      cuda::detail::add_grad<cuda::Activation::kPrelu>(partials[size_t(c) * plan.splits + split], x[size_t(offset + j)],
                                                       dy[size_t(offset + j)], k);
  });
  for (int c = 0; c < p.channels; ++c) {
    cuda::detail::GradSums merged{0.0, 0.0, 0.0}, direct{0.0, 0.0, 0.0};
    for (int split = 0; split < plan.splits; ++split) merged = merged + partials[size_t(c) * plan.splits + split];
    double scale_g = 0, scale_g_xhat = 0, scale_slope = 0;
    for (int n = 0; n < p.batch; ++n)
      for (int s = 0; s < p.spatial; ++s) {
        const size_t i = (size_t(n) * p.channels + c) * p.spatial + s;
        const float z = cuda::detail::pre_activation(x[i], k);
        const float g = z > 0.0f ? dy[i] : dy[i] * k.slope;
        const float g_xhat = g * ((x[i] - k.mean) * k.invstd);
        direct.g += g;
        direct.g_xhat += g_xhat;
        if (!(z > 0.0f)) direct.slope += double(z * dy[i]);
        scale_g += std::abs(g);
        scale_g_xhat += std::abs(g_xhat);
        scale_slope += std::abs(z * dy[i]);
      }
    EXPECT_NEAR(merged.g, direct.g, 1e-13 * scale_g) << "channel " << c;
    EXPECT_NEAR(merged.g_xhat, direct.g_xhat, 1e-13 * scale_g_xhat) << "channel " << c;
    EXPECT_NEAR(merged.slope, direct.slope, 1e-13 * scale_slope) << "channel " << c;
  }
}

TEST(BatchNorm2dPlan, WorkspaceBytesFollowThePlan) {
  for (const BatchNorm2dParams& p : test_shapes()) {
    SCOPED_TRACE(describe(p));
    const BnSplitPlan plan = plan_batch_norm2d(p);
    const size_t blocks = size_t(plan.blocks());
    EXPECT_EQ(cuda::batch_norm2d_forward_train_workspace_bytes(p), plan.splits > 1 ? blocks * 2 * sizeof(double) : 0);
    EXPECT_EQ(cuda::batch_norm2d_backward_workspace_bytes(p), plan.splits > 1 ? blocks * 3 * sizeof(double) : 0);
  }
}

// A split shape without its workspace is refused before anything is launched (so this needs no GPU).
TEST(BatchNorm2dPlan, RejectsMissingWorkspace) {
  const BatchNorm2dParams p = params(2, 2, 8192);
  ASSERT_GT(plan_batch_norm2d(p).splits, 1);
  float* device = reinterpret_cast<float*>(uintptr_t(256));  // never dereferenced: the call throws first
  EXPECT_THROW(cuda::batch_norm2d_forward_train(p, {}, device, device, device, nullptr, nullptr, device, device, device,
                                                nullptr, nullptr),
               std::invalid_argument);
  EXPECT_THROW(cuda::batch_norm2d_backward(p, {}, device, device, device, nullptr, device, device, device, device,
                                           device, nullptr, nullptr, nullptr),
               std::invalid_argument);
}

// The CUDA backend asks the plan for the training kernels' workspace through the scratch functions of its dispatch
// table (building the table and the graph touches no device).
TEST(BatchNorm2dPlan, DispatchTableRequestsTheWorkspace) {
  Graph g;
  Builder b(g);
  b.batch_norm2d(b.input("x", Shape{2, 2, 128, 64}), "bn");  // 16,384 values per channel: two splits
  const Node* train = nullptr;
  for (const Node& n : g.nodes())
    if (n.op == OpKind::kBatchNorm2dTrain) train = &n;
  ASSERT_NE(train, nullptr);
  const BatchNorm2dParams p = params(2, 2, 128 * 64);
  ASSERT_GT(plan_batch_norm2d(p).splits, 1);
  for (auto kernels : {CudaBackendOptions::kCustom, CudaBackendOptions::kCudnn, CudaBackendOptions::kAuto}) {
    const DispatchTable table = cuda_backend::make_cuda_dispatch_table(kernels);
    const KernelEntry& forward = table[static_cast<size_t>(OpKind::kBatchNorm2dTrain)];
    ASSERT_NE(forward.scratch_floats, nullptr);
    EXPECT_EQ(size_t(forward.scratch_floats(g, *train)) * sizeof(float),
              cuda::batch_norm2d_forward_train_workspace_bytes(p));
    EXPECT_NE(table[static_cast<size_t>(OpKind::kBatchNorm2dBackward)].scratch_floats, nullptr);
  }
}

}  // namespace
}  // namespace gancu
