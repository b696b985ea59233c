// conv2d / conv_transpose2d: custom CUDA kernels (fp32, TF32) and cuDNN baselines (fp32, TF32) against the CPU
// reference, every pass, on every layer shape of DCGAN-32, DCGAN-64 and SRGAN plus odd shapes.
// Tolerances (relative L2): 1e-5 strict fp32, 5e-3 TF32. Outputs are NaN-poisoned before each kernel.
// Shapes whose forward costs more than kFullReferenceFlops are checked on kSamples random output elements of each
// pass, each computed by a direct double loop (the full double reference would take minutes on the CPU).
//
// The ConvIndexMaps suite needs no GPU: it runs the kernels' index maps (conv_problems.cuh: phases, gathers,
// split-K plan) through a scalar host loop and checks them against the reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv_transpose2d.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/conv_engine.cuh"
#include "kernels/cuda/conv_transpose2d.h"
#include "kernels/cudnn/conv2d.h"
#include "kernels/cudnn/conv_transpose2d.h"
#include "tests/gpu/gpu_test.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using cuda::MathMode;
using cuda::detail::ConvGeometry;
using testing::random_vector;
using testing::rel_l2_error;

constexpr double kFullReferenceFlops = 2e8;
constexpr int kSamples = 1024;

// One layer: a conv2d, or a conv_transpose2d when `transposed`. `in_w` 0 means square input.
struct ConvCase {
  std::string name;
  bool transposed = false;
  int batch = 1, in_channels = 1, in_h = 1, out_channels = 1, kernel = 1, stride = 1, pad = 0, output_pad = 0;
  int in_w = 0;

  Conv2dParams conv() const { return {batch, in_channels, in_h, in_w ? in_w : in_h, out_channels, kernel, stride, pad}; }
  ConvTranspose2dParams tconv() const {
    return {batch, in_channels, in_h, in_w ? in_w : in_h, out_channels, kernel, stride, pad, output_pad};
  }
  // The forward-orientation conv whose passes this layer's passes are (a transposed conv is its adjoint).
  ConvGeometry geometry() const {
    if (!transposed) {
      const Conv2dParams p = conv();
      return {p.batch, p.in_channels, p.in_h, p.in_w, p.out_channels, p.out_h(), p.out_w(), p.kernel, p.stride, p.pad};
    }
    const ConvTranspose2dParams p = tconv();
    return {p.batch, p.out_channels, p.out_h(), p.out_w(), p.in_channels, p.in_h, p.in_w, p.kernel, p.stride, p.pad};
  }
  int64_t x_size() const { return transposed ? tconv().x_size() : conv().x_size(); }
  int64_t y_size() const { return transposed ? tconv().y_size() : conv().y_size(); }
  int64_t w_size() const { return transposed ? tconv().w_size() : conv().w_size(); }
  int out_spatial() const { return transposed ? tconv().out_h() * tconv().out_w() : conv().out_h() * conv().out_w(); }
  double flops() const { return transposed ? tconv().flops() : conv().flops(); }
};

// Test names and failure messages show the case's name, not its bytes.
void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

ConvCase conv_case(std::string name, int batch, int cin, int size, int cout, int k, int s, int p) {
  return {std::move(name), false, batch, cin, size, cout, k, s, p};
}
ConvCase tconv_case(std::string name, int batch, int cin, int size, int cout, int k, int s, int p, int op = 0) {
  return {std::move(name), true, batch, cin, size, cout, k, s, p, op};
}

