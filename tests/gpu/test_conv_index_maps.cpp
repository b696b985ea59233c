// ConvIndexMaps: the custom conv kernels' index maps, plans and passes checked on the host, no GPU needed. The passes
// of conv_engine.cuh (the very GemmPass objects conv2d.cu launches) run through a scalar emulation of the engine:
// every thread's OperandLoader fills its elements of each shared-memory slice, the slice is multiplied, the tile
// stored through the problem, then the split sum, element by element with the kernel's own SplitSum::value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv_transpose2d.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/conv_engine.cuh"
#include "kernels/cuda/conv_transpose2d.h"
#include "tests/gpu/conv_test_cases.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using namespace cuda::detail;  // NOLINT: the index maps under test
using conv_test::ConvCase;
using conv_test::conv_case;
using conv_test::tconv_case;
using testing::random_vector;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---- the engine as a scalar loop --------------------------------------------------------------------------------

// One launch of implicit_gemm_kernel<Problem, TileShape<BM, BN>>: blocks, splits and threads as the kernel runs them.
// The slices start as NaN, so a slot no thread fills poisons the tile.
template <class Problem, int BM, int BN> void emulate_launch(const ProblemSet<Problem>& set) {
  using Loader = OperandLoader<Problem, BM, BN>;
  int max_m = 0;
  for (int i = 0; i < set.count; ++i) max_m = std::max(max_m, set.items[i].M);
  const int n_total = set.count > 0 ? set.items[0].N : 0;
  for (int z = 0; z < set.count * set.splits; ++z) {
    const Problem& p = set.items[z / set.splits];
    const int split = z % set.splits;
    const int k_begin = split * set.k_chunk, k_end = std::min(p.K, k_begin + set.k_chunk);
    for (int m0 = 0; m0 < max_m; m0 += BM)
      for (int n0 = 0; n0 < n_total; n0 += BN) {
        if (m0 >= p.M || n0 >= p.N) continue;
        std::vector<Loader> loaders;
        for (int tid = 0; tid < kThreadsPerBlock; ++tid) loaders.emplace_back(p, tid, m0, n0);
        std::vector<double> acc(static_cast<size_t>(BM * BN), 0.0);
        for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
          std::vector<float> a_slice(static_cast<size_t>(kTileK * BM), kNaN), b_slice(static_cast<size_t>(kTileK * BN), kNaN);
          for (int tid = 0; tid < kThreadsPerBlock; ++tid) {
            float a[Loader::kAElems], b[Loader::kBElems];
            loaders[size_t(tid)].load(p, k0, k_end, a, b);
            for (int e = 0; e < Loader::kAElems; ++e)
              a_slice[size_t(slice_k<BM, Problem::kAAlongK>(tid, e) * BM + slice_row<BM, Problem::kAAlongK>(tid, e))] = a[e];
            for (int e = 0; e < Loader::kBElems; ++e)
              b_slice[size_t(slice_k<BN, Problem::kBAlongK>(tid, e) * BN + slice_row<BN, Problem::kBAlongK>(tid, e))] = b[e];
          }
          for (int kk = 0; kk < kTileK; ++kk)
            for (int r = 0; r < BM; ++r)
              for (int c = 0; c < BN; ++c)
                acc[size_t(r) * BN + c] += double(a_slice[size_t(kk) * BM + r]) * double(b_slice[size_t(kk) * BN + c]);
        }
        for (int r = 0; r < BM && m0 + r < p.M; ++r)
          for (int c = 0; c < BN && n0 + c < p.N; ++c) p.store(m0 + r, n0 + c, float(acc[size_t(r) * BN + c]), split);
      }
  }
}

template <class Problem> void emulate_pass(const GemmPass<Problem>& pass) {
  for (const ProblemSet<Problem>& set : pass.launches) {
    if (pass.large_tile)
      emulate_launch<Problem, kLargeTile, kLargeTile>(set);
    else
      emulate_launch<Problem, kSmallTile, kSmallTile>(set);
  }
  if (pass.sum.splits > 1)
    for (int64_t i = 0; i < pass.sum.count; ++i) pass.sum.out[i] = pass.sum.value(i);
}

