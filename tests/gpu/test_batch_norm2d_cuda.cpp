// GPU tests: fused batch_norm2d + activation (kernels/cuda/batch_norm2d.h) and the cuDNN baseline
// (kernels/cudnn/batch_norm2d.h) against the fp64 reference, ref::batch_norm2d_* followed by ref::<activation>.
// Tests whose name contains "Small" use tiny shapes only; tools/gpu_check.sh runs those under compute-sanitizer. Their
// shapes reach every kernel: one block per channel (the fused kernels) and several (partials, then merge), each with
// float4 and scalar loads. The split plan itself is tested without a GPU in test_batch_norm2d_plan.cpp.
#include <cudnn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/activations.h"
#include "kernels/cpu/batch_norm2d.h"
#include "kernels/cuda/batch_norm2d.h"
#include "kernels/cuda/batch_norm2d_plan.h"
#include "kernels/cudnn/batch_norm2d.h"
#include "tests/gpu/gpu_test.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using cuda::Activation;
using testing::close_rel_l2;
using testing::poisoned_vector;
using testing::random_vector;
using testing::rel_l2_error;

// fp32 kernel against the fp64-accumulated reference. The per-channel statistics (mean, invstd, running stats) and
// the parameter gradients are sums over up to 147,456 values per channel, accumulated in fp32 per thread and merged
// in a tree: their error stays ~1e-6 relative, so the same 1e-5 bound holds for them. The gradients are measured
// against the size of the terms they are computed from (scaled_error below), since they can cancel far below it (dx on
// the minimal shape: ~5e-2 relative to dx itself in a host emulation of the kernel, ~1e-7 relative to its terms).
constexpr double kTol = 1e-5;
// cuDNN's reduction algorithm is not ours to inspect; it is a baseline, checked for semantics (notably the unbiased
// running variance, which differs from the biased one by n/(n−1): 0.05% or more on every shape here but the largest,
// and ×2 on the minimal one) rather than for the last digit.
constexpr double kCudnnTol = 1e-4;

