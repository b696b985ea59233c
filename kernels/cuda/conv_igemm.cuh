// Private to the conv kernels: the implicit-GEMM tile engine. One kernel template computes C = A·B for any problem of
// conv_problems.cuh: a block owns a BM×BN tile of C, walks K in BK-deep slices gathered into shared memory by the
// problem's OperandLoader (double-buffered: the next slice's global loads are in flight while the current one is
// multiplied), and keeps its tile in registers. Two tile maths share the loader and the epilogue:
//   FfmaMath  strict fp32: each thread a (BM/16)×(BN/16) register block, fed by 128-bit shared loads.
//   MmaMath   TF32: 8 warps as 2×4, each warp (BM/2)×(BN/4) via mma.sync m16n8k8, operands rounded (cvt.rna)
//             once when they are written to shared memory.
// Include from exactly one .cu (conv2d.cu) so each instantiation is compiled once.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_problems.cuh"
#include "kernels/cuda/math_mode.h"

namespace gancu::cuda::detail {

template <int BM_, int BN_> struct TileShape {
  static constexpr int BM = BM_, BN = BN_, BK = kTileK;
  static constexpr int kPad = 8;  // row stride ≡ 8 (mod 32) banks: conflict-free mma fragment reads, 16-byte rows
  static_assert(BM % 64 == 0 && BN % 64 == 0 && kThreadsPerBlock % BM == 0 && kThreadsPerBlock % BN == 0);
};

__device__ __forceinline__ float round_to_tf32(float value) {
  uint32_t bits;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(bits) : "f"(value));
  return __uint_as_float(bits);
}

// D = A·B + D for a 16×8×8 TF32 tile (operand layouts: PTX ISA, "Matrix Fragments for mma.m16n8k8").
__device__ __forceinline__ void mma_tf32_16x8x8(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <class Tile> struct FfmaMath {
  static constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK, kPad = Tile::kPad;
  static constexpr int TM = BM / 16, TN = BN / 16;  // 16×16 threads; groups of 4 rows, 64 apart
  float acc[TM][TN] = {};
  int tx, ty;  // tx along M so that a warp's stores cover 16 neighbouring pixels

  __device__ explicit FfmaMath(int tid) : tx(tid % 16), ty(tid / 16) {}
  __device__ static int local_index(int i, int lane) { return (i / 4) * 64 + lane * 4 + i % 4; }

  __device__ void compute(const float (*a)[BM + kPad], const float (*b)[BN + kPad]) {
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float av[TM], bv[TN];
#pragma unroll
      for (int g = 0; g < TM / 4; ++g) {
        const float4 v = *reinterpret_cast<const float4*>(&a[kk][g * 64 + tx * 4]);
        av[g * 4 + 0] = v.x, av[g * 4 + 1] = v.y, av[g * 4 + 2] = v.z, av[g * 4 + 3] = v.w;
      }
#pragma unroll
      for (int g = 0; g < TN / 4; ++g) {
        const float4 v = *reinterpret_cast<const float4*>(&b[kk][g * 64 + ty * 4]);
        bv[g * 4 + 0] = v.x, bv[g * 4 + 1] = v.y, bv[g * 4 + 2] = v.z, bv[g * 4 + 3] = v.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
  }

  template <class Problem> __device__ void store(const Problem& prob, int m0, int n0, int split) const {
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        const int m = m0 + local_index(i, tx), n = n0 + local_index(j, ty);
        if (m < prob.M && n < prob.N) prob.store(m, n, acc[i][j], split);
      }
  }
};

template <class Tile> struct MmaMath {
  static constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK, kPad = Tile::kPad;
  static constexpr int WM = BM / 2, WN = BN / 4;  // 8 warps: 2 along M × 4 along N
  static constexpr int MI = WM / 16, NI = WN / 8;
  float acc[MI][NI][4] = {};
  int warp_m, warp_n, group, lane_in_group;

  __device__ explicit MmaMath(int tid)
      : warp_m((tid / 32) % 2), warp_n((tid / 32) / 2), group((tid % 32) / 4), lane_in_group(tid % 4) {}

  __device__ void compute(const float (*a)[BM + kPad], const float (*b)[BN + kPad]) {
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      const int k_lo = kk + lane_in_group, k_hi = k_lo + 4;
      uint32_t af[MI][4], bf[NI][2];
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        const int r = warp_m * WM + mi * 16 + group;
        af[mi][0] = __float_as_uint(a[k_lo][r]);
        af[mi][1] = __float_as_uint(a[k_lo][r + 8]);
        af[mi][2] = __float_as_uint(a[k_hi][r]);
        af[mi][3] = __float_as_uint(a[k_hi][r + 8]);
      }
#pragma unroll
      for (int ni = 0; ni < NI; ++ni) {
        const int c = warp_n * WN + ni * 8 + group;
        bf[ni][0] = __float_as_uint(b[k_lo][c]);
        bf[ni][1] = __float_as_uint(b[k_hi][c]);
      }
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) mma_tf32_16x8x8(acc[mi][ni], af[mi], bf[ni]);
    }
  }

  template <class Problem> __device__ void store(const Problem& prob, int m0, int n0, int split) const {
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < NI; ++ni)
#pragma unroll
        for (int r = 0; r < 4; ++r) {  // accumulator r sits at row group (+8 for r ≥ 2), column 2·lane + r%2
          const int m = m0 + warp_m * WM + mi * 16 + group + (r / 2) * 8;
          const int n = n0 + warp_n * WN + ni * 8 + lane_in_group * 2 + (r % 2);
          if (m < prob.M && n < prob.N) prob.store(m, n, acc[mi][ni][r], split);
        }
  }
};

