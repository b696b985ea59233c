// Private to the conv kernels. Every convolution pass is one implicit GEMM C[m][n] = Σ_k A(m,k)·B(k,n) whose
// operands are gathered from NCHW tensors on the fly; this header holds the index maps (the "problems") and the
// host code that builds them. It is plain C++ plus __host__ __device__ annotations so the host tests can run the
// very same index maps through a scalar loop (no GPU needed to check the geometry).
//
// Everything is phrased on one ConvGeometry, a conv2d in forward orientation:
//   correlate          y = conv(x, w)                          (conv2d forward, conv_transpose2d backward_input)
//   correlate adjoint  dx = conv(·, w)ᵀ dy, split into phases   (conv2d backward_input, conv_transpose2d forward)
//   weight gradient    dw = Σ dy ⊗ patches(x)                   (both ops' backward_weight, with roles swapped)
#pragma once
#include <algorithm>
#include <cstdint>

#if defined(__CUDACC__)
#define GANCU_HD __host__ __device__ __forceinline__
#else
#define GANCU_HD inline
#endif

namespace gancu::cuda::detail {

// A conv2d in forward orientation: x [batch, in_channels, in_h, in_w] ⋆ w [out_channels, in_channels, k, k]
// → y [batch, out_channels, out_h, out_w]. out_h/out_w are explicit because the adjoint of a transposed conv with
// output_pad is not recoverable from the usual formula.
struct ConvGeometry {
  int batch = 1, in_channels = 1, in_h = 1, in_w = 1;
  int out_channels = 1, out_h = 1, out_w = 1;
  int kernel = 1, stride = 1, pad = 0;
};

// Quotient and remainder by a divisor fixed at launch, via multiply-high and shift (round-up method, valid for
// 0 ≤ n < 2³¹ and 1 ≤ d < 2³¹): integer division is a long instruction sequence on the GPU.
struct FastDivmod {
  uint32_t divisor = 1, multiplier = 1, shift = 0;

  FastDivmod() = default;
  explicit FastDivmod(int d) : divisor(uint32_t(std::max(d, 1))) {
    while ((uint64_t(1) << shift) < divisor) ++shift;
    multiplier = uint32_t(((uint64_t(1) << 32) * ((uint64_t(1) << shift) - divisor)) / divisor + 1);
  }
  GANCU_HD int div(int n) const {
#if defined(__CUDA_ARCH__)
    const uint32_t hi = __umulhi(uint32_t(n), multiplier);
#else
    const uint32_t hi = uint32_t((uint64_t(uint32_t(n)) * multiplier) >> 32);
#endif
    return int((hi + uint32_t(n)) >> shift);
  }
  GANCU_HD void divmod(int n, int& quotient, int& remainder) const {
    quotient = div(n);
    remainder = n - quotient * int(divisor);
  }
};

GANCU_HD float load_readonly(const float* p) {
#if defined(__CUDA_ARCH__)
  return __ldg(p);
#else
  return *p;
#endif
}

// A = activations gathered as patches, B = weights, C scattered to an NCHW output. Covers the forward correlation
// and each stride phase of the adjoint:
//   m = (image, j, i) over batch × rows × cols        output pixel (oy, ox) = (j·out_step + out_off_h, …)
//   k = (c, t, u)     over channels × taps_h × taps_w  input pixel (iy, ix) = (j·in_step + t·tap_step + in_off_h, …)
//   n = output channel                                 weight tap (ky, kx) = (ky0 + t·k_step, kx0 + u·k_step)
struct ConvGatherProblem {
  static constexpr bool kAAlongK = false;  // consecutive m are consecutive pixels: coalesced activation loads
  static constexpr bool kBAlongK = false;  // weights are small and cache-resident; keep shared stores conflict-free

  int M = 0, N = 0, K = 0;
  FastDivmod cols, rows;          // m → (image, j, i)
  FastDivmod taps, taps_w;        // k → (c, t, u); taps = taps_h·taps_w
  const float* x = nullptr;       // [batch, channels(K side), in_h, in_w]
  int in_channels = 0, in_h = 0, in_w = 0;
  int in_step = 1, tap_step = 1, in_off_h = 0, in_off_w = 0;
  const float* w = nullptr;
  int64_t w_c_stride = 0, w_n_stride = 0;
  int kernel = 1, ky0 = 0, kx0 = 0, k_step = 1;
  float* y = nullptr;             // [batch, N, out_h, out_w]
  const float* bias = nullptr;    // [N] or null
  int out_h = 0, out_w = 0, out_step = 1, out_off_h = 0, out_off_w = 0;