// A device copy of a host vector; to_host() copies back (synchronously: tests only).
std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// ‖a − b‖₂ / max(‖b‖₂, ‖scale‖₂), b the reference and `scale` the size of the terms b is computed from. Where the
// result is as large as its terms this is rel_l2_error; where the terms cancel it stays the meaningful measure.
// Example: with two values per channel, x̂ = ±√(var/(var + eps)) and dx = γσ⁻¹(g − mean(g) − x̂·mean(g·x̂)) is
// γσ⁻¹·(g₁ − g₂)/2·eps/(var + eps), five orders of magnitude below its terms: any fp32 evaluation (ours, cuDNN's,
// PyTorch's) is then a few percent off relative to dx itself, 1e-7 relative to its terms. Likewise a per-channel sum of
// random-sign terms (dβ = Σg) may cancel well below the terms' own size ‖g‖₂.
double scaled_error(const std::vector<float>& a, const std::vector<double>& b, const std::vector<double>& scale) {
  if (a.size() != b.size() || b.size() != scale.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den_b = 0, den_scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = double(a[i]) - b[i];
    num += d * d;
    den_b += b[i] * b[i];
    den_scale += scale[i] * scale[i];
  }
  if (std::isnan(num)) return std::numeric_limits<double>::quiet_NaN();
  const double den = std::max(den_b, den_scale);
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// The sizes of the terms behind each gradient, from the reference's g = dy·act′(z) (g = dy without activation):
// dx_i ← γσ⁻¹·g_i; dβ_c ← ‖g‖₂ over the channel; dγ_c ← ‖g·x̂‖₂; PReLU slope_c ← ‖z·dy‖₂ over z ≤ 0.
struct GradScales {
  std::vector<double> dx, dgamma, dbeta, dslope;
};
GradScales grad_scales(const BatchNorm2dParams& p, const std::vector<double>& x, const std::vector<double>& gamma,
                       const std::vector<double>& save_mean, const std::vector<double>& save_invstd,
                       const std::vector<double>& g, const std::vector<double>& z, const std::vector<double>& dy) {
  GradScales s;
  s.dx.resize(size_t(p.size()));
  s.dgamma.assign(size_t(p.channels), 0.0);
  s.dbeta.assign(size_t(p.channels), 0.0);
  s.dslope.assign(size_t(p.channels), 0.0);
  for (int n = 0; n < p.batch; ++n)
    for (int c = 0; c < p.channels; ++c)
      for (int k = 0; k < p.spatial; ++k) {
        const size_t i = (size_t(n) * p.channels + c) * p.spatial + k;
        const double xhat = (x[i] - save_mean[c]) * save_invstd[c];
        s.dx[i] = gamma[c] * save_invstd[c] * g[i];
        s.dbeta[c] += g[i] * g[i];
        s.dgamma[c] += g[i] * xhat * g[i] * xhat;
        if (!z.empty() && !(z[i] > 0)) s.dslope[c] += z[i] * dy[i] * z[i] * dy[i];
      }
  for (auto* v : {&s.dgamma, &s.dbeta, &s.dslope})
    for (double& e : *v) e = std::sqrt(e);
  return s;
}

struct BnShape {
  const char* name;
  int batch, channels, spatial;
};

// Odd shapes: one channel, batch 1, 1×1 maps, the smallest legal count (2 values per channel), sizes not a multiple
// of 4 (the scalar path) and a multiple of 4 (the float4 path); then channels split over 2-3 blocks (few channels,
// ≥ 2·kBnMinSplitValues values each): float4, scalar, and a last split shorter than the others.
const BnShape kSmallShapes[] = {{"one_channel 7x1x13", 7, 1, 13},       {"batch1 1x5x3x3", 1, 5, 9},
                                {"1x1 maps 4x3x1x1", 4, 3, 1},          {"minimal 2x1x1x1", 2, 1, 1},
                                {"odd 3x6x5x5", 3, 6, 25},              {"vec4 2x3x4x4", 2, 3, 16},
                                {"split vec4 2x2x8192", 2, 2, 8192},    {"split scalar 3x1x9001", 3, 1, 9001},
                                {"split ragged 5x3x4100", 5, 3, 4100}};
// DCGAN discriminators normalise the same shapes as their generators (512x4x4, 256x8x8, 128x16x16), so these cover
// both networks. SRGAN: 64 channels at 24x24 (residual blocks), 48x48 and 96x96.
const BnShape kModelShapes[] = {
    {"dcgan32 64x512x4x4", 64, 512, 16},      {"dcgan32 64x256x8x8", 64, 256, 64},
    {"dcgan32 64x128x16x16", 64, 128, 256},   {"dcgan64 128x512x4x4", 128, 512, 16},
    {"dcgan64 128x256x8x8", 128, 256, 64},    {"dcgan64 128x128x16x16", 128, 128, 256},
    {"dcgan64 128x64x32x32", 128, 64, 1024},  {"srgan 16x64x24x24", 16, 64, 576},
    {"srgan 16x64x48x48", 16, 64, 2304},      {"srgan 16x64x96x96", 16, 64, 9216}};

const Activation kActivations[] = {Activation::kNone, Activation::kRelu, Activation::kLeakyRelu, Activation::kPrelu};
constexpr float kLeakySlope = 0.2f;

const char* name(Activation a) {
  switch (a) {
    case Activation::kNone: return "none";
    case Activation::kRelu: return "relu";
    case Activation::kLeakyRelu: return "leaky_relu";
    case Activation::kPrelu: return "prelu";
  }
  return "?";
}

// Host inputs for one case. x has mean 3 and spread 2 by default so a naive E[x²]−E[x]² variance would lose digits.
struct BnInputs {
  BatchNorm2dParams p;
  std::vector<float> x, gamma, beta, prelu_slope, running_mean, running_var, dy;
  BnInputs(const BnShape& s, uint64_t seed, float x_mean = 3.0f, double x_std = 2.0) {
    p.batch = s.batch;
    p.channels = s.channels;
    p.spatial = s.spatial;
    const int64_t n = p.size();
    x = random_vector<float>(n, seed, x_std);
    for (auto& v : x) v += x_mean;
    gamma = random_vector<float>(s.channels, seed + 1, 0.2);
    for (auto& v : gamma) v += 1.0f;
    beta = random_vector<float>(s.channels, seed + 2, 0.5);
    prelu_slope = random_vector<float>(s.channels, seed + 3, 0.05);
    for (auto& v : prelu_slope) v += 0.25f;
    running_mean = random_vector<float>(s.channels, seed + 4);
    running_var = random_vector<float>(s.channels, seed + 5);
    for (auto& v : running_var) v = std::abs(v) + 0.5f;
    dy = random_vector<float>(n, seed + 6);
  }
};

cuda::BnActivation make_activation(Activation kind, const float* prelu_slope_device) {
  cuda::BnActivation act;
  act.kind = kind;
  act.leaky_slope = kLeakySlope;
  act.prelu_slope = prelu_slope_device;
  return act;
}

// Reference activation on z (in place into y) and its backward (dy → g, plus the PReLU slope gradient).
void ref_activation(Activation kind, const BatchNorm2dParams& p, const std::vector<double>& slope,
                    const std::vector<double>& z, std::vector<double>& y) {
  const int64_t n = p.size();
  switch (kind) {
    case Activation::kNone: y = z; break;
    case Activation::kRelu: ref::relu_forward<double>(n, z.data(), y.data()); break;
    case Activation::kLeakyRelu: ref::leaky_relu_forward<double>(n, double(kLeakySlope), z.data(), y.data()); break;
    case Activation::kPrelu:
      ref::prelu_forward<double>(p.batch, p.channels, p.spatial, z.data(), slope.data(), y.data());
      break;
  }
}
void ref_activation_backward(Activation kind, const BatchNorm2dParams& p, const std::vector<double>& slope,
                             const std::vector<double>& z, const std::vector<double>& dy, std::vector<double>& g,
                             std::vector<double>& dslope) {
  const int64_t n = p.size();
  switch (kind) {
    case Activation::kNone: g = dy; break;
    case Activation::kRelu: ref::relu_backward<double>(n, z.data(), dy.data(), g.data()); break;
    case Activation::kLeakyRelu:
      ref::leaky_relu_backward<double>(n, double(kLeakySlope), z.data(), dy.data(), g.data());
      break;
    case Activation::kPrelu:
      ref::prelu_backward<double>(p.batch, p.channels, p.spatial, z.data(), slope.data(), dy.data(), g.data(),
                                  dslope.data());
      break;
  }
}

// The training kernels' workspace, sized by the API for the larger of forward and backward, NaN-poisoned: a merge
// that read a partial no block wrote would spread NaN into every output of the channel.
DeviceArray<double> make_workspace(const BatchNorm2dParams& p) {
  const size_t bytes = std::max(cuda::batch_norm2d_forward_train_workspace_bytes(p),
                                cuda::batch_norm2d_backward_workspace_bytes(p));
  return DeviceArray<double>(poisoned_vector<double>(int64_t(bytes / sizeof(double))));
}

// Extra relative error allowed on y, dx and the parameter gradients when the mean is large against the spread:
// save_mean is a float (the API's, and backward must normalise with the same value as forward), so x̂ = (x − mean)·
// invstd carries mean's rounding, up to ulp(mean)/2·invstd, whatever the accumulation. Taken per channel from the
// reference statistics (a channel of 2-4 values may have far less spread than the data's), doubled because the
// outputs' RMS can be half of x̂'s (ReLU zeroes half of y). ~1e-7 for the default inputs (mean 3, spread 2), ~8e-5
// for mean 100 and spread 0.1.
double mean_rounding(const std::vector<double>& save_mean, const std::vector<double>& save_invstd) {
  double worst = 0;
  for (size_t c = 0; c < save_mean.size(); ++c) {
    const float mean = float(save_mean[c]);
    const double ulp = double(std::nextafter(std::abs(mean), std::numeric_limits<float>::infinity())) - std::abs(mean);
    worst = std::max(worst, 0.5 * ulp * save_invstd[c]);
  }
  return 2 * worst;
}

// What one training forward + backward produced, copied to the host.
struct TrainOutputs {
  std::vector<float> y, save_mean, save_invstd, running_mean, running_var, dx, dgamma, dbeta, dslope;
};

TrainOutputs run_on_gpu(const BnInputs& in, Activation kind) {
  const BatchNorm2dParams& p = in.p;
  const int64_t n = p.size();
  const int channels = p.channels;
  DeviceArray<float> d_x(in.x), d_gamma(in.gamma), d_beta(in.beta), d_slope(in.prelu_slope), d_dy(in.dy);
  DeviceArray<float> d_running_mean(in.running_mean), d_running_var(in.running_var);
  DeviceArray<float> d_y(poisoned_vector<float>(n)), d_save_mean(poisoned_vector<float>(channels)),
      d_save_invstd(poisoned_vector<float>(channels)), d_dx(poisoned_vector<float>(n)),
      d_dgamma(poisoned_vector<float>(channels)), d_dbeta(poisoned_vector<float>(channels)),
      d_dslope(poisoned_vector<float>(channels));
  DeviceArray<double> d_workspace = make_workspace(p);
  const cuda::BnActivation act = make_activation(kind, d_slope.get());
  cuda::batch_norm2d_forward_train(p, act, d_x.get(), d_gamma.get(), d_beta.get(), d_running_mean.get(),
                                   d_running_var.get(), d_y.get(), d_save_mean.get(), d_save_invstd.get(),
                                   d_workspace.get(), nullptr);
  cuda::batch_norm2d_backward(p, act, d_dy.get(), d_x.get(), d_gamma.get(), d_beta.get(), d_save_mean.get(),
                              d_save_invstd.get(), d_dx.get(), d_dgamma.get(), d_dbeta.get(), d_dslope.get(),
                              d_workspace.get(), nullptr);
  GANCU_CUDA_CHECK(cudaDeviceSynchronize());
  return TrainOutputs{d_y.to_host(),  d_save_mean.to_host(), d_save_invstd.to_host(), d_running_mean.to_host(),
                      d_running_var.to_host(), d_dx.to_host(), d_dgamma.to_host(), d_dbeta.to_host(),
                      d_dslope.to_host()};
}

// The kernels' arithmetic on the host, no GPU needed: the same split plan and walk, per-thread double sums, the
// partials merged in split order, and the same per-element and per-channel functions (batch_norm2d_plan.h). Only
// the order in which a block adds its threads' sums differs (cub's tree here is a loop), in double.
template <Activation kAct> TrainOutputs emulate_kernels(const BnInputs& in) {
  namespace d = cuda::detail;
  const BatchNorm2dParams& p = in.p;
  const d::BnSplitPlan plan = d::plan_batch_norm2d(p);
  const d::BnWalkShape shape = d::make_walk_shape(p, plan.unit);
  TrainOutputs out{poisoned_vector<float>(p.size()), poisoned_vector<float>(p.channels),
                   poisoned_vector<float>(p.channels), in.running_mean, in.running_var,
                   poisoned_vector<float>(p.size()), poisoned_vector<float>(p.channels),
                   poisoned_vector<float>(p.channels), poisoned_vector<float>(p.channels)};
  // Calls f(thread, offset of a unit) for every unit of channel c in kernel order (split by split).
  auto for_each_unit = [&](int c, auto&& f) {
    const d::BnChannelWalk walk = shape.channel(c);
    for (int split = 0; split < plan.splits; ++split)
      for (int t = 0; t < d::kBnThreads; ++t)
        for (int u = plan.begin(split) / plan.unit + t; u < plan.end(split) / plan.unit; u += d::kBnThreads)
          f(split * d::kBnThreads + t, walk.offset(u));
  };
  const int threads = plan.splits * d::kBnThreads;
  for (int c = 0; c < p.channels; ++c) {
    const float prelu = kAct == Activation::kPrelu ? in.prelu_slope[size_t(c)] : 0.0f;
    const float pivot = in.x[size_t(shape.channel(c).channel_offset)];
    std::vector<d::ShiftedSums> sums(size_t(threads), {0.0, 0.0});
    for_each_unit(c, [&](int t, int64_t i) {
      for (int j = 0; j < plan.unit; ++j) sums[size_t(t)].add(in.x[size_t(i + j)], pivot);
    });
    d::ShiftedSums total{0.0, 0.0};
    for (const d::ShiftedSums& s : sums) total = total + s;
    const d::ChannelMoments m = d::channel_moments(total, pivot, plan.count);
    const d::SavedStats stats = d::saved_stats(m, p.eps);
    out.save_mean[size_t(c)] = stats.mean;
    out.save_invstd[size_t(c)] = stats.invstd;
    float& running_mean = out.running_mean[size_t(c)];
    float& running_var = out.running_var[size_t(c)];
    running_mean = d::running_update(running_mean, stats.mean, float(p.momentum));
    running_var = d::running_update(running_var, float(m.unbiased_var), float(p.momentum));
    const d::BnChannelConsts k =
        d::train_consts<kAct>(stats, in.gamma[size_t(c)], in.beta[size_t(c)], kLeakySlope, prelu);
    for_each_unit(c, [&](int, int64_t i) {
      for (int j = 0; j < plan.unit; ++j)
        out.y[size_t(i + j)] = d::activate<kAct>(d::pre_activation(in.x[size_t(i + j)], k), k.slope);
    });

    const d::BnChannelConsts kb = d::train_consts<kAct>(
        stats, in.gamma[size_t(c)], kAct == Activation::kNone ? 0.0f : in.beta[size_t(c)], kLeakySlope, prelu);
    std::vector<d::GradSums> grads(size_t(threads), {0.0, 0.0, 0.0});
    for_each_unit(c, [&](int t, int64_t i) {
      for (int j = 0; j < plan.unit; ++j) d::add_grad<kAct>(grads[size_t(t)], in.x[size_t(i + j)], in.dy[size_t(i + j)], kb);
    });
    d::GradSums grad{0.0, 0.0, 0.0};
    for (const d::GradSums& g : grads) grad = grad + g;
    out.dbeta[size_t(c)] = float(grad.g);
    out.dgamma[size_t(c)] = float(grad.g_xhat);
    if (kAct == Activation::kPrelu) out.dslope[size_t(c)] = float(grad.slope);
    const float mean_g = d::channel_mean(grad.g, plan.count), mean_g_xhat = d::channel_mean(grad.g_xhat, plan.count);
    for_each_unit(c, [&](int, int64_t i) {
      for (int j = 0; j < plan.unit; ++j)
        out.dx[size_t(i + j)] =
            d::input_grad<kAct>(in.x[size_t(i + j)], in.dy[size_t(i + j)], kb, mean_g, mean_g_xhat);
    });
  }
  return out;
}

TrainOutputs emulate_kernels(const BnInputs& in, Activation kind) {
  switch (kind) {
    case Activation::kNone: return emulate_kernels<Activation::kNone>(in);
    case Activation::kRelu: return emulate_kernels<Activation::kRelu>(in);
    case Activation::kLeakyRelu: return emulate_kernels<Activation::kLeakyRelu>(in);
    case Activation::kPrelu: return emulate_kernels<Activation::kPrelu>(in);
  }
  throw std::invalid_argument("unknown activation");
}

enum class Runner { kGpu, kHostEmulation };

// Training forward + backward of one shape and activation against the reference.
void check_train(const BnShape& shape, Activation kind, uint64_t seed, float x_mean = 3.0f, double x_std = 2.0,
                 Runner runner = Runner::kGpu) {
  SCOPED_TRACE(std::string(shape.name) + " / " + name(kind) + " / plan: " +
               std::to_string(cuda::detail::plan_batch_norm2d({shape.batch, shape.channels, shape.spatial}).splits) +
               " splits per channel / " + (runner == Runner::kGpu ? "GPU" : "host emulation") + " / x mean " +
               std::to_string(x_mean) + ", spread " + std::to_string(x_std));
  BnInputs in(shape, seed, x_mean, x_std);
  const BatchNorm2dParams& p = in.p;
  const int64_t n = p.size();
  const int channels = p.channels;

  // Reference, in double.
  const std::vector<double> x = to_double(in.x), gamma = to_double(in.gamma), beta = to_double(in.beta),
                            slope = to_double(in.prelu_slope);
  std::vector<double> running_mean = to_double(in.running_mean), running_var = to_double(in.running_var);
  std::vector<double> z(n), y(n), save_mean(channels), save_invstd(channels);
  ref::batch_norm2d_forward_train<double>(p, x.data(), gamma.data(), beta.data(), running_mean.data(),
                                          running_var.data(), z.data(), save_mean.data(), save_invstd.data());
  ref_activation(kind, p, slope, z, y);
  // Near the kink the fp32 z and the fp64 z may fall on different sides; zero dy there so the choice of branch does
  // not matter (1e-3 is ≥ 100× the fp32 error of z, and zeroes ~0.1% of the elements).
  if (kind != Activation::kNone)
    for (int64_t i = 0; i < n; ++i)
      if (std::abs(z[i]) < 1e-3) in.dy[i] = 0.0f;
  const std::vector<double> dy = to_double(in.dy);
  std::vector<double> g(n), dslope(channels), dx(n), dgamma(channels), dbeta(channels);
  ref_activation_backward(kind, p, slope, z, dy, g, dslope);
  ref::batch_norm2d_backward<double>(p, g.data(), x.data(), gamma.data(), save_mean.data(), save_invstd.data(),
                                     dx.data(), dgamma.data(), dbeta.data());

  const TrainOutputs got = runner == Runner::kGpu ? run_on_gpu(in, kind) : emulate_kernels(in, kind);
  const std::vector<int64_t> tensor_shape = {p.batch, p.channels, p.spatial}, channel_shape = {p.channels};
  const double rounding = mean_rounding(save_mean, save_invstd);
  EXPECT_TRUE(close_rel_l2(got.y, y, kTol + rounding, tensor_shape)) << "y";
  EXPECT_TRUE(close_rel_l2(got.save_mean, save_mean, kTol, channel_shape)) << "save_mean";
  EXPECT_TRUE(close_rel_l2(got.save_invstd, save_invstd, kTol, channel_shape)) << "save_invstd";
  EXPECT_TRUE(close_rel_l2(got.running_mean, running_mean, kTol, channel_shape)) << "running_mean";
  EXPECT_TRUE(close_rel_l2(got.running_var, running_var, kTol, channel_shape)) << "running_var (unbiased)";
  const GradScales scales = grad_scales(p, x, gamma, save_mean, save_invstd, g, z, dy);
  EXPECT_LE(scaled_error(got.dx, dx, scales.dx), kTol + rounding) << "dx";
  EXPECT_LE(scaled_error(got.dgamma, dgamma, scales.dgamma), kTol + rounding) << "dgamma";
  EXPECT_LE(scaled_error(got.dbeta, dbeta, scales.dbeta), kTol + rounding) << "dbeta";
  if (kind == Activation::kPrelu) {
    EXPECT_LE(scaled_error(got.dslope, dslope, scales.dslope), kTol + rounding) << "dprelu_slope";
  }
}

void check_infer(const BnShape& shape, Activation kind, uint64_t seed) {
  SCOPED_TRACE(std::string(shape.name) + " / " + name(kind));
  BnInputs in(shape, seed);
  const BatchNorm2dParams& p = in.p;
  const int64_t n = p.size();
  const std::vector<double> x = to_double(in.x), gamma = to_double(in.gamma), beta = to_double(in.beta),
                            slope = to_double(in.prelu_slope), running_mean = to_double(in.running_mean),
                            running_var = to_double(in.running_var);
  std::vector<double> z(n), y(n);
  ref::batch_norm2d_forward_infer<double>(p, x.data(), gamma.data(), beta.data(), running_mean.data(),
                                          running_var.data(), z.data());
  ref_activation(kind, p, slope, z, y);

  DeviceArray<float> d_x(in.x), d_gamma(in.gamma), d_beta(in.beta), d_slope(in.prelu_slope),
      d_running_mean(in.running_mean), d_running_var(in.running_var), d_y(poisoned_vector<float>(n));
  cuda::batch_norm2d_forward_infer(p, make_activation(kind, d_slope.get()), d_x.get(), d_gamma.get(), d_beta.get(),
                                   d_running_mean.get(), d_running_var.get(), d_y.get(), nullptr);
  GANCU_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(close_rel_l2(d_y.to_host(), y, kTol, {p.batch, p.channels, p.spatial})) << "y";
}

TEST(BatchNorm2dCuda, SmallShapesTrain) {
  GANCU_REQUIRE_GPU();
  uint64_t seed = 100;
  for (const BnShape& s : kSmallShapes)
    for (Activation a : kActivations) check_train(s, a, seed += 10);
}

// Mean 100, spread 0.1: an unshifted fp32 Σx² − (Σx)²/n would lose every digit of the variance (its terms are 1e6
// times the result); the statistics must still meet the fp32 tolerance. y and dx are allowed mean_rounding() more.
TEST(BatchNorm2dCuda, SmallShapesTrainLargeMean) {
  GANCU_REQUIRE_GPU();
  uint64_t seed = 500;
  for (const BnShape& s : kSmallShapes)
    for (Activation a : {Activation::kNone, Activation::kPrelu}) check_train(s, a, seed += 10, 100.0f, 0.1);
}

// No GPU needed: the kernels' arithmetic emulated on the host (emulate_kernels) against the reference, on the small
// shapes (one and several splits, float4 and scalar walks), with default and large-mean inputs, and on DCGAN-64's
// widest split layer.
TEST(BatchNorm2dEmulation, TrainMatchesReference) {
  uint64_t seed = 700;
  for (const BnShape& s : kSmallShapes)
    for (Activation a : kActivations) {
      check_train(s, a, seed += 10, 3.0f, 2.0, Runner::kHostEmulation);
      check_train(s, a, seed += 10, 100.0f, 0.1, Runner::kHostEmulation);
    }
  check_train(kModelShapes[6], Activation::kRelu, seed += 10, 3.0f, 2.0, Runner::kHostEmulation);  // 128x64x32x32
}

TEST(BatchNorm2dCuda, ModelShapesTrain) {
  GANCU_REQUIRE_GPU();
  uint64_t seed = 1000;
  for (const BnShape& s : kModelShapes)
    for (Activation a : kActivations) check_train(s, a, seed += 10);
}

TEST(BatchNorm2dCuda, SmallShapesInfer) {
  GANCU_REQUIRE_GPU();
  uint64_t seed = 2000;
  for (const BnShape& s : kSmallShapes)
    for (Activation a : kActivations) check_infer(s, a, seed += 10);
}

TEST(BatchNorm2dCuda, ModelShapesInfer) {
  GANCU_REQUIRE_GPU();
  uint64_t seed = 3000;
  for (const BnShape& s : kModelShapes)
    for (Activation a : kActivations) check_infer(s, a, seed += 10);
}

// No float atomics: two runs give bit-identical outputs (what a CUDA graph replay relies on), on the largest shape
// (four splits per channel), a DCGAN shape with one split, and a split small shape.
void check_deterministic(const BnShape& shape, uint64_t seed) {
  SCOPED_TRACE(shape.name);
  BnInputs in(shape, seed);
  const int64_t n = in.p.size();
  const int channels = in.p.channels;
  DeviceArray<float> d_x(in.x), d_gamma(in.gamma), d_beta(in.beta), d_slope(in.prelu_slope), d_dy(in.dy);
  std::vector<std::vector<float>> first;
  for (int run = 0; run < 2; ++run) {
    DeviceArray<float> d_y(poisoned_vector<float>(n)), d_mean(poisoned_vector<float>(channels)),
        d_invstd(poisoned_vector<float>(channels)), d_dx(poisoned_vector<float>(n)),
        d_dgamma(poisoned_vector<float>(channels)), d_dbeta(poisoned_vector<float>(channels)),
        d_dslope(poisoned_vector<float>(channels));
    DeviceArray<double> d_workspace = make_workspace(in.p);
    const cuda::BnActivation act = make_activation(Activation::kPrelu, d_slope.get());
    cuda::batch_norm2d_forward_train(in.p, act, d_x.get(), d_gamma.get(), d_beta.get(), nullptr, nullptr, d_y.get(),
                                     d_mean.get(), d_invstd.get(), d_workspace.get(), nullptr);
    cuda::batch_norm2d_backward(in.p, act, d_dy.get(), d_x.get(), d_gamma.get(), d_beta.get(), d_mean.get(),
                                d_invstd.get(), d_dx.get(), d_dgamma.get(), d_dbeta.get(), d_dslope.get(),
                                d_workspace.get(), nullptr);
    std::vector<std::vector<float>> outputs = {d_y.to_host(),  d_mean.to_host(),   d_invstd.to_host(),
                                               d_dx.to_host(), d_dgamma.to_host(), d_dbeta.to_host(),
                                               d_dslope.to_host()};
    if (run == 0) {
      first = std::move(outputs);
    } else {
      for (size_t k = 0; k < outputs.size(); ++k)
        EXPECT_EQ(std::memcmp(outputs[k].data(), first[k].data(), outputs[k].size() * sizeof(float)), 0)
            << "output " << k << " differs between runs";
    }
  }
}

TEST(BatchNorm2dCuda, Deterministic) {
  GANCU_REQUIRE_GPU();
  check_deterministic(kModelShapes[std::size(kModelShapes) - 1], 4000);
  check_deterministic(kModelShapes[3], 4100);  // dcgan64 128x512x4x4
  check_deterministic(kSmallShapes[std::size(kSmallShapes) - 1], 4200);
}

TEST(BatchNorm2dCuda, RejectsSingleValuePerChannel) {
  GANCU_REQUIRE_GPU();
  BatchNorm2dParams p;  // batch 1, spatial 1
  EXPECT_THROW(cuda::batch_norm2d_forward_train(p, {}, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                                nullptr, nullptr, nullptr),
               std::invalid_argument);
}

// ---- cuDNN baseline ---------------------------------------------------------------------------------------------

class CudnnHandle {
 public:
  CudnnHandle() {
    if (cudnnCreate(&handle_) != CUDNN_STATUS_SUCCESS) throw std::runtime_error("cudnnCreate failed");
  }
  ~CudnnHandle() { cudnnDestroy(handle_); }
  CudnnHandle(const CudnnHandle&) = delete;
  CudnnHandle& operator=(const CudnnHandle&) = delete;
  cudnnHandle_t get() const { return handle_; }

 private:
  cudnnHandle_t handle_ = nullptr;
};

void check_cudnn(const CudnnHandle& handle, const BnShape& shape, uint64_t seed) {
  SCOPED_TRACE(shape.name);
  BnInputs in(shape, seed);
  const BatchNorm2dParams& p = in.p;
  const int64_t n = p.size();
  const int channels = p.channels;
  const std::vector<double> x = to_double(in.x), gamma = to_double(in.gamma), beta = to_double(in.beta),
                            dy = to_double(in.dy);
  std::vector<double> running_mean = to_double(in.running_mean), running_var = to_double(in.running_var);
  std::vector<double> y(n), save_mean(channels), save_invstd(channels), dx(n), dgamma(channels), dbeta(channels);
  ref::batch_norm2d_forward_train<double>(p, x.data(), gamma.data(), beta.data(), running_mean.data(),
                                          running_var.data(), y.data(), save_mean.data(), save_invstd.data());
  ref::batch_norm2d_backward<double>(p, dy.data(), x.data(), gamma.data(), save_mean.data(), save_invstd.data(),
                                     dx.data(), dgamma.data(), dbeta.data());

  DeviceArray<float> d_x(in.x), d_gamma(in.gamma), d_beta(in.beta), d_dy(in.dy), d_running_mean(in.running_mean),
      d_running_var(in.running_var);
  DeviceArray<float> d_y(poisoned_vector<float>(n)), d_save_mean(poisoned_vector<float>(channels)),
      d_save_invstd(poisoned_vector<float>(channels)), d_dx(poisoned_vector<float>(n)),
      d_dgamma(poisoned_vector<float>(channels)), d_dbeta(poisoned_vector<float>(channels));
  const cudnn::BatchNorm2d bn(p);
  bn.forward_train(handle.get(), d_x.get(), d_gamma.get(), d_beta.get(), d_running_mean.get(), d_running_var.get(),
                   d_y.get(), d_save_mean.get(), d_save_invstd.get(), nullptr);
  bn.backward(handle.get(), d_dy.get(), d_x.get(), d_gamma.get(), d_save_mean.get(), d_save_invstd.get(), d_dx.get(),
              d_dgamma.get(), d_dbeta.get(), nullptr);
  GANCU_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_LE(rel_l2_error(d_y.to_host(), y), kCudnnTol) << "y";
  EXPECT_LE(rel_l2_error(d_save_mean.to_host(), save_mean), kCudnnTol) << "save_mean";
  EXPECT_LE(rel_l2_error(d_save_invstd.to_host(), save_invstd), kCudnnTol) << "save_invstd";
  EXPECT_LE(rel_l2_error(d_running_mean.to_host(), running_mean), kCudnnTol) << "running_mean";
  EXPECT_LE(rel_l2_error(d_running_var.to_host(), running_var), kCudnnTol) << "running_var: unbiased as PyTorch?";
  const GradScales scales = grad_scales(p, x, gamma, save_mean, save_invstd, dy, {}, dy);
  EXPECT_LE(scaled_error(d_dx.to_host(), dx, scales.dx), kCudnnTol) << "dx";
  EXPECT_LE(scaled_error(d_dgamma.to_host(), dgamma, scales.dgamma), kCudnnTol) << "dgamma";
  EXPECT_LE(scaled_error(d_dbeta.to_host(), dbeta, scales.dbeta), kCudnnTol) << "dbeta";
}

TEST(BatchNorm2dCudnn, SmallShapes) {
  GANCU_REQUIRE_GPU();
  CudnnHandle handle;
  uint64_t seed = 5000;
  for (const BnShape& s : kSmallShapes) check_cudnn(handle, s, seed += 10);
}

TEST(BatchNorm2dCudnn, ModelShapes) {
  GANCU_REQUIRE_GPU();
  CudnnHandle handle;
  uint64_t seed = 6000;
  for (const BnShape& s : kModelShapes) check_cudnn(handle, s, seed += 10);
}

}  // namespace
}  // namespace gancu