std::vector<ConvCase> all_cases() {
  std::vector<ConvCase> c;
  // DCGAN-32, batch 64, nz 100, ngf = ndf = 64; 3-channel (CIFAR) and 1-channel (MNIST) images.
  c.push_back(tconv_case("dcgan32_G0", 64, 100, 1, 256, 4, 1, 0));
  c.push_back(tconv_case("dcgan32_G1", 64, 256, 4, 128, 4, 2, 1));
  c.push_back(tconv_case("dcgan32_G2", 64, 128, 8, 64, 4, 2, 1));
  c.push_back(tconv_case("dcgan32_G3_rgb", 64, 64, 16, 3, 4, 2, 1));
  c.push_back(tconv_case("dcgan32_G3_gray", 64, 64, 16, 1, 4, 2, 1));
  c.push_back(conv_case("dcgan32_D0_rgb", 64, 3, 32, 64, 4, 2, 1));
  c.push_back(conv_case("dcgan32_D0_gray", 64, 1, 32, 64, 4, 2, 1));
  c.push_back(conv_case("dcgan32_D1", 64, 64, 16, 128, 4, 2, 1));
  c.push_back(conv_case("dcgan32_D2", 64, 128, 8, 256, 4, 2, 1));
  c.push_back(conv_case("dcgan32_D3", 64, 256, 4, 1, 4, 1, 0));
  // DCGAN-64, batch 128.
  c.push_back(tconv_case("dcgan64_G0", 128, 100, 1, 512, 4, 1, 0));
  c.push_back(tconv_case("dcgan64_G1", 128, 512, 4, 256, 4, 2, 1));
  c.push_back(tconv_case("dcgan64_G2", 128, 256, 8, 128, 4, 2, 1));
  c.push_back(tconv_case("dcgan64_G3", 128, 128, 16, 64, 4, 2, 1));
  c.push_back(tconv_case("dcgan64_G4", 128, 64, 32, 3, 4, 2, 1));
  c.push_back(conv_case("dcgan64_D0", 128, 3, 64, 64, 4, 2, 1));
  c.push_back(conv_case("dcgan64_D1", 128, 64, 32, 128, 4, 2, 1));
  c.push_back(conv_case("dcgan64_D2", 128, 128, 16, 256, 4, 2, 1));
  c.push_back(conv_case("dcgan64_D3", 128, 256, 8, 512, 4, 2, 1));
  c.push_back(conv_case("dcgan64_D4", 128, 512, 4, 1, 4, 1, 0));
  // SRGAN (4×, 24→96), batch 16.
  c.push_back(conv_case("srgan_G_head", 16, 3, 24, 64, 9, 1, 4));
  c.push_back(conv_case("srgan_G_res", 16, 64, 24, 64, 3, 1, 1));
  c.push_back(conv_case("srgan_G_up24", 16, 64, 24, 256, 3, 1, 1));
  c.push_back(conv_case("srgan_G_up48", 16, 64, 48, 256, 3, 1, 1));
  c.push_back(conv_case("srgan_G_tail", 16, 64, 96, 3, 9, 1, 4));
  c.push_back(conv_case("srgan_D0", 16, 3, 96, 64, 3, 1, 1));
  c.push_back(conv_case("srgan_D1", 16, 64, 96, 64, 3, 2, 1));
  c.push_back(conv_case("srgan_D2", 16, 64, 48, 128, 3, 1, 1));
  c.push_back(conv_case("srgan_D3", 16, 128, 48, 128, 3, 2, 1));
  c.push_back(conv_case("srgan_D4", 16, 128, 24, 256, 3, 1, 1));
  c.push_back(conv_case("srgan_D5", 16, 256, 24, 256, 3, 2, 1));
  c.push_back(conv_case("srgan_D6", 16, 256, 12, 512, 3, 1, 1));
  c.push_back(conv_case("srgan_D7", 16, 512, 12, 512, 3, 2, 1));
  // Odd shapes: channels off the tile, 1×1 maps, batch 1, kernels 1/3/4/9, non-square, strides 2 and 3.
  ConvCase rect = conv_case("odd_rect_c5_c7_k3", 1, 5, 9, 7, 3, 1, 1);
  rect.in_w = 13;
  c.push_back(rect);
  c.push_back(conv_case("odd_1x1map_k1", 3, 7, 1, 5, 1, 1, 0));
  c.push_back(conv_case("odd_1x1map_k9p4", 2, 3, 1, 5, 9, 1, 4));
  c.push_back(conv_case("odd_k4s2_13x13", 2, 3, 13, 5, 4, 2, 1));
  c.push_back(conv_case("odd_c130_c70", 2, 130, 9, 70, 3, 1, 1));
  c.push_back(conv_case("odd_k3s3", 1, 7, 10, 3, 3, 3, 0));
  c.push_back(tconv_case("odd_t_k4s2_b1", 1, 7, 5, 3, 4, 2, 1));
  c.push_back(tconv_case("odd_t_k3s2_op1", 2, 5, 6, 7, 3, 2, 1, 1));
  c.push_back(tconv_case("odd_t_k1s2_zero_phases", 2, 3, 4, 5, 1, 2, 0));
  c.push_back(tconv_case("odd_t_k5s3_op2", 2, 4, 3, 6, 5, 3, 1, 2));
  c.push_back(tconv_case("odd_t_1x1map_k4", 1, 3, 1, 5, 4, 1, 0));
  c.push_back(tconv_case("odd_t_c70_c130", 2, 70, 5, 130, 4, 2, 1));
  return c;
}

