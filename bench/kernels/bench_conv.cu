// Conv benchmarks: every conv / transposed-conv layer of DCGAN-32, DCGAN-64 and SRGAN, each pass (forward,
// backward_input, backward_weight; bias gradient once per layer), custom kernels against cuDNN, fp32 and TF32.
// Inputs rotate over rotation_sets() copies so no timed call runs from a warm L2. cuDNN plans each shape (a
// synchronising cudnnFind) in an untimed call before its timing starts. The custom passes get their split-K
// workspace: the DCGAN-64 rows time the dense GEMMs of G.0 and D.4, the split-K gathers of the 4×4 layers (G.1
// backward_input, D.3 forward) and the 256-way split weight gradients of G.4 and D.0.
#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/kernels/bench.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/conv_transpose2d.h"
#include "kernels/cudnn/conv2d.h"
#include "kernels/cudnn/conv_transpose2d.h"

namespace gancu::bench {
namespace {

using cuda::MathMode;

struct Layer {
  const char* name;
  bool transposed;
  int batch, in_channels, size, out_channels, kernel, stride, pad;

  Conv2dParams conv() const { return {batch, in_channels, size, size, out_channels, kernel, stride, pad}; }
  ConvTranspose2dParams tconv() const { return {batch, in_channels, size, size, out_channels, kernel, stride, pad, 0}; }
  int out_size() const { return transposed ? tconv().out_h() : conv().out_h(); }
  int64_t x_size() const { return transposed ? tconv().x_size() : conv().x_size(); }
  int64_t w_size() const { return transposed ? tconv().w_size() : conv().w_size(); }
  int64_t y_size() const { return transposed ? tconv().y_size() : conv().y_size(); }
  double flops() const { return transposed ? tconv().flops() : conv().flops(); }
  std::string shape() const {
    return std::string(name) + " " + std::to_string(batch) + "x" + std::to_string(in_channels) + "x" +
           std::to_string(size) + "x" + std::to_string(size) + "->" + std::to_string(out_channels) + "x" +
           std::to_string(out_size()) + "x" + std::to_string(out_size()) + " k" + std::to_string(kernel) + "s" +
           std::to_string(stride) + "p" + std::to_string(pad);
  }
};

class DeviceFloats {
 public:
  explicit DeviceFloats(const std::vector<float>& host) : count_(host.size()) {
    GANCU_CUDA_CHECK(cudaMalloc(&ptr_, bytes()));
    GANCU_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), bytes(), cudaMemcpyHostToDevice));
  }
  explicit DeviceFloats(size_t count) : DeviceFloats(std::vector<float>(count, 0.0f)) {}
  ~DeviceFloats() { cudaFree(ptr_); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
  float* get() const { return ptr_; }
  size_t bytes() const { return std::max<size_t>(count_, 1) * sizeof(float); }

 private:
  float* ptr_ = nullptr;
  size_t count_ = 0;
};

std::vector<float> normal_values(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = normal(rng);
  return v;
}

// One rotation set: the inputs and outputs of every pass of the layer.
struct TensorSet {
  DeviceFloats x, w, bias, dy, y, dx, dw, dbias;
  TensorSet(const Layer& l, const std::vector<float>& x_host, const std::vector<float>& w_host,
            const std::vector<float>& bias_host, const std::vector<float>& dy_host)
      : x(x_host), w(w_host), bias(bias_host), dy(dy_host), y(size_t(l.y_size())), dx(size_t(l.x_size())),
        dw(size_t(l.w_size())), dbias(size_t(l.out_channels)) {}
};

enum class Pass { kForward, kBackwardInput, kBackwardWeight };

