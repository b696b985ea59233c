// Private to the batch-norm kernels (kernels/cuda/batch_norm2d.cu): how a channel's batch·spatial values are split
// over thread blocks, how a thread walks its share without dividing per element, the per-thread accumulators, the
// per-channel statistics made from the merged partial sums, and the per-element activation math. Plain C++ with
// __host__ __device__ annotations, so the host tests (tests/gpu/test_batch_norm2d_plan.cpp) run the very same
// traversal and arithmetic through a scalar loop; no GPU needed to check coverage and numerics.
//
// Numerics (why double sums around a per-channel pivot, not per-element Welford): each thread accumulates
// Σd and Σd² of d = x − pivot in double, pivot = the channel's first value. Shifting by a value of the data makes the
// final m2 = Σd² − (Σd)²/n lose only log10(((mean − pivot)² + var)/var) digits, ~1 for a pivot within 3σ of the mean,
// whatever the mean's size relative to the spread (mean 100, std 0.1 would cost 6 digits unshifted). Double sums of
// up to 2³⁰ terms keep ~1e-16·√n ≈ 1e-12 relative error; d = double(x) − pivot is exact (two floats' difference fits
// a double), so the only fp32 rounding that reaches the statistics is the final conversion to float. (An fp32
// d = fl(x − pivot) would add up to 2⁻²⁴|d| per value, ~3e-10 relative on the variance of 131,072 values: harmless,
// but the host tests could then not check the merge to 1e-10.) Sums are additive, so the per-block partials merge
// by plain addition in a fixed order (no Chan merge, no division per element as Welford's running mean needs). The
// cost per value is a float→double conversion, two DADDs and a DFMA: ~4 values/clock/SM are needed to stream at
// 4.3 TB/s on an H200, against 64 FP64 FMA/clock/SM and 16 conversions/clock/SM, so memory stays the limit.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/batch_norm2d.h"
#include "kernels/cuda/conv_problems.cuh"  // FastDivmod, GANCU_HD, kTargetBlocks (the shared block-count target)
#include "kernels/params.h"

namespace gancu::cuda::detail {

inline constexpr int kBnThreads = 512;
// The plan assumes two resident blocks per SM (kTargetBlocks = 2·132): the kernels' launch bounds make ptxas keep them
// at ≤ 64 registers, so a code change cannot silently halve occupancy and add a tail wave.
inline constexpr int kBnBlocksPerSm = 2;
// Below 16 values per thread a split's fixed cost (block reduction, partial round trip) outweighs its parallelism.
inline constexpr int kBnMinSplitValues = 16 * kBnThreads;
inline constexpr int kBnMaxSplits = 64;                // ≤ kBnThreads: one thread per partial in the merge
inline constexpr int64_t kBnMaxChannelValues = int64_t(1) << 30;  // 32-bit unit indices with room for the stride

// How one channel's count = batch·spatial values are cut into `splits` chunks, each reduced by one block. A pure
// function of the shape (never of the device), so the workspace size is known before any launch and every run and
// replay makes the same cuts: bit-identical results. Values of a channel are numbered k = n·spatial + s.
struct BnSplitPlan {
  int channels = 1;
  int count = 0;   // values per channel, batch·spatial (≤ kBnMaxChannelValues)
  int unit = 1;    // 4 when spatial % 4 == 0: every chunk boundary is then a float4 boundary of its row
  int splits = 1;  // blocks per channel
  int chunk = 0;   // values per split, a multiple of unit; only the last split may be shorter, none is empty