// The three passes exactly as conv2d.cu runs them, on a NaN-poisoned workspace of the advertised size.
void emulate_correlate(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  std::vector<float> ws(size_t(plan_correlate(g).workspace_floats()), kNaN);
  correlate_pass(g, x, w, bias, y, ws.empty() ? nullptr : ws.data(), [](const auto& pass) { emulate_pass(pass); });
}
void emulate_adjoint(const ConvGeometry& g, const float* dy, const float* w, const float* bias, float* dx) {
  std::vector<float> ws(size_t(plan_adjoint(g).workspace_floats()), kNaN);
  adjoint_pass(g, dy, w, bias, dx, ws.empty() ? nullptr : ws.data(), [](const auto& pass) { emulate_pass(pass); });
}
void emulate_weight_grad(const ConvGeometry& g, const float* x, const float* dy, float* dw) {
  std::vector<float> ws(size_t(plan_weight_grad(g).workspace_floats()), kNaN);
  weight_grad_pass(g, x, dy, dw, ws.empty() ? nullptr : ws.data(), [](const auto& pass) { emulate_pass(pass); });
}

// The K range of every problem of a pass, per split: [z·k_chunk, min(K, (z+1)·k_chunk)), as the kernel computes it.
struct PassShape {
  PassPlan plan;
  std::vector<int> ks;  // K of each problem
  int splits = 0, k_chunk = 0;
};
template <class Build> PassShape shape_of(const PassPlan& plan, Build build) {
  PassShape s;
  s.plan = plan;
  float dummy = 0;  // never dereferenced: the builders only store pointers
  build(static_cast<void*>(&dummy), [&](const auto& pass) {
    for (const auto& set : pass.launches) {
      s.splits = set.splits, s.k_chunk = set.k_chunk;
      for (int i = 0; i < set.count; ++i) s.ks.push_back(set.items[i].K);
    }
  });
  return s;
}
std::vector<PassShape> pass_shapes(const ConvGeometry& g) {
  float* f = nullptr;
  return {shape_of(plan_correlate(g), [&](void* ws, auto run) { correlate_pass(g, f, f, f, f, ws, run); }),
          shape_of(plan_adjoint(g), [&](void* ws, auto run) { adjoint_pass(g, f, f, f, f, ws, run); }),
          shape_of(plan_weight_grad(g), [&](void* ws, auto run) { weight_grad_pass(g, f, f, f, ws, run); })};
}
const char* const kPassNames[] = {"correlate", "adjoint", "weight_grad"};

// Random small geometries beyond the model layers: kernels 1..5, strides 1..4 (also above the kernel: phases without
// taps), any padding that leaves an output, output_pad up to stride − 1, non-square maps; every third transposed
// case on a 1×1 input (the dense GEMM when pad and output_pad are 0).
std::vector<ConvCase> random_cases(int count, unsigned seed, int max_channels = 4) {
  std::mt19937 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<ConvCase> cases;
  while (int(cases.size()) < count) {
    ConvCase c;
    c.transposed = cases.size() % 2 == 1;
    c.batch = pick(1, 2), c.in_channels = pick(1, max_channels), c.out_channels = pick(1, max_channels);
    c.kernel = pick(1, 5), c.stride = pick(1, 4), c.pad = pick(0, c.kernel);
    c.in_h = pick(1, 7), c.in_w = pick(1, 7);
    if (c.transposed) {
      if (cases.size() % 3 == 0) c.in_h = c.in_w = 1, c.pad = pick(0, 1);
      c.output_pad = pick(0, c.stride - 1);
      if (c.tconv().out_h() < 1 || c.tconv().out_w() < 1) continue;
    } else if (c.in_h + 2 * c.pad < c.kernel || c.in_w + 2 * c.pad < c.kernel) {
      continue;
    }
    c.name = std::string(c.transposed ? "t" : "c") + " b" + std::to_string(c.batch) + " " + std::to_string(c.in_channels) +
             "x" + std::to_string(c.in_h) + "x" + std::to_string(c.in_w) + "->" + std::to_string(c.out_channels) + " k" +
             std::to_string(c.kernel) + "s" + std::to_string(c.stride) + "p" + std::to_string(c.pad) + "op" +
             std::to_string(c.output_pad);
    cases.push_back(c);
  }
  return cases;
}