void bench_layer(Context& ctx, const Layer& l) {
  const cudaStream_t stream = ctx.stream;
  const size_t set_bytes = sizeof(float) * size_t(2 * l.x_size() + l.w_size() * 2 + l.y_size() * 2 + 2 * l.out_channels);
  const int sets = rotation_sets(set_bytes);
  const auto x_host = normal_values(l.x_size(), 1), w_host = normal_values(l.w_size(), 2);
  const auto bias_host = normal_values(l.out_channels, 3), dy_host = normal_values(l.y_size(), 4);
  std::vector<std::unique_ptr<TensorSet>> tensors;
  for (int s = 0; s < sets; ++s) tensors.push_back(std::make_unique<TensorSet>(l, x_host, w_host, bias_host, dy_host));
  // One workspace for the three custom passes (split-K partials), which run one at a time on the stream.
  const size_t ws_bytes =
      l.transposed ? std::max({cuda::conv_transpose2d_forward_workspace_bytes(l.tconv()),
                               cuda::conv_transpose2d_backward_input_workspace_bytes(l.tconv()),
                               cuda::conv_transpose2d_backward_weight_workspace_bytes(l.tconv())})
                   : std::max({cuda::conv2d_forward_workspace_bytes(l.conv()),
                               cuda::conv2d_backward_input_workspace_bytes(l.conv()),
                               cuda::conv2d_backward_weight_workspace_bytes(l.conv())});
  DeviceFloats workspace((ws_bytes + sizeof(float) - 1) / sizeof(float));
  cudnn::Context dnn;
  const std::string prefix = l.transposed ? "conv_transpose2d_" : "conv2d_";
  const int spatial = l.out_size() * l.out_size();

  auto run = [&](bool custom, Pass pass, MathMode mode, int rotation) {
    const TensorSet& t = *tensors[size_t(rotation % sets)];
    if (l.transposed) {
      const ConvTranspose2dParams p = l.tconv();
      switch (pass) {
        case Pass::kForward:
          if (custom)
            cuda::conv_transpose2d_forward(p, mode, t.x.get(), t.w.get(), t.bias.get(), t.y.get(), workspace.get(), stream);
          else cudnn::conv_transpose2d_forward(dnn, p, mode, t.x.get(), t.w.get(), t.bias.get(), t.y.get(), stream);
          break;
        case Pass::kBackwardInput:
          if (custom)
            cuda::conv_transpose2d_backward_input(p, mode, t.dy.get(), t.w.get(), t.dx.get(), workspace.get(), stream);
          else cudnn::conv_transpose2d_backward_input(dnn, p, mode, t.dy.get(), t.w.get(), t.dx.get(), stream);
          break;
        case Pass::kBackwardWeight:
          if (custom)
            cuda::conv_transpose2d_backward_weight(p, mode, t.x.get(), t.dy.get(), t.dw.get(), workspace.get(), stream);
          else cudnn::conv_transpose2d_backward_weight(dnn, p, mode, t.x.get(), t.dy.get(), t.dw.get(), stream);
          break;
      }
    } else {
      const Conv2dParams p = l.conv();
      switch (pass) {
        case Pass::kForward:
          if (custom) cuda::conv2d_forward(p, mode, t.x.get(), t.w.get(), t.bias.get(), t.y.get(), workspace.get(), stream);
          else cudnn::conv2d_forward(dnn, p, mode, t.x.get(), t.w.get(), t.bias.get(), t.y.get(), stream);
          break;
        case Pass::kBackwardInput:
          if (custom) cuda::conv2d_backward_input(p, mode, t.dy.get(), t.w.get(), t.dx.get(), workspace.get(), stream);
          else cudnn::conv2d_backward_input(dnn, p, mode, t.dy.get(), t.w.get(), t.dx.get(), stream);
          break;
        case Pass::kBackwardWeight:
          if (custom) cuda::conv2d_backward_weight(p, mode, t.x.get(), t.dy.get(), t.dw.get(), workspace.get(), stream);
          else cudnn::conv2d_backward_weight(dnn, p, mode, t.x.get(), t.dy.get(), t.dw.get(), stream);
          break;
      }
    }
  };

  const double x_bytes = 4.0 * double(l.x_size()), w_bytes = 4.0 * double(l.w_size()), y_bytes = 4.0 * double(l.y_size());
  const struct {
    Pass pass;
    const char* name;
    double bytes;
  } passes[] = {{Pass::kForward, "forward", x_bytes + w_bytes + y_bytes},
                {Pass::kBackwardInput, "backward_input", y_bytes + w_bytes + x_bytes},
                {Pass::kBackwardWeight, "backward_weight", x_bytes + y_bytes + w_bytes}};
  for (MathMode mode : {MathMode::kFp32, MathMode::kTf32})
    for (const auto& pass : passes) {
      run(false, pass.pass, mode, 0);  // plans the cuDNN shape (synchronising) outside the timed runs
      GANCU_CUDA_CHECK(cudaStreamSynchronize(stream));
      Row row;
      row.op = prefix + pass.name;
      row.shape = l.shape();
      row.mode = cuda::to_string(mode);
      row.custom_ms = time_median_ms(ctx, [&](int r) { run(true, pass.pass, mode, r); });
      row.baseline_ms = time_median_ms(ctx, [&](int r) { run(false, pass.pass, mode, r); });
      row.flops = l.flops();
      row.bytes = pass.bytes;
      ctx.rows.push_back(row);
    }

  Row bias_row;
  bias_row.op = "bias2d_backward";
  bias_row.shape = l.shape();
  bias_row.mode = "-";
  bias_row.custom_ms = time_median_ms(ctx, [&](int r) {
    const TensorSet& t = *tensors[size_t(r % sets)];
    cuda::bias2d_backward(l.batch, l.out_channels, spatial, t.dy.get(), t.dbias.get(), stream);
  });
  bias_row.baseline_ms = time_median_ms(ctx, [&](int r) {
    const TensorSet& t = *tensors[size_t(r % sets)];
    cudnn::bias2d_backward(dnn, l.batch, l.out_channels, spatial, t.dy.get(), t.dbias.get(), stream);
  });
  bias_row.bytes = y_bytes + 4.0 * l.out_channels;
  ctx.rows.push_back(bias_row);
  GANCU_CUDA_CHECK(cudaStreamSynchronize(stream));  // before the sets are freed
}