  GANCU_HD void pixel(int m, int& image, int& j, int& i) const {
    int rest;
    cols.divmod(m, rest, i);
    rows.divmod(rest, image, j);
  }
  GANCU_HD void tap(int k, int& c, int& t, int& u) const {
    int r;
    taps.divmod(k, c, r);
    taps_w.divmod(r, t, u);
  }
  GANCU_HD float a(int m, int k) const {
    int image, j, i, c, t, u;
    pixel(m, image, j, i);
    tap(k, c, t, u);
    const int iy = j * in_step + t * tap_step + in_off_h;
    const int ix = i * in_step + u * tap_step + in_off_w;
    if (unsigned(iy) >= unsigned(in_h) || unsigned(ix) >= unsigned(in_w)) return 0.0f;  // zero padding
    return load_readonly(x + ((int64_t(image) * in_channels + c) * in_h + iy) * in_w + ix);
  }
  GANCU_HD float b(int k, int n) const {
    int c, t, u;
    tap(k, c, t, u);
    const int ky = ky0 + t * k_step, kx = kx0 + u * k_step;
    return load_readonly(w + c * w_c_stride + n * w_n_stride + ky * kernel + kx);
  }
  GANCU_HD void store(int m, int n, float value, int /*split*/) const {
    int image, j, i;
    pixel(m, image, j, i);
    const int oy = j * out_step + out_off_h, ox = i * out_step + out_off_w;
    if (bias) value += load_readonly(bias + n);
    y[((int64_t(image) * N + n) * out_h + oy) * out_w + ox] = value;
  }
};

// Weight gradient of a forward correlation: dw[m, c, ky, kx] = Σ_{image, oy, ox} dy[image, m, oy, ox] ·
// x[image, c, oy·s − p + ky, ox·s − p + kx]. m = output channel, n = (c, ky, kx), k = (image, oy, ox).
// With split-K, split z writes its partial sums to partial + z·M·N; a second kernel adds them in a fixed order.
struct WeightGradProblem {
  static constexpr bool kAAlongK = true;  // dy is contiguous along (oy, ox)
  static constexpr bool kBAlongK = true;  // x patches are contiguous along ox for stride 1

  int M = 0, N = 0, K = 0;
  FastDivmod out_hw, out_w_div;   // k → (image, oy, ox)
  FastDivmod kk, kernel_div;      // n → (c, ky, kx); kk = kernel²
  const float* dy = nullptr;      // [batch, M, out_h, out_w]
  const float* x = nullptr;       // [batch, in_channels, in_h, in_w]
  int in_channels = 0, in_h = 0, in_w = 0, stride = 1, pad = 0;
  float* dw = nullptr;            // [M, N] when not split
  float* partial = nullptr;       // [splits, M, N] when split

  GANCU_HD float a(int m, int k) const {
    int image, pos;
    out_hw.divmod(k, image, pos);
    return load_readonly(dy + (int64_t(image) * M + m) * int(out_hw.divisor) + pos);
  }
  GANCU_HD float b(int k, int n) const {
    int image, pos, oy, ox, c, r, ky, kx;
    out_hw.divmod(k, image, pos);
    out_w_div.divmod(pos, oy, ox);
    kk.divmod(n, c, r);
    kernel_div.divmod(r, ky, kx);
    const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
    if (unsigned(iy) >= unsigned(in_h) || unsigned(ix) >= unsigned(in_w)) return 0.0f;
    return load_readonly(x + ((int64_t(image) * in_channels + c) * in_h + iy) * in_w + ix);
  }
  GANCU_HD void store(int m, int n, float value, int split) const {
    float* dst = partial ? partial + int64_t(split) * M * N : dw;
    dst[int64_t(m) * N + n] = value;
  }
};

// ---- host-side builders -------------------------------------------------------------------------------------------

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
  return p;
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
  return p;
}

// Split-K plan of the weight gradient, a pure function of the geometry so the workspace size can be asked for
// before any launch and every replay uses the same split (bit-identical results).
struct WeightGradPlan {
  int splits = 1;   // number of K chunks; 1 writes dw directly
  int k_chunk = 0;  // reduction length per split, a multiple of the tile depth
};

inline constexpr int kWeightGradTileM = 64, kWeightGradTileN = 64, kTileK = 16;
inline constexpr int kTargetBlocks = 264;        // two waves on a 132-SM H100; fixed so plans are device-independent
inline constexpr int kMinKPerSplit = 512;        // below this a split's fixed cost outweighs its parallelism
inline constexpr int kMaxSplits = 64;

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

inline WeightGradPlan plan_weight_grad(const ConvGeometry& g) {
  const int64_t m = g.out_channels, n = int64_t(g.in_channels) * g.kernel * g.kernel;
  const int64_t k = int64_t(g.batch) * g.out_h * g.out_w;
  const int64_t tiles = ((m + kWeightGradTileM - 1) / kWeightGradTileM) * ((n + kWeightGradTileN - 1) / kWeightGradTileN);
  int64_t splits = std::min<int64_t>({(kTargetBlocks + tiles - 1) / tiles, k / kMinKPerSplit, kMaxSplits});
  splits = std::max<int64_t>(splits, 1);
  WeightGradPlan plan;
  int64_t chunk = (k + splits - 1) / splits;
  chunk = (chunk + kTileK - 1) / kTileK * kTileK;
  plan.k_chunk = int(std::max<int64_t>(chunk, kTileK));
  plan.splits = int((k + plan.k_chunk - 1) / plan.k_chunk);  // rounding the chunk up may drop a split
  plan.splits = std::max(plan.splits, 1);
  return plan;
}

inline int64_t weight_grad_workspace_floats(const ConvGeometry& g) {
  const WeightGradPlan plan = plan_weight_grad(g);
  return plan.splits > 1 ? int64_t(plan.splits) * g.out_channels * g.in_channels * g.kernel * g.kernel : 0;
}

}  // namespace gancu::cuda::detail