// ---- direct double loops on the forward-orientation geometry (element samples of the big shapes) ---------------

double correlate_at(const ConvGeometry& g, const float* x, const float* w, int64_t index) {
  const int ox = int(index % g.out_w), oy = int(index / g.out_w % g.out_h);
  const int co = int(index / (int64_t(g.out_w) * g.out_h) % g.out_channels);
  const int64_t n = index / (int64_t(g.out_w) * g.out_h * g.out_channels);
  double sum = 0;
  for (int ci = 0; ci < g.in_channels; ++ci)
    for (int ky = 0; ky < g.kernel; ++ky)
      for (int kx = 0; kx < g.kernel; ++kx) {
        const int iy = oy * g.stride - g.pad + ky, ix = ox * g.stride - g.pad + kx;
        if (iy < 0 || iy >= g.in_h || ix < 0 || ix >= g.in_w) continue;
        sum += double(x[((n * g.in_channels + ci) * g.in_h + iy) * g.in_w + ix]) *
               double(w[((int64_t(co) * g.in_channels + ci) * g.kernel + ky) * g.kernel + kx]);
      }
  return sum;
}

double adjoint_at(const ConvGeometry& g, const float* dy, const float* w, int64_t index) {
  const int ix = int(index % g.in_w), iy = int(index / g.in_w % g.in_h);
  const int ci = int(index / (int64_t(g.in_w) * g.in_h) % g.in_channels);
  const int64_t n = index / (int64_t(g.in_w) * g.in_h * g.in_channels);
  double sum = 0;
  for (int co = 0; co < g.out_channels; ++co)
    for (int ky = 0; ky < g.kernel; ++ky)
      for (int kx = 0; kx < g.kernel; ++kx) {
        const int ty = iy + g.pad - ky, tx = ix + g.pad - kx;
        if (ty < 0 || tx < 0 || ty % g.stride || tx % g.stride) continue;
        const int oy = ty / g.stride, ox = tx / g.stride;
        if (oy >= g.out_h || ox >= g.out_w) continue;
        sum += double(dy[((n * g.out_channels + co) * g.out_h + oy) * g.out_w + ox]) *
               double(w[((int64_t(co) * g.in_channels + ci) * g.kernel + ky) * g.kernel + kx]);
      }
  return sum;
}

double weight_grad_at(const ConvGeometry& g, const float* x, const float* dy, int64_t index) {
  const int kx = int(index % g.kernel), ky = int(index / g.kernel % g.kernel);
  const int ci = int(index / (g.kernel * g.kernel) % g.in_channels);
  const int co = int(index / (int64_t(g.kernel) * g.kernel * g.in_channels));
  double sum = 0;
  for (int64_t n = 0; n < g.batch; ++n)
    for (int oy = 0; oy < g.out_h; ++oy)
      for (int ox = 0; ox < g.out_w; ++ox) {
        const int iy = oy * g.stride - g.pad + ky, ix = ox * g.stride - g.pad + kx;
        if (iy < 0 || iy >= g.in_h || ix < 0 || ix >= g.in_w) continue;
        sum += double(dy[((n * g.out_channels + co) * g.out_h + oy) * g.out_w + ox]) *
               double(x[((n * g.in_channels + ci) * g.in_h + iy) * g.in_w + ix]);
      }
  return sum;
}

// Expected values of one pass: all of them, or a random sample.
struct Expected {
  std::vector<int64_t> indices;  // empty: full comparison
  std::vector<double> values;
};