// ---- tests ------------------------------------------------------------------------------------------------------

TEST(ConvIndexMaps, FastDivmodMatchesDivision) {
  std::mt19937_64 rng(5);
  for (int d : {1, 2, 3, 5, 7, 16, 81, 100, 4096, 36864, 524288, 1000003, 0x7fffffff}) {
    const FastDivmod div(d);
    for (int i = 0; i < 20000; ++i) {
      const int n = i < 10000 ? i : int(rng() & 0x7fffffff);
      int q, r;
      div.divmod(n, q, r);
      ASSERT_EQ(q, n / d) << n << " / " << d;
      ASSERT_EQ(r, n % d) << n << " % " << d;
    }
  }
}

// Every split plan covers each problem's K exactly once: chunks a multiple of the slice depth, no gap, no overlap,
// no split beyond the longest K, never more than kMaxSplits, none when the tiles already fill the GPU.
TEST(ConvIndexMaps, SplitPlansCoverK) {
  std::vector<ConvCase> cases = conv_test::all_cases();
  for (const ConvCase& c : conv_test::small_cases()) cases.push_back(c);
  for (const ConvCase& c : random_cases(300, 23, 200)) cases.push_back(c);
  for (const ConvCase& c : cases) {
    const auto shapes = pass_shapes(c.geometry());
    for (size_t i = 0; i < shapes.size(); ++i) {
      SCOPED_TRACE(c.name + " " + kPassNames[i]);
      const PassShape& s = shapes[i];
      ASSERT_FALSE(s.ks.empty());
      EXPECT_EQ(s.splits, s.plan.splits);
      EXPECT_EQ(s.k_chunk, s.plan.k_chunk);
      EXPECT_EQ(s.k_chunk % kTileK, 0);
      EXPECT_GE(s.splits, 1);
      EXPECT_LE(s.splits, kMaxSplits);
      if (s.plan.tiles >= kTargetBlocks) {
        EXPECT_EQ(s.splits, 1);
      }
      const int k_max = *std::max_element(s.ks.begin(), s.ks.end());
      EXPECT_LT(int64_t(s.splits - 1) * s.k_chunk, std::max(k_max, 1)) << "an empty split";
      for (int k_total : s.ks) {
        std::vector<int> hits(size_t(k_total), 0);
        for (int z = 0; z < s.splits; ++z)
          for (int k = z * s.k_chunk; k < std::min(k_total, (z + 1) * s.k_chunk); ++k) ++hits[size_t(k)];
        EXPECT_TRUE(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; })) << "K = " << k_total;
      }
      EXPECT_EQ(s.plan.workspace_floats(), s.splits > 1 ? int64_t(s.splits) * s.plan.output_count : 0);
    }
  }
}

// The dense-GEMM detection: a 1×1 output that covers the whole input, and nothing else.
TEST(ConvIndexMaps, DenseDetection) {
  EXPECT_TRUE(plan_adjoint(tconv_case("G0", 128, 100, 1, 512, 4, 1, 0).geometry()).dense);
  EXPECT_TRUE(plan_correlate(conv_case("D4", 128, 512, 4, 1, 4, 1, 0).geometry()).dense);
  EXPECT_TRUE(plan_adjoint(tconv_case("stride_irrelevant", 2, 3, 1, 5, 3, 2, 0).geometry()).dense);
  EXPECT_FALSE(plan_adjoint(tconv_case("padded", 2, 3, 1, 5, 4, 1, 1).geometry()).dense);          // crops taps
  EXPECT_FALSE(plan_adjoint(tconv_case("output_pad", 2, 3, 1, 5, 4, 2, 0, 1).geometry()).dense);   // bias-only row
  EXPECT_FALSE(plan_correlate(conv_case("input_beyond_kernel", 2, 3, 5, 5, 4, 2, 0).geometry()).dense);  // 1×1 out
  EXPECT_FALSE(plan_correlate(conv_case("padded_conv", 2, 3, 4, 5, 4, 4, 1).geometry()).dense);
}