template <class Problem, class Tile, MathMode kMode>
__global__ void __launch_bounds__(kThreadsPerBlock) implicit_gemm_kernel(const __grid_constant__ ProblemSet<Problem> set) {
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK, kPad = Tile::kPad;
  using Math = std::conditional_t<kMode == MathMode::kTf32, MmaMath<Tile>, FfmaMath<Tile>>;
  using Loader = OperandLoader<Problem, BM, BN>;

  const int problem_index = int(blockIdx.z) / set.splits;
  const int split = int(blockIdx.z) - problem_index * set.splits;
  const Problem& prob = set.items[problem_index];
  const int m0 = int(blockIdx.x) * BM, n0 = int(blockIdx.y) * BN;
  if (m0 >= prob.M || n0 >= prob.N) return;  // the grid is sized for the largest problem of the set
  const int k_begin = split * set.k_chunk;
  const int k_end = min(prob.K, k_begin + set.k_chunk);
  const int tid = int(threadIdx.x);

  __shared__ __align__(16) float a_smem[2][BK][BM + kPad];
  __shared__ __align__(16) float b_smem[2][BK][BN + kPad];
  float a_stage[Loader::kAElems], b_stage[Loader::kBElems];
  const Loader loader(prob, tid, m0, n0);  // a thread's fixed row/column, decomposed once for the whole K loop

  auto store_slice = [&](int buffer) {  // registers → shared, rounded once here in TF32 mode
#pragma unroll
    for (int e = 0; e < Loader::kAElems; ++e) {
      const int row = slice_row<BM, Problem::kAAlongK>(tid, e), kl = slice_k<BM, Problem::kAAlongK>(tid, e);
      a_smem[buffer][kl][row] = kMode == MathMode::kTf32 ? round_to_tf32(a_stage[e]) : a_stage[e];
    }
#pragma unroll
    for (int e = 0; e < Loader::kBElems; ++e) {
      const int col = slice_row<BN, Problem::kBAlongK>(tid, e), kl = slice_k<BN, Problem::kBAlongK>(tid, e);
      b_smem[buffer][kl][col] = kMode == MathMode::kTf32 ? round_to_tf32(b_stage[e]) : b_stage[e];
    }
  };

  Math math(tid);
  if (k_begin < k_end) {
    loader.load(prob, k_begin, k_end, a_stage, b_stage);
    store_slice(0);
    __syncthreads();
    int buffer = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
      const bool has_next = k0 + BK < k_end;
      if (has_next) loader.load(prob, k0 + BK, k_end, a_stage, b_stage);
      math.compute(a_smem[buffer], b_smem[buffer]);
      // The other buffer was last read in the previous iteration, before its closing barrier: safe to overwrite.
      if (has_next) store_slice(buffer ^ 1);
      __syncthreads();
      buffer ^= 1;
    }
  }
  math.store(prob, m0, n0, split);  // an empty K range (a phase without taps, a split past K) writes bias or zero
}

template <class Problem, class Tile, MathMode kMode>
void launch_implicit_gemm(const ProblemSet<Problem>& set, cudaStream_t stream) {
  static_assert(sizeof(ProblemSet<Problem>) <= 4096, "kernel parameters are limited to 4 KiB before CUDA 12.1");
  int max_m = 0;
  for (int i = 0; i < set.count; ++i) max_m = max_m > set.items[i].M ? max_m : set.items[i].M;
  const int n = set.count > 0 ? set.items[0].N : 0;
  if (max_m == 0 || n == 0) return;
  const dim3 grid(unsigned((max_m + Tile::BM - 1) / Tile::BM), unsigned((n + Tile::BN - 1) / Tile::BN),
                  unsigned(set.count * set.splits));
  implicit_gemm_kernel<Problem, Tile, kMode><<<grid, kThreadsPerBlock, 0, stream>>>(set);
  GANCU_CUDA_CHECK_LAUNCH();
}

}  // namespace gancu::cuda::detail