template <class ElementFn> Expected sample(int64_t size, uint64_t seed, ElementFn element) {
  Expected e;
  std::mt19937_64 rng(seed);
  e.indices = {0, size - 1};  // the first and last tiles' corners, where the edge guards act
  for (int i = 0; i < kSamples; ++i) e.indices.push_back(int64_t(rng() % uint64_t(size)));
  for (int64_t index : e.indices) e.values.push_back(element(index));
  return e;
}

// A sampled comparison alone would miss elements the kernel never wrote: every element must have been overwritten
// (the buffers are NaN-poisoned, the inputs give finite outputs) whether it is sampled or not.
double compare(const std::vector<float>& got, const Expected& e) {
  if (!std::all_of(got.begin(), got.end(), [](float v) { return std::isfinite(v); }))
    return std::numeric_limits<double>::quiet_NaN();
  if (e.indices.empty()) return rel_l2_error(got, e.values);
  std::vector<double> picked;
  for (int64_t index : e.indices) picked.push_back(got[size_t(index)]);
  return rel_l2_error(picked, e.values);
}

template <class T> Expected full(const std::vector<T>& values) { return {{}, std::vector<double>(values.begin(), values.end())}; }

// ---- index maps on the host (no GPU) ----------------------------------------------------------------------------

// The engine's contract, as a scalar loop: split z sums k in [z·k_chunk, min(K, (z+1)·k_chunk)) and stores once.
template <class Problem> void run_on_host(const Problem& p, int splits, int k_chunk) {
  for (int split = 0; split < splits; ++split) {
    const int k_begin = split * k_chunk, k_end = std::min(p.K, k_begin + k_chunk);
    for (int m = 0; m < p.M; ++m)
      for (int n = 0; n < p.N; ++n) {
        double acc = 0;
        for (int k = k_begin; k < k_end; ++k) acc += double(p.a(m, k)) * double(p.b(k, n));
        p.store(m, n, float(acc), split);
      }
  }
}

// Mirrors conv2d.cu's dispatch: one problem, every stride phase, or the split-K plan plus the fixed-order sum.
void emulate_correlate(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  const auto p = cuda::detail::make_correlate_problem(g, x, w, bias, y);
  run_on_host(p, 1, p.K);
}
void emulate_adjoint(const ConvGeometry& g, const float* dy, const float* w, const float* bias, float* dx) {
  for (int ph = 0; ph < g.stride; ++ph)
    for (int pw = 0; pw < g.stride; ++pw) {
      const auto p = cuda::detail::make_adjoint_phase_problem(g, ph, pw, dy, w, bias, dx);
      run_on_host(p, 1, p.K);
    }
}
void emulate_weight_grad(const ConvGeometry& g, const float* x, const float* dy, float* dw) {
  const auto plan = cuda::detail::plan_weight_grad(g);
  auto p = cuda::detail::make_weight_grad_problem(g, x, dy, dw);
  std::vector<float> partial(size_t(cuda::detail::weight_grad_workspace_floats(g)),
                             std::numeric_limits<float>::quiet_NaN());
  if (plan.splits > 1) p.partial = partial.data();
  run_on_host(p, plan.splits, plan.k_chunk);
  if (plan.splits == 1) return;
  const int64_t count = int64_t(p.M) * p.N;
  for (int64_t i = 0; i < count; ++i) {
    float sum = 0;
    for (int s = 0; s < plan.splits; ++s) sum += partial[size_t(s * count + i)];
    dw[i] = sum;
  }
}

TEST(ConvIndexMaps, FastDivmodMatchesDivision) {
  std::mt19937_64 rng(5);
  for (int d : {1, 2, 3, 5, 7, 16, 81, 100, 4096, 36864, 524288, 1000003, 0x7fffffff}) {
    const cuda::detail::FastDivmod div(d);
    for (int i = 0; i < 20000; ++i) {
      const int n = i < 10000 ? i : int(rng() & 0x7fffffff);
      int q, r;
      div.divmod(n, q, r);
      ASSERT_EQ(q, n / d) << n << " / " << d;
      ASSERT_EQ(r, n % d) << n << " % " << d;
    }
  }
}