// Every pass of one layer through the kernels' passes on the host, against the reference; outputs start as NaN, so a
// position no phase or split covers fails.
void expect_emulation_matches_reference(const ConvCase& c) {
  SCOPED_TRACE(c.name);
  const ConvGeometry g = c.geometry();
  const int out_channels = c.transposed ? c.tconv().out_channels : c.conv().out_channels;
  const auto x = random_vector<float>(c.x_size(), 1), w = random_vector<float>(c.w_size(), 2);
  const auto bias = random_vector<float>(out_channels, 3), dy = random_vector<float>(c.y_size(), 4);
  std::vector<float> want_y(size_t(c.y_size())), want_dx(size_t(c.x_size())), want_dw(size_t(c.w_size()));
  auto y = testing::poisoned_vector<float>(c.y_size()), dx = testing::poisoned_vector<float>(c.x_size());
  auto dw = testing::poisoned_vector<float>(c.w_size());
  if (c.transposed) {
    ref::conv_transpose2d_forward(c.tconv(), x.data(), w.data(), bias.data(), want_y.data());
    ref::conv_transpose2d_backward_input(c.tconv(), dy.data(), w.data(), want_dx.data());
    ref::conv_transpose2d_backward_weight(c.tconv(), x.data(), dy.data(), want_dw.data());
    emulate_adjoint(g, x.data(), w.data(), bias.data(), y.data());
    emulate_correlate(g, dy.data(), w.data(), nullptr, dx.data());
    emulate_weight_grad(g, dy.data(), x.data(), dw.data());
  } else {
    ref::conv2d_forward(c.conv(), x.data(), w.data(), bias.data(), want_y.data());
    ref::conv2d_backward_input(c.conv(), dy.data(), w.data(), want_dx.data());
    ref::conv2d_backward_weight(c.conv(), x.data(), dy.data(), want_dw.data());
    emulate_correlate(g, x.data(), w.data(), bias.data(), y.data());
    emulate_adjoint(g, dy.data(), w.data(), nullptr, dx.data());
    emulate_weight_grad(g, x.data(), dy.data(), dw.data());
  }
  EXPECT_TRUE(testing::close_rel_l2(y, want_y, 1e-6)) << "forward";
  EXPECT_TRUE(testing::close_rel_l2(dx, want_dx, 1e-6)) << "backward_input";
  EXPECT_TRUE(testing::close_rel_l2(dw, want_dw, 1e-6)) << "backward_weight";
}

TEST(ConvIndexMaps, HostEmulationMatchesReference) {
  std::vector<ConvCase> cases;
  for (const ConvCase& c : conv_test::all_cases())
    if (c.flops() <= 2e7) cases.push_back(c);
  for (const ConvCase& c : conv_test::small_cases()) cases.push_back(c);
  // DCGAN-64's projection and head at batch 8, dense with split-K in the passes of length C·16 = 8192.
  cases.push_back(tconv_case("dcgan64_G0_b8", 8, 100, 1, 512, 4, 1, 0));
  cases.push_back(conv_case("dcgan64_D4_b8", 8, 512, 4, 1, 4, 1, 0));
  for (const ConvCase& c : cases) expect_emulation_matches_reference(c);
}

TEST(ConvIndexMaps, HostEmulationMatchesReferenceOnRandomGeometries) {
  for (const ConvCase& c : random_cases(300, 17)) {
    expect_emulation_matches_reference(c);
    if (::testing::Test::HasFailure()) return;
  }
}