// DCGAN (Radford et al.): nz = 100, ngf = ndf = 64, k4 s2 p1 between the 4×4 projection and the image.
constexpr Layer kDcgan32[] = {
    {"dcgan32.G.0", true, 64, 100, 1, 256, 4, 1, 0}, {"dcgan32.G.1", true, 64, 256, 4, 128, 4, 2, 1},
    {"dcgan32.G.2", true, 64, 128, 8, 64, 4, 2, 1},  {"dcgan32.G.3", true, 64, 64, 16, 3, 4, 2, 1},
    {"dcgan32.D.0", false, 64, 3, 32, 64, 4, 2, 1},  {"dcgan32.D.1", false, 64, 64, 16, 128, 4, 2, 1},
    {"dcgan32.D.2", false, 64, 128, 8, 256, 4, 2, 1}, {"dcgan32.D.3", false, 64, 256, 4, 1, 4, 1, 0}};
constexpr Layer kDcgan64[] = {
    {"dcgan64.G.0", true, 128, 100, 1, 512, 4, 1, 0},  {"dcgan64.G.1", true, 128, 512, 4, 256, 4, 2, 1},
    {"dcgan64.G.2", true, 128, 256, 8, 128, 4, 2, 1},  {"dcgan64.G.3", true, 128, 128, 16, 64, 4, 2, 1},
    {"dcgan64.G.4", true, 128, 64, 32, 3, 4, 2, 1},    {"dcgan64.D.0", false, 128, 3, 64, 64, 4, 2, 1},
    {"dcgan64.D.1", false, 128, 64, 32, 128, 4, 2, 1}, {"dcgan64.D.2", false, 128, 128, 16, 256, 4, 2, 1},
    {"dcgan64.D.3", false, 128, 256, 8, 512, 4, 2, 1}, {"dcgan64.D.4", false, 128, 512, 4, 1, 4, 1, 0}};
// SRGAN 4× (24 → 96), batch 16: generator head/residual/upsampling/tail convs and the discriminator's eight convs.
constexpr Layer kSrgan[] = {
    {"srgan.G.head", false, 16, 3, 24, 64, 9, 1, 4},   {"srgan.G.res", false, 16, 64, 24, 64, 3, 1, 1},
    {"srgan.G.up24", false, 16, 64, 24, 256, 3, 1, 1}, {"srgan.G.up48", false, 16, 64, 48, 256, 3, 1, 1},
    {"srgan.G.tail", false, 16, 64, 96, 3, 9, 1, 4},   {"srgan.D.0", false, 16, 3, 96, 64, 3, 1, 1},
    {"srgan.D.1", false, 16, 64, 96, 64, 3, 2, 1},     {"srgan.D.2", false, 16, 64, 48, 128, 3, 1, 1},
    {"srgan.D.3", false, 16, 128, 48, 128, 3, 2, 1},   {"srgan.D.4", false, 16, 128, 24, 256, 3, 1, 1},
    {"srgan.D.5", false, 16, 256, 24, 256, 3, 2, 1},   {"srgan.D.6", false, 16, 256, 12, 512, 3, 1, 1},
    {"srgan.D.7", false, 16, 512, 12, 512, 3, 2, 1}};

}  // namespace

GANCU_BENCH("conv.dcgan32") {
  for (const Layer& l : kDcgan32) bench_layer(ctx, l);
}
GANCU_BENCH("conv.dcgan64") {
  for (const Layer& l : kDcgan64) bench_layer(ctx, l);
}
GANCU_BENCH("conv.srgan") {
  for (const Layer& l : kSrgan) bench_layer(ctx, l);
}

}  // namespace gancu::bench