TEST(ConvIndexMaps, WeightGradPlanCoversK) {
  for (const ConvCase& c : all_cases()) {
    const ConvGeometry g = c.geometry();
    const auto plan = cuda::detail::plan_weight_grad(g);
    const int64_t k = int64_t(g.batch) * g.out_h * g.out_w;
    EXPECT_EQ(plan.k_chunk % cuda::detail::kTileK, 0) << c.name;
    EXPECT_GE(int64_t(plan.splits) * plan.k_chunk, k) << c.name;
    EXPECT_LT(int64_t(plan.splits - 1) * plan.k_chunk, std::max<int64_t>(k, 1)) << c.name;  // no empty split
  }
}

// Every pass of one layer through the kernels' index maps, against the reference; outputs start as NaN, so a position
// no phase covers fails.
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
  EXPECT_LE(rel_l2_error(y, want_y), 1e-6) << "forward";
  EXPECT_LE(rel_l2_error(dx, want_dx), 1e-6) << "backward_input";
  EXPECT_LE(rel_l2_error(dw, want_dw), 1e-6) << "backward_weight";
}

TEST(ConvIndexMaps, HostEmulationMatchesReference) {
  std::vector<ConvCase> cases;
  for (const ConvCase& c : all_cases())
    if (c.flops() <= 2e7) cases.push_back(c);
  cases.push_back(conv_case("split_k", 4, 3, 32, 5, 4, 2, 1));  // K = 1024: two splits
  ASSERT_GT(cuda::detail::plan_weight_grad(cases.back().geometry()).splits, 1);
  for (const ConvCase& c : cases) expect_emulation_matches_reference(c);
}

// Random small geometries beyond the model layers: kernels 1..5, strides 1..4 (also above the kernel: phases without
// taps), any padding that leaves an output, output_pad up to stride − 1, non-square maps.
TEST(ConvIndexMaps, HostEmulationMatchesReferenceOnRandomGeometries) {
  std::mt19937 rng(17);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int checked = 0;
  while (checked < 300) {
    ConvCase c;
    c.transposed = checked % 2 == 1;
    c.batch = pick(1, 2), c.in_channels = pick(1, 4), c.out_channels = pick(1, 4);
    c.kernel = pick(1, 5), c.stride = pick(1, 4), c.pad = pick(0, c.kernel);
    c.in_h = pick(1, 7), c.in_w = pick(1, 7);
    if (c.transposed) {
      c.output_pad = pick(0, c.stride - 1);
      if (c.tconv().out_h() < 1 || c.tconv().out_w() < 1) continue;
    } else if (c.in_h + 2 * c.pad < c.kernel || c.in_w + 2 * c.pad < c.kernel) {
      continue;
    }
    c.name = std::string(c.transposed ? "t" : "c") + " b" + std::to_string(c.batch) + " " + std::to_string(c.in_channels) +
             "x" + std::to_string(c.in_h) + "x" + std::to_string(c.in_w) + "->" + std::to_string(c.out_channels) + " k" +
             std::to_string(c.kernel) + "s" + std::to_string(c.stride) + "p" + std::to_string(c.pad) + "op" +
             std::to_string(c.output_pad);
    expect_emulation_matches_reference(c);
    if (::testing::Test::HasFailure()) return;
    ++checked;
  }
}