// Wide random channels, so that the split-K paths are taken in every orientation, against the reference.
TEST(ConvIndexMaps, SplitPassesMatchReferenceOnRandomGeometries) {
  int split = 0;
  for (const ConvCase& c : random_cases(60, 29, 160)) {
    for (const PassShape& s : pass_shapes(c.geometry())) split += s.splits > 1;
    expect_emulation_matches_reference(c);
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_GE(split, 30) << "too few split passes to exercise split-K";
}

// The split pass equals the same problem summed in one go (the kernel's old path), to fp32 rounding.
TEST(ConvIndexMaps, SplitSumEqualsUnsplit) {
  const ConvCase c = conv_case("split", 2, 64, 16, 64, 3, 1, 1);
  const ConvGeometry g = c.geometry();
  ASSERT_GT(plan_correlate(g).splits, 1);
  const auto x = random_vector<float>(c.x_size(), 41), w = random_vector<float>(c.w_size(), 42);
  const auto bias = random_vector<float>(g.out_channels, 43);
  auto split = testing::poisoned_vector<float>(c.y_size()), whole = testing::poisoned_vector<float>(c.y_size());
  emulate_correlate(g, x.data(), w.data(), bias.data(), split.data());
  ProblemSet<ConvGatherProblem> set;
  set.items[0] = make_correlate_problem(g, x.data(), w.data(), bias.data(), whole.data());
  set.count = 1;
  set.k_chunk = set.items[0].K;
  emulate_launch<ConvGatherProblem, kSmallTile, kSmallTile>(set);
  EXPECT_TRUE(testing::close_rel_l2(split, whole, 1e-6));
}

// The hoisted gather (a thread's pixel decomposed once, k's taps shared by A and B) reads exactly the elements the
// per-element index arithmetic it replaced read, for every (m, k) and (k, n) of every problem.
struct DirectGather {  // the previous ConvGatherProblem::a / ::b, two divmods per coordinate per element
  const ConvGatherProblem& p;
  float a(int m, int k) const {
    const int cols = int(p.cols.divisor), rows = int(p.rows.divisor);
    const int i = m % cols, j = m / cols % rows, image = m / cols / rows;
    const int taps = int(p.taps.divisor), taps_w = int(p.taps_w.divisor);
    const int c = k / taps, t = k % taps / taps_w, u = k % taps % taps_w;
    const int iy = j * p.in_step + t * p.tap_step + p.in_off_h, ix = i * p.in_step + u * p.tap_step + p.in_off_w;
    if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w) return 0.0f;
    return p.x[((int64_t(image) * p.in_channels + c) * p.in_h + iy) * p.in_w + ix];
  }
  float b(int k, int n) const {
    const int taps = int(p.taps.divisor), taps_w = int(p.taps_w.divisor);
    const int c = k / taps, t = k % taps / taps_w, u = k % taps % taps_w;
    return p.w[c * p.w_c_stride + n * p.w_n_stride + (p.ky0 + t * p.k_step) * p.kernel + p.kx0 + u * p.k_step];
  }
};

TEST(ConvIndexMaps, HoistedGatherEqualsDirect) {
  int checked = 0;
  for (const ConvCase& c : random_cases(200, 31)) {
    const ConvGeometry g = c.geometry();
    if (is_dense(g)) continue;
    const auto in = random_vector<float>(std::max(c.x_size(), c.y_size()), 51), w = random_vector<float>(c.w_size(), 52);
    std::vector<ConvGatherProblem> problems = {make_correlate_problem(g, in.data(), w.data(), nullptr, nullptr)};
    for (int ph = 0; ph < g.stride; ++ph)
      for (int pw = 0; pw < g.stride; ++pw)
        problems.push_back(make_adjoint_phase_problem(g, ph, pw, in.data(), w.data(), nullptr, nullptr));
    for (const ConvGatherProblem& p : problems) {
      const DirectGather direct{p};
      for (int m = 0; m < p.M; ++m) {
        const auto row = p.a_row(m);
        for (int k = 0; k < p.K; ++k) ASSERT_EQ(p.a(row, p.k_pos(k)), direct.a(m, k)) << c.name << " m " << m << " k " << k;
      }
      for (int n = 0; n < p.N; ++n)
        for (int k = 0; k < p.K; ++k) ASSERT_EQ(p.b(p.k_pos(k), p.b_col(n)), direct.b(k, n)) << c.name;
      ++checked;
    }
  }
  EXPECT_GT(checked, 300);
}