  GANCU_HD int begin(int split) const { return split * chunk; }
  GANCU_HD int end(int split) const { return split + 1 == splits ? count : (split + 1) * chunk; }
  int64_t blocks() const { return int64_t(channels) * splits; }
};

// As many splits as keep channels·splits ≤ kTargetBlocks (two 512-thread blocks per SM of a 132-SM part: every block
// of a pass resident at once, no tail wave, also for the backward kernels whose ~64 registers allow only two such
// blocks per SM), none under kBnMinSplitValues values, at most kBnMaxSplits. Channels > kTargetBlocks/2 keep one.
inline BnSplitPlan plan_batch_norm2d(const BatchNorm2dParams& p) {
  BnSplitPlan plan;
  plan.channels = p.channels;
  const int64_t count = std::clamp<int64_t>(int64_t(p.batch) * p.spatial, 1, kBnMaxChannelValues);
  plan.count = int(count);
  plan.unit = p.spatial % 4 == 0 ? 4 : 1;
  const int64_t wanted = kTargetBlocks / std::max(p.channels, 1);
  const int64_t splits = std::max<int64_t>(1, std::min<int64_t>({wanted, count / kBnMinSplitValues, kBnMaxSplits}));
  int64_t chunk = (count + splits - 1) / splits;
  chunk = (chunk + plan.unit - 1) / plan.unit * plan.unit;
  plan.chunk = int(chunk);
  plan.splits = int((count + chunk - 1) / chunk);  // rounding the chunk up may leave fewer splits
  return plan;
}

// Partial sums in the workspace: channel-major, [channels][splits][kSums] doubles, written once per launch.
inline constexpr int kForwardSums = 2;   // Σd, Σd²
inline constexpr int kBackwardSums = 3;  // Σg, Σg·x̂, Σ_{z≤0} z·dy
inline int64_t bn_partial_doubles(const BnSplitPlan& plan, int sums) {
  return plan.splits > 1 ? plan.blocks() * sums : 0;  // one split: the block finishes its channel alone
}

// The values of channel c as units of kVec consecutive floats of one row: unit u of the channel is row (image)
// n = u / units_per_row, floats [(u mod units_per_row)·kVec, +kVec) of that row. One 32-bit multiply-high divmod
// per unit, no 64-bit division.
struct BnChannelWalk {
  FastDivmod units_per_row;  // spatial / kVec
  int vec = 1;               // kVec
  int64_t image_stride = 0;  // channels·spatial floats between one image's channel c and the next image's
  int64_t channel_offset = 0;  // c·spatial

