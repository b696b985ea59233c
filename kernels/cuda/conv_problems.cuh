// Private to the conv kernels. Every convolution pass is one GEMM C[m][n] = Σ_k A(m,k)·B(k,n) whose operands are
// read from NCHW tensors on the fly; this header holds the index maps (the "problems") and the per-thread operand
// loader of the tile engine (conv_igemm.cuh). It is plain C++ plus __host__ __device__ annotations so the host tests
// run the very same index maps and loader through a scalar loop (no GPU needed to check the geometry).
//
// Everything is phrased on one ConvGeometry, a conv2d in forward orientation:
//   correlate          y = conv(x, w)                          (conv2d forward, conv_transpose2d backward_input)
//   correlate adjoint  dx = conv(·, w)ᵀ dy, split into phases   (conv2d backward_input, conv_transpose2d forward)
//   weight gradient    dw = Σ dy ⊗ patches(x)                   (both ops' backward_weight, with roles swapped)
// A geometry whose output is one pixel covering its whole input (conv_engine.cuh: is_dense) needs no gather at all:
// its three passes are dense matrix products (DenseProblem).
//
// Problem interface (all __host__ __device__): M, N, K; kAAlongK / kBAlongK, the direction consecutive threads load
// (the one contiguous in memory); ARow a_row(m), BCol b_col(n), KPos k_pos(k): the decompositions of one coordinate,
// which the loader computes once and reuses (a thread's row is fixed over the whole K loop, and elements of A and B
// at the same k share one k_pos); float a(ARow, KPos), b(KPos, BCol); store(m, n, value, split).
#pragma once
#include <algorithm>
#include <cstdint>

#if defined(__CUDACC__)
#define GANCU_HD __host__ __device__ __forceinline__
#else
#define GANCU_HD inline
#endif
#if defined(__CUDA_ARCH__)  // the device pass only: the host compiler would warn about an unknown pragma
#define GANCU_UNROLL _Pragma("unroll")
#else
#define GANCU_UNROLL
#endif

namespace gancu::cuda::detail {

inline constexpr int kThreadsPerBlock = 256;
inline constexpr int kTileK = 16;                // depth of one shared-memory slice
inline constexpr int kMaxProblemsPerLaunch = 4;  // the 2×2 phases of a stride-2 adjoint in one launch

// A conv2d in forward orientation: x [batch, in_channels, in_h, in_w] ⋆ w [out_channels, in_channels, k, k]
// → y [batch, out_channels, out_h, out_w]. out_h/out_w are explicit because the adjoint of a transposed conv with
// output_pad is not recoverable from the usual formula.
struct ConvGeometry {
  int batch = 1, in_channels = 1, in_h = 1, in_w = 1;
  int out_channels = 1, out_h = 1, out_w = 1;
  int kernel = 1, stride = 1, pad = 0;
};

// Blocks a launch aims at when it splits a reduction (conv split-K, batch-norm splits): two per SM of a 132-SM
// H100/H200. A constant, not read off the device, so plans and workspaces are device-independent and replays identical.
inline constexpr int kTargetBlocks = 264;

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
// With split-K, split z stores its partial sum (no bias) where the output element would go, in the z-th copy of the
// output at partial + z·out_count; SplitSum adds the copies and the bias.
struct ConvGatherProblem {
  static constexpr bool kAAlongK = false;  // consecutive m are consecutive pixels: coalesced activation loads
  static constexpr bool kBAlongK = false;  // weights are small and cache-resident; keep shared stores conflict-free

  struct ARow {  // one output pixel: its image and the input corner its taps start from (3 registers in the K loop)
    int image, iy0, ix0;
  };
  using BCol = int;  // n
  struct KPos {
    int c, t, u;
  };

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
  float* partial = nullptr;       // [splits, batch, N, out_h, out_w] when split, else null
  int64_t out_count = 0;          // batch·N·out_h·out_w: one partial copy