// ---- device plumbing --------------------------------------------------------------------------------------------

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes_) GANCU_CUDA_CHECK(cudaMalloc(&ptr_, bytes_));
  }
  explicit DeviceBuffer(const std::vector<float>& host) : DeviceBuffer(host.size() * sizeof(float)) {
    if (bytes_) GANCU_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), bytes_, cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* f() const { return static_cast<float*>(ptr_); }
  void* raw() const { return ptr_; }
  void poison() const {  // 0xFF bytes are a NaN in every float
    if (bytes_) GANCU_CUDA_CHECK(cudaMemset(ptr_, 0xFF, bytes_));
  }
  std::vector<float> download(cudaStream_t stream) const {
    std::vector<float> host(bytes_ / sizeof(float));
    GANCU_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (bytes_) GANCU_CUDA_CHECK(cudaMemcpy(host.data(), ptr_, bytes_, cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

struct Backend {
  const char* name;
  bool custom;
  MathMode mode;
  double tolerance;
};
constexpr Backend kBackends[] = {{"custom fp32", true, MathMode::kFp32, 1e-5},
                                 {"custom tf32", true, MathMode::kTf32, 5e-3},
                                 {"cudnn fp32", false, MathMode::kFp32, 1e-5},
                                 {"cudnn tf32", false, MathMode::kTf32, 5e-3}};

class ConvLayer : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvLayer, AllPassesAllBackends) {
  GANCU_REQUIRE_GPU();
  const ConvCase& c = GetParam();
  const ConvGeometry g = c.geometry();
  const int out_channels = c.transposed ? c.tconv().out_channels : c.conv().out_channels;
  const auto x = random_vector<float>(c.x_size(), 11);
  const auto w = random_vector<float>(c.w_size(), 12);
  const auto bias = random_vector<float>(out_channels, 13);
  const auto dy = random_vector<float>(c.y_size(), 14);

  // In forward orientation the layer's (x, y) are (g.in, g.out) for a conv and (g.out, g.in) for a transposed conv.
  Expected want_y, want_dx, want_dw, want_db;
  if (c.flops() <= kFullReferenceFlops) {
    std::vector<float> y(size_t(c.y_size())), dx(size_t(c.x_size())), dw(size_t(c.w_size()));
    if (c.transposed) {
      ref::conv_transpose2d_forward(c.tconv(), x.data(), w.data(), bias.data(), y.data());
      ref::conv_transpose2d_backward_input(c.tconv(), dy.data(), w.data(), dx.data());
      ref::conv_transpose2d_backward_weight(c.tconv(), x.data(), dy.data(), dw.data());
    } else {
      ref::conv2d_forward(c.conv(), x.data(), w.data(), bias.data(), y.data());
      ref::conv2d_backward_input(c.conv(), dy.data(), w.data(), dx.data());
      ref::conv2d_backward_weight(c.conv(), x.data(), dy.data(), dw.data());
    }
    want_y = full(y), want_dx = full(dx), want_dw = full(dw);
  } else {
    const int spatial = c.out_spatial();
    if (c.transposed) {  // forward = adjoint of g, backward_input = correlate of g, dw = g's weight grad (x ↔ dy)
      want_y = sample(c.y_size(), 21, [&](int64_t i) { return adjoint_at(g, x.data(), w.data(), i) + bias[size_t(i / spatial % out_channels)]; });
      want_dx = sample(c.x_size(), 22, [&](int64_t i) { return correlate_at(g, dy.data(), w.data(), i); });
      want_dw = sample(c.w_size(), 23, [&](int64_t i) { return weight_grad_at(g, dy.data(), x.data(), i); });
    } else {
      want_y = sample(c.y_size(), 21, [&](int64_t i) { return correlate_at(g, x.data(), w.data(), i) + bias[size_t(i / spatial % out_channels)]; });
      want_dx = sample(c.x_size(), 22, [&](int64_t i) { return adjoint_at(g, dy.data(), w.data(), i); });
      want_dw = sample(c.w_size(), 23, [&](int64_t i) { return weight_grad_at(g, x.data(), dy.data(), i); });
    }
  }
  {
    std::vector<float> db(static_cast<size_t>(out_channels));
    ref::bias2d_backward(c.batch, out_channels, c.out_spatial(), dy.data(), db.data());
    want_db = full(db);
  }

  cudaStream_t stream = nullptr;
  GANCU_CUDA_CHECK(cudaStreamCreate(&stream));
  cudnn::Context cudnn_ctx;
  const DeviceBuffer d_x(x), d_w(w), d_bias(bias), d_dy(dy);
  const DeviceBuffer d_y(size_t(c.y_size()) * 4), d_dx(size_t(c.x_size()) * 4), d_dw(size_t(c.w_size()) * 4),
      d_db(size_t(out_channels) * 4);
  const size_t ws_bytes = c.transposed ? cuda::conv_transpose2d_backward_weight_workspace_bytes(c.tconv())
                                       : cuda::conv2d_backward_weight_workspace_bytes(c.conv());
  const DeviceBuffer d_ws(ws_bytes);

  for (const Backend& b : kBackends) {
    SCOPED_TRACE(std::string(b.name) + " on " + c.name);
    d_y.poison(), d_dx.poison(), d_dw.poison(), d_db.poison();
    if (b.custom && c.transposed) {
      cuda::conv_transpose2d_forward(c.tconv(), b.mode, d_x.f(), d_w.f(), d_bias.f(), d_y.f(), stream);
      cuda::conv_transpose2d_backward_input(c.tconv(), b.mode, d_dy.f(), d_w.f(), d_dx.f(), stream);
      cuda::conv_transpose2d_backward_weight(c.tconv(), b.mode, d_x.f(), d_dy.f(), d_dw.f(), d_ws.raw(), stream);
    } else if (b.custom) {
      cuda::conv2d_forward(c.conv(), b.mode, d_x.f(), d_w.f(), d_bias.f(), d_y.f(), stream);
      cuda::conv2d_backward_input(c.conv(), b.mode, d_dy.f(), d_w.f(), d_dx.f(), stream);
      cuda::conv2d_backward_weight(c.conv(), b.mode, d_x.f(), d_dy.f(), d_dw.f(), d_ws.raw(), stream);
    } else if (c.transposed) {
      cudnn::conv_transpose2d_forward(cudnn_ctx, c.tconv(), b.mode, d_x.f(), d_w.f(), d_bias.f(), d_y.f(), stream);
      cudnn::conv_transpose2d_backward_input(cudnn_ctx, c.tconv(), b.mode, d_dy.f(), d_w.f(), d_dx.f(), stream);
      cudnn::conv_transpose2d_backward_weight(cudnn_ctx, c.tconv(), b.mode, d_x.f(), d_dy.f(), d_dw.f(), stream);
    } else {
      cudnn::conv2d_forward(cudnn_ctx, c.conv(), b.mode, d_x.f(), d_w.f(), d_bias.f(), d_y.f(), stream);
      cudnn::conv2d_backward_input(cudnn_ctx, c.conv(), b.mode, d_dy.f(), d_w.f(), d_dx.f(), stream);
      cudnn::conv2d_backward_weight(cudnn_ctx, c.conv(), b.mode, d_x.f(), d_dy.f(), d_dw.f(), stream);
    }
    if (b.custom)
      cuda::bias2d_backward(c.batch, out_channels, c.out_spatial(), d_dy.f(), d_db.f(), stream);
    else
      cudnn::bias2d_backward(cudnn_ctx, c.batch, out_channels, c.out_spatial(), d_dy.f(), d_db.f(), stream);

    EXPECT_LE(compare(d_y.download(stream), want_y), b.tolerance) << "forward";
    EXPECT_LE(compare(d_dx.download(stream), want_dx), b.tolerance) << "backward_input";
    EXPECT_LE(compare(d_dw.download(stream), want_dw), b.tolerance) << "backward_weight";
    EXPECT_LE(compare(d_db.download(stream), want_db), 1e-5) << "bias backward";  // summed in double
  }
  GANCU_CUDA_CHECK(cudaStreamDestroy(stream));
}

// Split-K sums in a fixed order: two runs of the weight gradient must agree bit for bit.
TEST(ConvDeterminism, WeightGradientIsBitIdentical) {
  GANCU_REQUIRE_GPU();
  const Conv2dParams p{128, 3, 64, 64, 64, 4, 2, 1};  // DCGAN-64 D0: the longest split reduction
  ASSERT_GT(cuda::conv2d_backward_weight_workspace_bytes(p), 0u);
  const DeviceBuffer x(random_vector<float>(p.x_size(), 31)), dy(random_vector<float>(p.y_size(), 32));
  const DeviceBuffer dw(size_t(p.w_size()) * 4), ws(cuda::conv2d_backward_weight_workspace_bytes(p));
  for (MathMode mode : {MathMode::kFp32, MathMode::kTf32}) {
    cuda::conv2d_backward_weight(p, mode, x.f(), dy.f(), dw.f(), ws.raw(), nullptr);
    const auto first = dw.download(nullptr);
    dw.poison();
    cuda::conv2d_backward_weight(p, mode, x.f(), dy.f(), dw.f(), ws.raw(), nullptr);
    EXPECT_EQ(0, std::memcmp(first.data(), dw.download(nullptr).data(), first.size() * sizeof(float)))
        << cuda::to_string(mode);
  }
}

INSTANTIATE_TEST_SUITE_P(Layers, ConvLayer, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<ConvCase>& info) { return info.param.name; });

}  // namespace
}  // namespace gancu