  GANCU_HD int64_t offset(int u) const {
    int n, r;
    units_per_row.divmod(u, n, r);
    return n * image_stride + channel_offset + int64_t(r) * vec;
  }
};

// FastDivmod's constructor loops: build the divisor once on the host and hand it to every block.
struct BnWalkShape {
  FastDivmod units_per_row;
  int vec = 1, spatial = 1;
  int64_t image_stride = 0;
  GANCU_HD BnChannelWalk channel(int c) const {
    return BnChannelWalk{units_per_row, vec, image_stride, int64_t(c) * spatial};
  }
};
inline BnWalkShape make_walk_shape(const BatchNorm2dParams& p, int vec) {
  return BnWalkShape{FastDivmod(p.spatial / vec), vec, p.spatial, int64_t(p.channels) * p.spatial};
}

// ---- accumulators -------------------------------------------------------------------------------------------------

// Σd and Σd² of d = x − pivot (see the numerics note at the top).
struct ShiftedSums {
  double sum, sum_sq;
  GANCU_HD void add(float x, double pivot) {
    const double d = double(x) - pivot;
    sum += d;
    sum_sq = fma(d, d, sum_sq);
  }
  GANCU_HD ShiftedSums operator+(const ShiftedSums& o) const { return ShiftedSums{sum + o.sum, sum_sq + o.sum_sq}; }
};

struct ChannelMoments {
  double mean, var, unbiased_var;  // var biased (normalisation), unbiased_var for running_var (count ≥ 2)
};
GANCU_HD ChannelMoments channel_moments(const ShiftedSums& s, float pivot, int count) {
  const double n = double(count);
  const double shift = s.sum / n;                       // mean − pivot
  const double m2 = fmax(fma(-s.sum, shift, s.sum_sq), 0.0);  // Σ(x − mean)², never negative after rounding
  return ChannelMoments{double(pivot) + shift, m2 / n, count > 1 ? m2 / (n - 1.0) : 0.0};
}

// What training saves for backward, as floats: y and backward both normalise with exactly these.
struct SavedStats {
  float mean, invstd;  // invstd = 1/sqrt(var + eps), var biased
};
GANCU_HD SavedStats saved_stats(const ChannelMoments& m, double eps) {
  return SavedStats{float(m.mean), float(1.0 / sqrt(m.var + eps))};
}
// PyTorch's running statistics: r = (1 − momentum)·r + momentum·stat (stat: the mean, or the unbiased variance).
GANCU_HD float running_update(float running, float stat, float momentum) {
  return (1.0f - momentum) * running + momentum * stat;
}

// Backward's per-channel sums, g = dy·act′(z): Σg (dbeta), Σg·x̂ (dgamma), Σ over z ≤ 0 of z·dy (PReLU slope).
struct GradSums {
  double g, g_xhat, slope;
  GANCU_HD GradSums operator+(const GradSums& o) const {
    return GradSums{g + o.g, g_xhat + o.g_xhat, slope + o.slope};
  }
};

// ---- per-element math, shared by forward, backward and inference --------------------------------------------------

// A channel's constants for its per-element work.
struct BnChannelConsts {
  float mean, invstd;
  float scale;  // gamma·invstd (training) or gamma/sqrt(running_var + eps) (inference)
  float shift;  // beta
  float slope;  // the activation's negative-side factor
};

// z = (x − mean)·scale + shift. Forward and backward both call this with the same float mean and scale, so
// backward's recomputed z (and the sign that picks the activation branch) is bit-identical to forward's.
GANCU_HD float pre_activation(float x, const BnChannelConsts& k) { return fmaf(x - k.mean, k.scale, k.shift); }

// Negative-side factor of the activation (the slope for z ≤ 0; PyTorch takes this branch at z == 0).
template <Activation kAct> GANCU_HD float negative_slope(float leaky, float prelu) {
  if constexpr (kAct == Activation::kNone) return 1.0f;
  else if constexpr (kAct == Activation::kRelu) return 0.0f;
  else if constexpr (kAct == Activation::kLeakyRelu) return leaky;
  else return prelu;
}

template <Activation kAct> GANCU_HD float activate(float z, float slope) {
  if constexpr (kAct == Activation::kNone) return z;
  else if constexpr (kAct == Activation::kRelu) return z > 0.0f ? z : 0.0f;
  else return z > 0.0f ? z : slope * z;
}

// Training's constants from the saved statistics; forward and backward both build them here, so they are the same
// floats. `beta` only matters with an activation (its branch); backward passes 0 without one.
template <Activation kAct>
GANCU_HD BnChannelConsts train_consts(SavedStats s, float gamma, float beta, float leaky, float prelu) {
  return BnChannelConsts{s.mean, s.invstd, gamma * s.invstd, beta, negative_slope<kAct>(leaky, prelu)};
}

// g = dy·act′(z) for one value (z recomputed from x), and its contribution to the channel's sums.
template <Activation kAct> GANCU_HD float activation_grad(float x, float dy, const BnChannelConsts& k, float* z_dy) {
  float g = dy;
  if constexpr (kAct != Activation::kNone) {
    const float z = pre_activation(x, k);
    if (!(z > 0.0f)) {
      g *= k.slope;
      if (z_dy != nullptr) *z_dy = z * dy;
    }
  }
  return g;
}
template <Activation kAct> GANCU_HD void add_grad(GradSums& s, float x, float dy, const BnChannelConsts& k) {
  float z_dy = 0.0f;
  const float g = activation_grad<kAct>(x, dy, k, kAct == Activation::kPrelu ? &z_dy : nullptr);
  s.g += double(g);
  s.g_xhat += double(g * ((x - k.mean) * k.invstd));
  if constexpr (kAct == Activation::kPrelu) s.slope += double(z_dy);
}

// mean(g) and mean(g·x̂) of a channel from its double sums.
GANCU_HD float channel_mean(double sum, int count) { return float(sum / double(count)); }

// dx = scale·(g − mean(g) − x̂·mean(g·x̂)), the float expression of the earlier one-block-per-channel kernel.
template <Activation kAct>
GANCU_HD float input_grad(float x, float dy, const BnChannelConsts& k, float mean_g, float mean_g_xhat) {
  const float g = activation_grad<kAct>(x, dy, k, nullptr);
  const float xhat = (x - k.mean) * k.invstd;
  return k.scale * (g - mean_g - xhat * mean_g_xhat);
}

}  // namespace gancu::cuda::detail