// The small GPU cases (the ones compute-sanitizer runs) reach every kernel variant.
TEST(ConvIndexMaps, SmallCasesReachEveryVariant) {
  bool dense_split = false, dense_unsplit = false, gather_split = false, gather_unsplit = false;
  bool phases_split = false, weight_grad_split = false, bias_sum = false, large_tile = false;
  for (const ConvCase& c : conv_test::small_cases()) {
    const ConvGeometry g = c.geometry();
    const PassPlan y = c.transposed ? plan_adjoint(g) : plan_correlate(g);
    const PassPlan dx = c.transposed ? plan_correlate(g) : plan_adjoint(g);
    const PassPlan dw = plan_weight_grad(g);
    for (const PassPlan& p : {y, dx, dw}) {
      (p.dense ? (p.splits > 1 ? dense_split : dense_unsplit) : (p.splits > 1 ? gather_split : gather_unsplit)) = true;
      large_tile |= p.large_tile;
    }
    bias_sum |= y.splits > 1;
    weight_grad_split |= !dw.dense && dw.splits > 1;
    phases_split |= g.stride == 2 && (c.transposed ? y : dx).splits > 1;
  }
  EXPECT_TRUE(dense_split && dense_unsplit && gather_split && gather_unsplit);
  EXPECT_TRUE(phases_split && weight_grad_split && bias_sum);
  EXPECT_TRUE(large_tile);  // the 128×128 tile runs under the sanitizers too
}

// A pass that needs a workspace refuses a null one before launching anything (so this runs without a GPU).
TEST(ConvIndexMaps, MissingWorkspaceThrows) {
  const Conv2dParams head{128, 512, 4, 4, 1, 4, 1, 0};  // DCGAN-64 D4: the forward GEMV is split
  ASSERT_GT(cuda::conv2d_forward_workspace_bytes(head), 0u);
  const float* f = nullptr;
  EXPECT_THROW(cuda::conv2d_forward(head, cuda::MathMode::kFp32, f, f, f, nullptr, nullptr, nullptr),
               std::invalid_argument);
  const ConvTranspose2dParams projection{128, 100, 1, 1, 512, 4, 1, 0, 0};  // DCGAN-64 G0: dx is split
  ASSERT_GT(cuda::conv_transpose2d_backward_input_workspace_bytes(projection), 0u);
  EXPECT_THROW(cuda::conv_transpose2d_backward_input(projection, cuda::MathMode::kFp32, f, f, nullptr, nullptr, nullptr),
               std::invalid_argument);
}

// DCGAN-64 at batch 128 (the layers a training step spends its time in): no pass runs on fewer than 128 blocks (about
// one per SM) unless its reduction is too short to split. Prints the plans (for bench/NOTES.md).
TEST(ConvIndexMaps, DcganPassesFillTheGpu) {
  for (const ConvCase& c : conv_test::all_cases()) {
    if (c.name.rfind("dcgan64_", 0) != 0) continue;
    const auto shapes = pass_shapes(c.geometry());
    for (size_t i = 0; i < shapes.size(); ++i) {
      const PassShape& s = shapes[i];
      const int k_max = *std::max_element(s.ks.begin(), s.ks.end());
      const int64_t blocks = s.plan.tiles * s.plan.splits;
      if (k_max >= 2 * kMinKPerSplit) {
        EXPECT_GE(blocks, 128) << c.name << " " << kPassNames[i];
      }
      std::printf("  %-10s %-11s %-9s tiles %4lld × splits %3d = %4lld blocks, K %6d, per block %5d, workspace %.2f MB\n",
                  c.name.c_str(), kPassNames[i], s.plan.dense ? "dense" : (s.plan.large_tile ? "gather128" : "gather64"),
                  static_cast<long long>(s.plan.tiles), s.plan.splits, static_cast<long long>(blocks), k_max,
                  std::min(k_max, s.k_chunk), double(s.plan.workspace_floats()) * 4e-6);
    }
  }
}

}  // namespace
}  // namespace gancu
