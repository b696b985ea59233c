// conv2d / conv_transpose2d: custom CUDA kernels (fp32, TF32) and cuDNN baselines (fp32, TF32) against the CPU
// reference, every pass, on every layer shape of DCGAN-32, DCGAN-64 and SRGAN plus odd shapes.
// Tolerances (relative L2): 1e-5 strict fp32, 5e-3 TF32. Outputs are NaN-poisoned before each kernel.
// Shapes whose forward costs more than kFullReferenceFlops are checked on kSamples random output elements of each
// pass, each computed by a direct double loop (the full double reference would take minutes on the CPU).
//
// The ConvIndexMaps suite (test_conv_index_maps.cpp) checks the same passes on the host, without a GPU. The "Small"
// instantiation reaches every kernel variant on tiny shapes: tools/gpu_check.sh runs it under compute-sanitizer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv_transpose2d.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/conv_transpose2d.h"
#include "kernels/cudnn/conv2d.h"
#include "kernels/cudnn/conv_transpose2d.h"
#include "tests/gpu/conv_test_cases.h"
#include "tests/gpu/gpu_test.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using conv_test::ConvCase;
using cuda::MathMode;
using cuda::detail::ConvGeometry;
using testing::random_vector;
using testing::rel_l2_error;

constexpr double kFullReferenceFlops = 2e8;
constexpr int kSamples = 1024;

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
  // Null where a pass needs none (the API allows it), so that case runs too.
  const DeviceBuffer d_ws_y(c.transposed ? cuda::conv_transpose2d_forward_workspace_bytes(c.tconv())
                                         : cuda::conv2d_forward_workspace_bytes(c.conv()));
  const DeviceBuffer d_ws_dx(c.transposed ? cuda::conv_transpose2d_backward_input_workspace_bytes(c.tconv())
                                          : cuda::conv2d_backward_input_workspace_bytes(c.conv()));
  const DeviceBuffer d_ws_dw(c.transposed ? cuda::conv_transpose2d_backward_weight_workspace_bytes(c.tconv())
                                          : cuda::conv2d_backward_weight_workspace_bytes(c.conv()));

  for (const Backend& b : kBackends) {
    SCOPED_TRACE(std::string(b.name) + " on " + c.name);
    // The workspaces too: a split that wrote no partial must not read the previous backend's (finite) sums.
    d_y.poison(), d_dx.poison(), d_dw.poison(), d_db.poison();
    d_ws_y.poison(), d_ws_dx.poison(), d_ws_dw.poison();
    if (b.custom && c.transposed) {
      cuda::conv_transpose2d_forward(c.tconv(), b.mode, d_x.f(), d_w.f(), d_bias.f(), d_y.f(), d_ws_y.raw(), stream);
      cuda::conv_transpose2d_backward_input(c.tconv(), b.mode, d_dy.f(), d_w.f(), d_dx.f(), d_ws_dx.raw(), stream);
      cuda::conv_transpose2d_backward_weight(c.tconv(), b.mode, d_x.f(), d_dy.f(), d_dw.f(), d_ws_dw.raw(), stream);
    } else if (b.custom) {
      cuda::conv2d_forward(c.conv(), b.mode, d_x.f(), d_w.f(), d_bias.f(), d_y.f(), d_ws_y.raw(), stream);
      cuda::conv2d_backward_input(c.conv(), b.mode, d_dy.f(), d_w.f(), d_dx.f(), d_ws_dx.raw(), stream);
      cuda::conv2d_backward_weight(c.conv(), b.mode, d_x.f(), d_dy.f(), d_dw.f(), d_ws_dw.raw(), stream);
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

// Split-K forward and backward_input too: the gather (DCGAN-64 D3, 4×4 output), the dense GEMV of the
// discriminator head and the dense dx of the generator's projection.
TEST(ConvDeterminism, SplitForwardAndInputGradientAreBitIdentical) {
  GANCU_REQUIRE_GPU();
  const Conv2dParams d3{128, 256, 8, 8, 512, 4, 2, 1}, d4{128, 512, 4, 4, 1, 4, 1, 0};
  const ConvTranspose2dParams g0{128, 100, 1, 1, 512, 4, 1, 0, 0};
  struct Run {
    const char* name;
    size_t workspace_bytes;
    int64_t in_size, w_size, out_size;
    std::function<void(MathMode, const float*, const float*, float*, void*)> call;
  };
  const Run runs[] = {
      {"D3 forward", cuda::conv2d_forward_workspace_bytes(d3), d3.x_size(), d3.w_size(), d3.y_size(),
       [&](MathMode m, const float* in, const float* w, float* out, void* ws) {
         cuda::conv2d_forward(d3, m, in, w, nullptr, out, ws, nullptr);
       }},
      {"D3 backward_input", cuda::conv2d_backward_input_workspace_bytes(d3), d3.y_size(), d3.w_size(), d3.x_size(),
       [&](MathMode m, const float* in, const float* w, float* out, void* ws) {
         cuda::conv2d_backward_input(d3, m, in, w, out, ws, nullptr);
       }},
      {"D4 forward", cuda::conv2d_forward_workspace_bytes(d4), d4.x_size(), d4.w_size(), d4.y_size(),
       [&](MathMode m, const float* in, const float* w, float* out, void* ws) {
         cuda::conv2d_forward(d4, m, in, w, nullptr, out, ws, nullptr);
       }},
      {"G0 backward_input", cuda::conv_transpose2d_backward_input_workspace_bytes(g0), g0.y_size(), g0.w_size(),
       g0.x_size(), [&](MathMode m, const float* in, const float* w, float* out, void* ws) {
         cuda::conv_transpose2d_backward_input(g0, m, in, w, out, ws, nullptr);
       }}};
  for (const Run& r : runs) {
    SCOPED_TRACE(r.name);
    ASSERT_GT(r.workspace_bytes, 0u);  // the plan splits these
    const DeviceBuffer in(random_vector<float>(r.in_size, 33)), w(random_vector<float>(r.w_size, 34));
    const DeviceBuffer out(size_t(r.out_size) * 4), ws(r.workspace_bytes);
    for (MathMode mode : {MathMode::kFp32, MathMode::kTf32}) {
      out.poison(), ws.poison();
      r.call(mode, in.f(), w.f(), out.f(), ws.raw());
      const auto first = out.download(nullptr);
      // Two unwritten (NaN-poisoned) outputs would also compare equal: every element must have been written.
      ASSERT_TRUE(std::all_of(first.begin(), first.end(), [](float v) { return std::isfinite(v); }))
          << cuda::to_string(mode);
      out.poison(), ws.poison();
      r.call(mode, in.f(), w.f(), out.f(), ws.raw());
      EXPECT_EQ(0, std::memcmp(first.data(), out.download(nullptr).data(), first.size() * sizeof(float)))
          << cuda::to_string(mode);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Layers, ConvLayer, ::testing::ValuesIn(conv_test::all_cases()),
                         [](const ::testing::TestParamInfo<ConvCase>& info) { return info.param.name; });
// Tiny shapes reaching every kernel variant (ConvIndexMaps.SmallCasesReachEveryVariant): the sanitizer run's set.
INSTANTIATE_TEST_SUITE_P(Small, ConvLayer, ::testing::ValuesIn(conv_test::small_cases()),
                         [](const ::testing::TestParamInfo<ConvCase>& info) { return info.param.name; });

}  // namespace
}  // namespace gancu