  GANCU_HD void pixel(int m, int& image, int& j, int& i) const {
    int rest;
    cols.divmod(m, rest, i);
    rows.divmod(rest, image, j);
  }
  GANCU_HD ARow a_row(int m) const {
    int image, j, i;
    pixel(m, image, j, i);
    return {image, j * in_step + in_off_h, i * in_step + in_off_w};
  }
  GANCU_HD BCol b_col(int n) const { return n; }
  GANCU_HD KPos k_pos(int k) const {
    KPos p;
    int r;
    taps.divmod(k, p.c, r);
    taps_w.divmod(r, p.t, p.u);
    return p;
  }
  GANCU_HD float a(const ARow& row, const KPos& k) const {
    const int iy = row.iy0 + k.t * tap_step, ix = row.ix0 + k.u * tap_step;
    if (unsigned(iy) >= unsigned(in_h) || unsigned(ix) >= unsigned(in_w)) return 0.0f;  // zero padding
    return load_readonly(x + ((int64_t(row.image) * in_channels + k.c) * in_h + iy) * in_w + ix);
  }
  GANCU_HD float b(const KPos& k, BCol col) const {
    const int ky = ky0 + k.t * k_step, kx = kx0 + k.u * k_step;
    return load_readonly(w + k.c * w_c_stride + col * w_n_stride + ky * kernel + kx);
  }
  GANCU_HD void store(int m, int n, float value, int split) const {
    int image, j, i;
    pixel(m, image, j, i);
    const int oy = j * out_step + out_off_h, ox = i * out_step + out_off_w;
    const int64_t index = ((int64_t(image) * N + n) * out_h + oy) * out_w + ox;
    if (partial) {
      partial[split * out_count + index] = value;
    } else {
      if (bias) value += load_readonly(bias + n);
      y[index] = value;
    }
  }
};

// Weight gradient of a forward correlation: dw[m, c, ky, kx] = Σ_{image, oy, ox} dy[image, m, oy, ox] ·
// x[image, c, oy·s − p + ky, ox·s − p + kx]. m = output channel, n = (c, ky, kx), k = (image, oy, ox).
// With split-K, split z writes its partial sums to partial + z·M·N; SplitSum adds them in a fixed order.
struct WeightGradProblem {
  static constexpr bool kAAlongK = true;  // dy is contiguous along (oy, ox)
  static constexpr bool kBAlongK = true;  // x patches are contiguous along ox for stride 1

  using ARow = int;
  using BCol = int;
  struct KPos {
    int image, pos, oy, ox;
  };

  int M = 0, N = 0, K = 0;
  FastDivmod out_hw, out_w_div;   // k → (image, oy, ox)
  FastDivmod kk, kernel_div;      // n → (c, ky, kx); kk = kernel²
  const float* dy = nullptr;      // [batch, M, out_h, out_w]
  const float* x = nullptr;       // [batch, in_channels, in_h, in_w]
  int in_channels = 0, in_h = 0, in_w = 0, stride = 1, pad = 0;
  float* dw = nullptr;            // [M, N] when not split
  float* partial = nullptr;       // [splits, M, N] when split

