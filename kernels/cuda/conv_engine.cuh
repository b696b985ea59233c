// Private to the conv kernels: the three GEMM passes every public conv function is made of, on one ConvGeometry
// (conv_problems.cuh), and the mapping from the public parameter records. Each pass is planned from the geometry
// alone (tile, split-K, workspace: known before any launch, the same on every device and every replay) and built
// on the host as a GemmPass: the engine launches (conv_igemm.cuh) and the fixed-order split sum. conv2d.cu runs a
// GemmPass on the GPU; the host tests run the very same GemmPass through a scalar emulation of the engine.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/conv_problems.cuh"
#include "kernels/cuda/math_mode.h"
#include "kernels/params.h"

namespace gancu::cuda::detail {

inline ConvGeometry geometry_of(const Conv2dParams& p) {
  return {p.batch, p.in_channels, p.in_h, p.in_w, p.out_channels, p.out_h(), p.out_w(), p.kernel, p.stride, p.pad};
}

// A transposed conv is the adjoint of the conv2d that maps its output back to its input: that conv reads the
// transposed output (channels out_channels) and writes the transposed input (channels in_channels), with the same
// weight tensor [in_channels, out_channels, k, k] = [conv out, conv in, k, k].
inline ConvGeometry adjoint_geometry_of(const ConvTranspose2dParams& p) {
  return {p.batch, p.out_channels, p.out_h(), p.out_w(), p.in_channels, p.in_h, p.in_w, p.kernel, p.stride, p.pad};
}

// ---- plans ------------------------------------------------------------------------------------------------------

inline constexpr int kLargeTile = 128, kSmallTile = 64;  // the gather's two square tiles; dense and dw use 64
inline constexpr int kMinKPerSplit = 128;  // 8 slices: less, and a split's unhidden first load and partial cost more
inline constexpr int kMaxSplits = 256;     // a one-tile GEMM (the GEMV of D's head) still reaches kTargetBlocks

// A conv whose single output pixel covers its whole input (x k×k, pad 0, output 1×1; any stride) touches every weight
// tap exactly once per image: its passes are dense matrix products on [batch, in_channels·k²] rows. This is
// DCGAN's discriminator head (conv 4×4 → 1×1) and, as an adjoint, the generator's projection (transposed conv
// 1×1 → 4×4, pad 0, output_pad 0), whose gather would otherwise be 15/16 zero taps.
inline bool is_dense(const ConvGeometry& g) {
  return g.out_h == 1 && g.out_w == 1 && g.pad == 0 && g.in_h == g.kernel && g.in_w == g.kernel;
}

// How one pass runs. Split-K cuts K into `splits` chunks of k_chunk (a multiple of kTileK), each summed by its own
// blocks into a workspace copy of the output; a second kernel adds the copies in a fixed order.
struct PassPlan {
  bool dense = false;       // DenseProblem instead of the gather / weight-gradient problem
  bool large_tile = false;  // the gather's 128×128 tile
  int splits = 1;
  int k_chunk = 0;
  int64_t tiles = 0;         // output tiles over all of the pass's problems: blocks = tiles · splits
  int64_t output_count = 0;  // elements of the pass's output; one workspace copy
  int64_t workspace_floats() const { return splits > 1 ? int64_t(splits) * output_count : 0; }
};

inline int64_t tiles_of(int64_t m, int64_t n, int tile) { return ((m + tile - 1) / tile) * ((n + tile - 1) / tile); }

// Enough splits for kTargetBlocks blocks, each at least kMinKPerSplit deep; k_max is the longest K of the pass.
inline void plan_split_k(PassPlan& plan, int64_t k_max) {
  int64_t splits = 1;
  if (plan.tiles > 0)
    splits = std::min<int64_t>({(kTargetBlocks + plan.tiles - 1) / plan.tiles, k_max / kMinKPerSplit, kMaxSplits});
  splits = std::max<int64_t>(splits, 1);
  int64_t chunk = (k_max + splits - 1) / splits;
  chunk = std::max<int64_t>((chunk + kTileK - 1) / kTileK * kTileK, kTileK);
  plan.k_chunk = int(chunk);
  plan.splits = int(std::max<int64_t>((k_max + chunk - 1) / chunk, 1));  // rounding the chunk up may drop a split
}

inline PassPlan plan_gather(int64_t n, int count, const int64_t* m, const int64_t* k) {
  PassPlan plan;
  int64_t large_tiles = 0, small_tiles = 0, k_max = 0;
  for (int i = 0; i < count; ++i) {
    large_tiles += tiles_of(m[i], n, kLargeTile);
    small_tiles += tiles_of(m[i], n, kSmallTile);
    k_max = std::max(k_max, k[i]);
  }
  // The 128×128 tile does 4× the work per block; take it only when it still fills the GPU and N is not mostly padding.
  plan.large_tile = n > 64 && large_tiles >= kTargetBlocks;
  plan.tiles = plan.large_tile ? large_tiles : small_tiles;
  plan_split_k(plan, k_max);
  return plan;
}

inline PassPlan plan_dense(int64_t m, int64_t n, int64_t k) {
  PassPlan plan;
  plan.dense = true;
  plan.tiles = tiles_of(m, n, kSmallTile);
  plan.output_count = m * n;
  plan_split_k(plan, k);
  return plan;
}

// One stride phase of the adjoint along one axis. The adjoint writes dx[iy] = Σ dy[oy]·w[ky] over iy = oy·s − p + ky,
// so ky ≡ (iy + p) mod s: the rows with (iy + p) mod s = phase see only taps ky = phase + s·t, reading
// oy = (iy + p − phase)/s − t. No multiply is spent on the zeros a naive transposed conv would insert.
struct AdjointPhaseAxis {
  int first = 0;     // first output index of the phase: ((phase − p) mod s)
  int count = 0;     // output indices first, first + s, … below the extent
  int in_off = 0;    // (first + p − phase)/s: the dy index read at tap t = 0 for the phase's first output
  int taps = 0;      // ⌈(k − phase)/s⌉, 0 when phase ≥ k
};

inline AdjointPhaseAxis adjoint_phase_axis(int phase, int extent, int kernel, int stride, int pad) {
  AdjointPhaseAxis a;
  a.first = ((phase - pad) % stride + stride) % stride;
  a.count = a.first < extent ? (extent - a.first + stride - 1) / stride : 0;
  a.in_off = (a.first + pad - phase) / stride;  // exact: first + pad ≡ phase (mod stride), and first + pad ≥ 0
  a.taps = phase < kernel ? (kernel - phase + stride - 1) / stride : 0;
  return a;
}

inline PassPlan plan_correlate(const ConvGeometry& g) {
  const int64_t q = int64_t(g.in_channels) * g.kernel * g.kernel;
  if (is_dense(g)) return plan_dense(g.batch, g.out_channels, q);
  const int64_t m = int64_t(g.batch) * g.out_h * g.out_w;
  PassPlan plan = plan_gather(g.out_channels, 1, &m, &q);
  plan.output_count = m * g.out_channels;
  return plan;
}

inline PassPlan plan_adjoint(const ConvGeometry& g) {
  if (is_dense(g)) return plan_dense(g.batch, int64_t(g.in_channels) * g.kernel * g.kernel, g.out_channels);
  std::vector<int64_t> m, k;
  for (int ph = 0; ph < g.stride; ++ph)
    for (int pw = 0; pw < g.stride; ++pw) {
      const AdjointPhaseAxis ah = adjoint_phase_axis(ph, g.in_h, g.kernel, g.stride, g.pad);
      const AdjointPhaseAxis aw = adjoint_phase_axis(pw, g.in_w, g.kernel, g.stride, g.pad);
      m.push_back(int64_t(g.batch) * ah.count * aw.count);
      k.push_back(int64_t(g.out_channels) * ah.taps * aw.taps);
    }
  PassPlan plan = plan_gather(g.in_channels, int(m.size()), m.data(), k.data());
  plan.output_count = int64_t(g.batch) * g.in_channels * g.in_h * g.in_w;
  return plan;
}

inline PassPlan plan_weight_grad(const ConvGeometry& g) {
  const int64_t m = g.out_channels, n = int64_t(g.in_channels) * g.kernel * g.kernel;
  if (is_dense(g)) return plan_dense(m, n, g.batch);
  PassPlan plan;
  plan.tiles = tiles_of(m, n, kSmallTile);
  plan.output_count = m * n;
  plan_split_k(plan, int64_t(g.batch) * g.out_h * g.out_w);
  return plan;
}

// ---- problem builders -------------------------------------------------------------------------------------------

inline ConvGatherProblem make_correlate_problem(const ConvGeometry& g, const float* x, const float* w,
                                                const float* bias, float* y) {
  ConvGatherProblem p;
  p.M = g.batch * g.out_h * g.out_w;
  p.N = g.out_channels;
  p.K = g.in_channels * g.kernel * g.kernel;
  p.cols = FastDivmod(g.out_w);
  p.rows = FastDivmod(g.out_h);
  p.taps = FastDivmod(g.kernel * g.kernel);
  p.taps_w = FastDivmod(g.kernel);
  p.x = x;
  p.in_channels = g.in_channels, p.in_h = g.in_h, p.in_w = g.in_w;
  p.in_step = g.stride, p.tap_step = 1, p.in_off_h = -g.pad, p.in_off_w = -g.pad;
  p.w = w;
  p.w_c_stride = int64_t(g.kernel) * g.kernel;
  p.w_n_stride = int64_t(g.in_channels) * g.kernel * g.kernel;
  p.kernel = g.kernel, p.ky0 = 0, p.kx0 = 0, p.k_step = 1;
  p.y = y, p.bias = bias;
  p.out_h = g.out_h, p.out_w = g.out_w, p.out_step = 1, p.out_off_h = 0, p.out_off_w = 0;
  p.out_count = int64_t(g.batch) * g.out_channels * g.out_h * g.out_w;
  return p;
}

// The phase (phase_h, phase_w) of dx = adjoint(g)(dy): its output is dx [batch, g.in_channels, g.in_h, g.in_w].
inline ConvGatherProblem make_adjoint_phase_problem(const ConvGeometry& g, int phase_h, int phase_w, const float* dy,
                                                    const float* w, const float* bias, float* dx) {
  const AdjointPhaseAxis ah = adjoint_phase_axis(phase_h, g.in_h, g.kernel, g.stride, g.pad);
  const AdjointPhaseAxis aw = adjoint_phase_axis(phase_w, g.in_w, g.kernel, g.stride, g.pad);
  ConvGatherProblem p;
  p.M = g.batch * ah.count * aw.count;
  p.N = g.in_channels;
  p.K = g.out_channels * ah.taps * aw.taps;
  p.cols = FastDivmod(aw.count);
  p.rows = FastDivmod(ah.count);
  p.taps = FastDivmod(ah.taps * aw.taps);
  p.taps_w = FastDivmod(aw.taps);
  p.x = dy;
  p.in_channels = g.out_channels, p.in_h = g.out_h, p.in_w = g.out_w;
  p.in_step = 1, p.tap_step = -1, p.in_off_h = ah.in_off, p.in_off_w = aw.in_off;
  p.w = w;  // [g.out_channels (K side), g.in_channels (N side), k, k]
  p.w_c_stride = int64_t(g.in_channels) * g.kernel * g.kernel;
  p.w_n_stride = int64_t(g.kernel) * g.kernel;
  p.kernel = g.kernel, p.ky0 = phase_h, p.kx0 = phase_w, p.k_step = g.stride;
  p.y = dx, p.bias = bias;
  p.out_h = g.in_h, p.out_w = g.in_w, p.out_step = g.stride, p.out_off_h = ah.first, p.out_off_w = aw.first;
  p.out_count = int64_t(g.batch) * g.in_channels * g.in_h * g.in_w;
  return p;
}

inline WeightGradProblem make_weight_grad_problem(const ConvGeometry& g, const float* x, const float* dy, float* dw) {
  WeightGradProblem p;
  p.M = g.out_channels;
  p.N = g.in_channels * g.kernel * g.kernel;
  p.K = g.batch * g.out_h * g.out_w;
  p.out_hw = FastDivmod(g.out_h * g.out_w);
  p.out_w_div = FastDivmod(g.out_w);
  p.kk = FastDivmod(g.kernel * g.kernel);
  p.kernel_div = FastDivmod(g.kernel);
  p.dy = dy, p.x = x, p.dw = dw;
  p.in_channels = g.in_channels, p.in_h = g.in_h, p.in_w = g.in_w, p.stride = g.stride, p.pad = g.pad;
  return p;
}

// The passes of an is_dense geometry, with Q = in_channels·k² (x is [batch, Q], w is [out_channels, Q]):
//   correlate     y [batch, out_channels] = x · wᵀ         A along K, B along K
//   adjoint       dx [batch, Q] = dy · w  (+ bias / k²)    A along K, B along N
//   weight grad   dw [out_channels, Q] = dyᵀ · x           A along M, B along N
inline DenseProblem<true, true> make_dense_correlate_problem(const ConvGeometry& g, const float* x, const float* w,
                                                             const float* bias, float* y) {
  const int q = g.in_channels * g.kernel * g.kernel;
  DenseProblem<true, true> p;
  p.M = g.batch, p.N = g.out_channels, p.K = q;
  p.a_ptr = x, p.a_m_stride = q, p.a_k_stride = 1;
  p.b_ptr = w, p.b_k_stride = 1, p.b_n_stride = q;
  p.c = y, p.bias = bias, p.bias_group = FastDivmod(1);
  return p;
}
inline DenseProblem<true, false> make_dense_adjoint_problem(const ConvGeometry& g, const float* dy, const float* w,
                                                            const float* bias, float* dx) {
  const int q = g.in_channels * g.kernel * g.kernel;
  DenseProblem<true, false> p;
  p.M = g.batch, p.N = q, p.K = g.out_channels;
  p.a_ptr = dy, p.a_m_stride = g.out_channels, p.a_k_stride = 1;
  p.b_ptr = w, p.b_k_stride = q, p.b_n_stride = 1;
  p.c = dx, p.bias = bias, p.bias_group = FastDivmod(g.kernel * g.kernel);
  return p;
}
inline DenseProblem<false, false> make_dense_weight_grad_problem(const ConvGeometry& g, const float* x, const float* dy,
                                                                 float* dw) {
  const int q = g.in_channels * g.kernel * g.kernel;
  DenseProblem<false, false> p;
  p.M = g.out_channels, p.N = q, p.K = g.batch;
  p.a_ptr = dy, p.a_m_stride = 1, p.a_k_stride = g.out_channels;
  p.b_ptr = x, p.b_k_stride = q, p.b_n_stride = 1;
  p.c = dw;
  return p;
}

// ---- passes -----------------------------------------------------------------------------------------------------

// Everything one pass launches: engine launches of `Problem` sets (in order), then the split sum when split.
template <class Problem> struct GemmPass {
  std::vector<ProblemSet<Problem>> launches;
  bool large_tile = false;
  SplitSum sum;  // sum.splits == 1: nothing to sum
};

// Points the problem at the workspace when split, and sets up the sum of `out` (an NCHW tensor of `channels` ×
// `spatial`; bias per channel, or null).
template <class Problem>
void attach_split(const char* what, const PassPlan& plan, void* workspace, Problem& p, GemmPass<Problem>& pass,
                  float* out, const float* bias, int spatial, int channels) {
  pass.large_tile = plan.large_tile;
  if (plan.splits == 1) return;
  if (workspace == nullptr)
    throw std::invalid_argument(std::string(what) + ": needs a workspace of " +
                                std::to_string(plan.workspace_floats() * int64_t(sizeof(float))) + " bytes, got null");
  if (bias && plan.output_count > INT_MAX)
    throw std::invalid_argument(std::string(what) + ": output too large for the split sum's 32-bit channel index");
  p.partial = static_cast<float*>(workspace);
  pass.sum.splits = plan.splits;
  pass.sum.count = plan.output_count;
  pass.sum.partial = p.partial;
  pass.sum.bias = bias;
  pass.sum.spatial = FastDivmod(spatial);
  pass.sum.channels = FastDivmod(channels);
  pass.sum.out = out;
}

template <class Problem> void add_launch(GemmPass<Problem>& pass, const Problem& p, const PassPlan& plan) {
  ProblemSet<Problem> set;
  set.items[0] = p;
  set.count = 1;
  set.splits = plan.splits;
  set.k_chunk = plan.k_chunk;
  pass.launches.push_back(set);
}

// y = conv(x, w) + bias (bias may be null); x has g's input shape, y g's output shape. `run` gets the GemmPass.
template <class Run>
void correlate_pass(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y, void* workspace,
                    Run&& run) {
  const PassPlan plan = plan_correlate(g);
  if (plan.dense) {
    GemmPass<DenseProblem<true, true>> pass;
    auto p = make_dense_correlate_problem(g, x, w, bias, y);
    attach_split("conv correlate", plan, workspace, p, pass, y, bias, 1, g.out_channels);
    add_launch(pass, p, plan);
    run(pass);
  } else {
    GemmPass<ConvGatherProblem> pass;
    ConvGatherProblem p = make_correlate_problem(g, x, w, bias, y);
    attach_split("conv correlate", plan, workspace, p, pass, y, bias, g.out_h * g.out_w, g.out_channels);
    add_launch(pass, p, plan);
    run(pass);
  }
}

// dx = adjoint(dy) + bias: dy has g's output shape, dx g's input shape; stride² phases, up to four per launch.
template <class Run>
void adjoint_pass(const ConvGeometry& g, const float* dy, const float* w, const float* bias, float* dx, void* workspace,
                  Run&& run) {
  const PassPlan plan = plan_adjoint(g);
  if (plan.dense) {
    GemmPass<DenseProblem<true, false>> pass;
    auto p = make_dense_adjoint_problem(g, dy, w, bias, dx);
    attach_split("conv adjoint", plan, workspace, p, pass, dx, bias, g.kernel * g.kernel, g.in_channels);
    add_launch(pass, p, plan);
    run(pass);
    return;
  }
  GemmPass<ConvGatherProblem> pass;
  ConvGatherProblem split_target;  // receives the workspace pointer, copied into every phase
  attach_split("conv adjoint", plan, workspace, split_target, pass, dx, bias, g.in_h * g.in_w, g.in_channels);
  ProblemSet<ConvGatherProblem> set;
  set.splits = plan.splits;
  set.k_chunk = plan.k_chunk;
  for (int phase = 0; phase < g.stride * g.stride; ++phase) {
    ConvGatherProblem& p = set.items[set.count++];
    p = make_adjoint_phase_problem(g, phase / g.stride, phase % g.stride, dy, w, bias, dx);
    p.partial = split_target.partial;
    if (set.count == kMaxProblemsPerLaunch || phase + 1 == g.stride * g.stride) {
      pass.launches.push_back(set);
      set.count = 0;
    }
  }
  run(pass);
}

// dw [out_channels, in_channels, k, k] = Σ dy ⊗ patches(x).
template <class Run>
void weight_grad_pass(const ConvGeometry& g, const float* x, const float* dy, float* dw, void* workspace, Run&& run) {
  const PassPlan plan = plan_weight_grad(g);
  const int q = g.in_channels * g.kernel * g.kernel;
  if (plan.dense) {
    GemmPass<DenseProblem<false, false>> pass;
    auto p = make_dense_weight_grad_problem(g, x, dy, dw);
    attach_split("conv weight gradient", plan, workspace, p, pass, dw, nullptr, q, g.out_channels);
    add_launch(pass, p, plan);
    run(pass);
  } else {
    GemmPass<WeightGradProblem> pass;
    WeightGradProblem p = make_weight_grad_problem(g, x, dy, dw);
    attach_split("conv weight gradient", plan, workspace, p, pass, dw, nullptr, q, g.out_channels);
    add_launch(pass, p, plan);
    run(pass);
  }
}

inline size_t correlate_workspace_bytes(const ConvGeometry& g) {
  return size_t(plan_correlate(g).workspace_floats()) * sizeof(float);
}
inline size_t adjoint_workspace_bytes(const ConvGeometry& g) {
  return size_t(plan_adjoint(g).workspace_floats()) * sizeof(float);
}
inline size_t weight_grad_workspace_bytes(const ConvGeometry& g) {
  return size_t(plan_weight_grad(g).workspace_floats()) * sizeof(float);
}

// The GPU side (conv2d.cu): run the passes above on the engine.
void correlate(MathMode mode, const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y,
               void* workspace, cudaStream_t stream);
void correlate_adjoint(MathMode mode, const ConvGeometry& g, const float* dy, const float* w, const float* bias,
                       float* dx, void* workspace, cudaStream_t stream);
void correlate_weight_grad(MathMode mode, const ConvGeometry& g, const float* x, const float* dy, float* dw,
                           void* workspace, cudaStream_t stream);

}  // namespace gancu::cuda::detail