  GANCU_HD ARow a_row(int m) const { return m; }
  GANCU_HD BCol b_col(int n) const { return n; }
  GANCU_HD KPos k_pos(int k) const {
    KPos p;
    out_hw.divmod(k, p.image, p.pos);
    out_w_div.divmod(p.pos, p.oy, p.ox);
    return p;
  }
  GANCU_HD float a(ARow m, const KPos& k) const {
    return load_readonly(dy + (int64_t(k.image) * M + m) * int(out_hw.divisor) + k.pos);
  }
  GANCU_HD float b(const KPos& k, BCol n) const {
    int c, r, ky, kx;
    kk.divmod(n, c, r);
    kernel_div.divmod(r, ky, kx);
    const int iy = k.oy * stride - pad + ky, ix = k.ox * stride - pad + kx;
    if (unsigned(iy) >= unsigned(in_h) || unsigned(ix) >= unsigned(in_w)) return 0.0f;
    return load_readonly(x + ((int64_t(k.image) * in_channels + c) * in_h + iy) * in_w + ix);
  }
  GANCU_HD void store(int m, int n, float value, int split) const {
    float* dst = partial ? partial + int64_t(split) * M * N : dw;
    dst[int64_t(m) * N + n] = value;
  }
};

// A plain matrix product on strided operands, C [M, N] row-major (+ bias[n / bias_group]):
//   A(m, k) = a[m·a_m_stride + k·a_k_stride],  B(k, n) = b[k·b_k_stride + n·b_n_stride].
// The layout flags say which index is contiguous, so loads coalesce: one instantiation per pass of a dense geometry.
// With split-K, split z writes partial + z·M·N (no bias).
template <bool kAAlongK_, bool kBAlongK_> struct DenseProblem {
  static constexpr bool kAAlongK = kAAlongK_;
  static constexpr bool kBAlongK = kBAlongK_;

  using ARow = int64_t;  // m · a_m_stride
  using BCol = int64_t;  // n · b_n_stride
  using KPos = int;

  int M = 0, N = 0, K = 0;
  const float* a_ptr = nullptr;
  int64_t a_m_stride = 0, a_k_stride = 0;
  const float* b_ptr = nullptr;
  int64_t b_k_stride = 0, b_n_stride = 0;
  float* c = nullptr;             // [M, N]
  const float* bias = nullptr;    // [N / bias_group] or null
  FastDivmod bias_group;          // output columns sharing one bias (k·k pixels of one channel)
  float* partial = nullptr;       // [splits, M, N] when split

  GANCU_HD ARow a_row(int m) const { return m * a_m_stride; }
  GANCU_HD BCol b_col(int n) const { return n * b_n_stride; }
  GANCU_HD KPos k_pos(int k) const { return k; }
  GANCU_HD float a(ARow row, KPos k) const { return load_readonly(a_ptr + row + k * a_k_stride); }
  GANCU_HD float b(KPos k, BCol col) const { return load_readonly(b_ptr + k * b_k_stride + col); }
  GANCU_HD void store(int m, int n, float value, int split) const {
    const int64_t index = int64_t(m) * N + n;
    if (partial) {
      partial[int64_t(split) * M * N + index] = value;
    } else {
      if (bias) value += load_readonly(bias + bias_group.div(n));
      c[index] = value;
    }
  }
};

// Up to four independent problems (same N) in one launch, blockIdx.z = problem · splits + split.
template <class Problem> struct ProblemSet {
  Problem items[kMaxProblemsPerLaunch];
  int count = 0;
  int splits = 1;
  int k_chunk = 0;  // K range of one split; ≥ K when splits == 1
};

// ---- the engine's operand loader ------------------------------------------------------------------------------

// Which element (row, k) of a ROWS×kTileK operand slice thread `tid` loads as its e-th. Threads run along the
// dimension that is contiguous in global memory so that loads coalesce. Along M/N a thread's row never changes.
template <int ROWS, bool kAlongK> GANCU_HD int slice_row(int tid, int e) {
  return kAlongK ? tid / kTileK + e * (kThreadsPerBlock / kTileK) : tid % ROWS;
}
template <int ROWS, bool kAlongK> GANCU_HD int slice_k(int tid, int e) {
  return kAlongK ? tid % kTileK : tid / ROWS + e * (kThreadsPerBlock / ROWS);
}

// One thread's share of each BM×kTileK slice of A and kTileK×BN slice of B, zero outside the problem. What does not
// depend on k is decomposed once, at construction (before the K loop): the gather's pixel (image, row, column) of a
// thread's fixed row. Elements of A and B at the same k share one k_pos (the gather's tap (c, t, u)).
template <class Problem, int BM, int BN> struct OperandLoader {
  static constexpr int kAElems = BM * kTileK / kThreadsPerBlock, kBElems = BN * kTileK / kThreadsPerBlock;
  static_assert(kThreadsPerBlock % BM == 0 && kThreadsPerBlock % BN == 0 && kThreadsPerBlock % kTileK == 0);

  int tid, m0, n0;
  typename Problem::ARow fixed_row{};  // used when !kAAlongK
  typename Problem::BCol fixed_col{};  // used when !kBAlongK
  bool fixed_row_valid = false, fixed_col_valid = false;

  GANCU_HD OperandLoader(const Problem& p, int tid_, int m0_, int n0_) : tid(tid_), m0(m0_), n0(n0_) {
    if constexpr (!Problem::kAAlongK) {
      const int m = m0 + slice_row<BM, false>(tid, 0);
      fixed_row_valid = m < p.M;
      if (fixed_row_valid) fixed_row = p.a_row(m);
    }
    if constexpr (!Problem::kBAlongK) {
      const int n = n0 + slice_row<BN, false>(tid, 0);
      fixed_col_valid = n < p.N;
      if (fixed_col_valid) fixed_col = p.b_col(n);
    }
  }

  GANCU_HD void load(const Problem& p, int k0, int k_end, float (&a)[kAElems], float (&b)[kBElems]) const {
    using KPos = typename Problem::KPos;
    if constexpr (!Problem::kAAlongK && !Problem::kBAlongK && BM == BN) {
      // A's and B's e-th elements sit at the same k: one decomposition for both, used at once (few live registers).
      GANCU_UNROLL
      for (int e = 0; e < kAElems; ++e) {
        const int k = k0 + slice_k<BM, false>(tid, e);
        const KPos kp = p.k_pos(k);
        a[e] = (fixed_row_valid && k < k_end) ? p.a(fixed_row, kp) : 0.0f;
        b[e] = (fixed_col_valid && k < k_end) ? p.b(kp, fixed_col) : 0.0f;
      }
    } else {
      // Along K, all of a thread's elements of an operand sit at one k (the same for A and B).
      const int k_along = k0 + tid % kTileK;
      const KPos kp_along = p.k_pos(k_along);
      GANCU_UNROLL
      for (int e = 0; e < kAElems; ++e) {
        if constexpr (Problem::kAAlongK) {
          const int m = m0 + slice_row<BM, true>(tid, e);
          a[e] = (m < p.M && k_along < k_end) ? p.a(p.a_row(m), kp_along) : 0.0f;
        } else {
          const int k = k0 + slice_k<BM, false>(tid, e);
          a[e] = (fixed_row_valid && k < k_end) ? p.a(fixed_row, p.k_pos(k)) : 0.0f;
        }
      }
      GANCU_UNROLL
      for (int e = 0; e < kBElems; ++e) {
        if constexpr (Problem::kBAlongK) {
          const int n = n0 + slice_row<BN, true>(tid, e);
          b[e] = (n < p.N && k_along < k_end) ? p.b(kp_along, p.b_col(n)) : 0.0f;
        } else {
          const int k = k0 + slice_k<BN, false>(tid, e);
          b[e] = (fixed_col_valid && k < k_end) ? p.b(p.k_pos(k), fixed_col) : 0.0f;
        }
      }
    }
  }
};

// The fixed-order sum of split-K partials: out[i] = Σ_z partial[z·count + i] (+ bias of i's channel, for an NCHW
// output: (i / spatial) mod channels). Deterministic, unlike atomics.
struct SplitSum {
  int splits = 1;  // 1: nothing to sum
  int64_t count = 0;
  const float* partial = nullptr;
  const float* bias = nullptr;
  FastDivmod spatial, channels;
  float* out = nullptr;

  GANCU_HD float value(int64_t i) const {
    float sum = 0.0f;
    for (int z = 0; z < splits; ++z) sum += partial[z * count + i];
    if (bias) {  // i < 2³¹ is checked when the sum is built
      int image_channel, pixel, image, channel;
      spatial.divmod(int(i), image_channel, pixel);
      channels.divmod(image_channel, image, channel);
      sum += load_readonly(bias + channel);
    }
    return sum;
  }
};

}  // namespace gancu::cuda::detail
