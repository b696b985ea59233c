// Benchmark groups for the memory-bound kernels: fused batch_norm2d (against cuDNN BN followed by a separate
// activation kernel, cuDNN having no fused fp32 NCHW BN+activation), losses, multi-tensor Adam, pixel shuffle and the
// conditional GAN's concat / channel_slice / one_hot (against a plain device-to-device copy moving the same number of
// bytes: the ceiling for a one-pass kernel).
// Bytes are the compulsory DRAM traffic (each tensor read or written once); inputs rotate through enough copies to
// exceed L2, so no timed run is served from a warm cache.
#include <cudnn.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/kernels/bench.h"
#include "kernels/cuda/adam.h"
#include "kernels/cuda/batch_norm2d.h"
#include "kernels/cuda/batch_norm2d_plan.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/activations.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/losses.h"
#include "kernels/cuda/pooling.h"
#include "kernels/cudnn/batch_norm2d.h"

namespace gancu::bench {
namespace {

// A device allocation of `count` floats, filled with N(0, 1) (Philox) so no kernel sees denormals or NaNs.
class DeviceFloats {
 public:
  DeviceFloats(int64_t count, cudaStream_t stream, uint64_t seed = 1) {
    GANCU_CUDA_CHECK(cudaMalloc(&ptr_, size_t(std::max<int64_t>(count, 1)) * sizeof(float)));
    cuda::fill_normal(count, 0.0f, 1.0f, seed, 0, ptr_, stream);
  }
  ~DeviceFloats() { cudaFree(ptr_); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
  float* get() const { return ptr_; }
  float* set(int rotation, int64_t set_size) const { return ptr_ + int64_t(rotation) * set_size; }

 private:
  float* ptr_ = nullptr;
};

// Time of a device-to-device copy moving `bytes` in total (half read, half written), rotating like the kernels do.
double copy_baseline_ms(Context& ctx, double bytes) {
  const int64_t floats = std::max<int64_t>(int64_t(bytes / 2 / sizeof(float)), 1);
  const int sets = rotation_sets(size_t(floats) * 2 * sizeof(float));
  DeviceFloats src(floats * sets, ctx.stream), dst(floats * sets, ctx.stream);
  return time_median_ms(ctx, [&](int r) {
    const int k = r % sets;
    GANCU_CUDA_CHECK(cudaMemcpyAsync(dst.set(k, floats), src.set(k, floats), size_t(floats) * sizeof(float),
                                     cudaMemcpyDeviceToDevice, ctx.stream));
  });
}

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

struct BnCase {
  const char* shape;
  int batch, channels, spatial;
  cuda::Activation act;
};

// Every batch norm of DCGAN-64 at batch 128: the generator's BN+ReLU and the discriminator's BN+LeakyReLU (its first
// conv has no BN); then SRGAN's at batch 16 (models/srgan.h): SRResNet's BN+PReLU pairs, all in the residual blocks at
// the 24x24 LR size (the trunk's other batch norms feed an add and stay unfused), and the discriminator's
// BN+LeakyReLU on 96x96 crops.
const BnCase kBnCases[] = {
    {"dcgan64.G 128x512x4x4", 128, 512, 16, cuda::Activation::kRelu},
    {"dcgan64.G 128x256x8x8", 128, 256, 64, cuda::Activation::kRelu},
    {"dcgan64.G 128x128x16x16", 128, 128, 256, cuda::Activation::kRelu},
    {"dcgan64.G 128x64x32x32", 128, 64, 1024, cuda::Activation::kRelu},
    {"dcgan64.D 128x128x16x16", 128, 128, 256, cuda::Activation::kLeakyRelu},
    {"dcgan64.D 128x256x8x8", 128, 256, 64, cuda::Activation::kLeakyRelu},
    {"dcgan64.D 128x512x4x4", 128, 512, 16, cuda::Activation::kLeakyRelu},
    {"srgan.G 16x64x24x24", 16, 64, 576, cuda::Activation::kPrelu},
    {"srgan.D 16x64x48x48", 16, 64, 2304, cuda::Activation::kLeakyRelu},
    {"srgan.D 16x128x48x48", 16, 128, 2304, cuda::Activation::kLeakyRelu},
    {"srgan.D 16x128x24x24", 16, 128, 576, cuda::Activation::kLeakyRelu},
    {"srgan.D 16x256x24x24", 16, 256, 576, cuda::Activation::kLeakyRelu},
    {"srgan.D 16x256x12x12", 16, 256, 144, cuda::Activation::kLeakyRelu},
    {"srgan.D 16x512x12x12", 16, 512, 144, cuda::Activation::kLeakyRelu},
    {"srgan.D 16x512x6x6", 16, 512, 36, cuda::Activation::kLeakyRelu},
};

const char* suffix(cuda::Activation act) {
  switch (act) {
    case cuda::Activation::kNone: return "";
    case cuda::Activation::kRelu: return "+relu";
    case cuda::Activation::kLeakyRelu: return "+leaky_relu";
    case cuda::Activation::kPrelu: return "+prelu";
  }
  return "";
}

// One line per shape besides the table rows: the split plan (one block per channel before the split) and each pass's
// compulsory bytes and fraction of the copy bandwidth measured in this run. Split channels read x (and dy) twice, the
// second time mostly from L2 when the tensor fits in it; the rates count compulsory bytes only.
void print_bn_plan(const BnCase& c, const BatchNorm2dParams& p, const Row& forward, const Row& backward,
                   double copy_gbps) {
  const cuda::detail::BnSplitPlan plan = cuda::detail::plan_batch_norm2d(p);
  auto percent = [&](const Row& row) {
    return copy_gbps > 0 && row.custom_ms > 0 ? 100.0 * row.bytes / (row.custom_ms * 1e6) / copy_gbps : 0.0;
  };
  std::printf("batch_norm2d %-26s %4d channels x %2d splits = %5lld blocks (was %d); forward %.1f MB %.4f ms "
              "%.1f%% of copy; backward %.1f MB %.4f ms %.1f%% of copy\n",
              c.shape, plan.channels, plan.splits, static_cast<long long>(plan.blocks()), plan.channels,
              forward.bytes / 1e6, forward.custom_ms, percent(forward), backward.bytes / 1e6, backward.custom_ms,
              percent(backward));
}

GANCU_BENCH("batch_norm2d") {
  CudnnHandle handle;
  for (const BnCase& c : kBnCases) {
    BatchNorm2dParams p;
    p.batch = c.batch;
    p.channels = c.channels;
    p.spatial = c.spatial;
    const int64_t n = p.size();
    const int sets = rotation_sets(size_t(n) * 2 * sizeof(float));
    cudaStream_t s = ctx.stream;
    DeviceFloats x(n * sets, s, 1), y(n * sets, s, 2), dy(n * sets, s, 3), dx(n * sets, s, 4), g(n * sets, s, 5);
    DeviceFloats gamma(c.channels, s, 5), beta(c.channels, s, 6), slope(c.channels, s, 7), running_mean(c.channels, s, 8),
        running_var(c.channels, s, 9), save_mean(c.channels, s), save_invstd(c.channels, s), dgamma(c.channels, s),
        dbeta(c.channels, s), dslope(c.channels, s);
    cuda::fill_uniform(c.channels, 0.5f, 1.5f, 10, 0, running_var.get(), s);  // a variance must be positive
    cuda::BnActivation act;
    act.kind = c.act;
    act.prelu_slope = slope.get();
    const cudnn::BatchNorm2d cudnn_bn(p);
    // One workspace for both passes, sized by the plan (0 bytes when every channel fits one block).
    const size_t workspace_bytes = std::max(cuda::batch_norm2d_forward_train_workspace_bytes(p),
                                            cuda::batch_norm2d_backward_workspace_bytes(p));
    DeviceFloats workspace(int64_t(workspace_bytes / sizeof(float)), s);

    // The baseline's separate activation pass, forward and backward (the unfused cost).
    auto activation_forward = [&](float* data) {
      if (c.act == cuda::Activation::kRelu) cuda::relu_forward(n, data, data, s);
      else if (c.act == cuda::Activation::kLeakyRelu) cuda::leaky_relu_forward(n, act.leaky_slope, data, data, s);
      else if (c.act == cuda::Activation::kPrelu) cuda::prelu_forward(p.batch, p.channels, p.spatial, data, slope.get(), data, s);
    };
    auto activation_backward = [&](const float* z, const float* grad_in, float* grad_out) {
      if (c.act == cuda::Activation::kRelu) cuda::relu_backward(n, z, grad_in, grad_out, s);
      else if (c.act == cuda::Activation::kLeakyRelu) cuda::leaky_relu_backward(n, act.leaky_slope, z, grad_in, grad_out, s);
      else if (c.act == cuda::Activation::kPrelu)
        cuda::prelu_backward(p.batch, p.channels, p.spatial, z, slope.get(), grad_in, grad_out, dslope.get(), s);
    };

    Row forward{std::string("batch_norm2d_forward_train") + suffix(c.act), c.shape, "-"};
    forward.bytes = 2.0 * double(n) * sizeof(float);
    forward.custom_ms = time_median_ms(ctx, [&](int r) {
      const int k = r % sets;
      cuda::batch_norm2d_forward_train(p, act, x.set(k, n), gamma.get(), beta.get(), running_mean.get(),
                                       running_var.get(), y.set(k, n), save_mean.get(), save_invstd.get(),
                                       workspace.get(), s);
    });
    forward.baseline_ms = time_median_ms(ctx, [&](int r) {
      const int k = r % sets;
      cudnn_bn.forward_train(handle.get(), x.set(k, n), gamma.get(), beta.get(), running_mean.get(), running_var.get(),
                             y.set(k, n), save_mean.get(), save_invstd.get(), s);
      activation_forward(y.set(k, n));
    });
    ctx.rows.push_back(forward);

    // The backward needs valid saved statistics: leave the last forward's in place.
    Row backward{std::string("batch_norm2d_backward") + suffix(c.act), c.shape, "-"};
    backward.bytes = 3.0 * double(n) * sizeof(float);  // read dy and x, write dx
    backward.custom_ms = time_median_ms(ctx, [&](int r) {
      const int k = r % sets;
      cuda::batch_norm2d_backward(p, act, dy.set(k, n), x.set(k, n), gamma.get(), beta.get(), save_mean.get(),
                                  save_invstd.get(), dx.set(k, n), dgamma.get(), dbeta.get(), dslope.get(),
                                  workspace.get(), s);
    });
    // Baseline: activation backward on the stored pre-activation (y stands in for it), then cuDNN BN backward.
    backward.baseline_ms = time_median_ms(ctx, [&](int r) {
      const int k = r % sets;
      activation_backward(y.set(k, n), dy.set(k, n), g.set(k, n));
      cudnn_bn.backward(handle.get(), g.set(k, n), x.set(k, n), gamma.get(), save_mean.get(), save_invstd.get(),
                        dx.set(k, n), dgamma.get(), dbeta.get(), s);
    });
    ctx.rows.push_back(backward);
    print_bn_plan(c, p, forward, backward, ctx.ceilings.copy_gbps);
  }
}

GANCU_BENCH("losses") {
  struct LossCase {
    const char* op;
    const char* shape;
    int64_t n;
  };
  const LossCase cases[] = {{"bce_with_logits", "dcgan64.D logits 128", 128},
                            {"bce_with_logits", "patch logits 16x1x30x30", 16 * 30 * 30},
                            {"mse", "srgan HR 16x3x96x96", int64_t(16) * 3 * 96 * 96},
                            {"l1", "srgan HR 16x3x96x96", int64_t(16) * 3 * 96 * 96}};
  for (const LossCase& c : cases) {
    const int64_t n = c.n;
    const int sets = rotation_sets(size_t(n) * 3 * sizeof(float));
    DeviceFloats x(n * sets, ctx.stream, 1), target(n * sets, ctx.stream, 2), dx(n * sets, ctx.stream), loss(1, ctx.stream);
    void* workspace = nullptr;
    GANCU_CUDA_CHECK(cudaMalloc(&workspace, cuda::loss_workspace_bytes(n)));
    Row row{c.op, c.shape, "-"};
    row.bytes = 3.0 * double(n) * sizeof(float);  // read x and target, write dx
    const std::string op = c.op;
    try {
      row.custom_ms = time_median_ms(ctx, [&](int r) {
        const int k = r % sets;
        if (op == "bce_with_logits")
          cuda::bce_with_logits(n, x.set(k, n), target.set(k, n), 1.0f, dx.set(k, n), loss.get(), workspace, ctx.stream);
        else if (op == "mse")
          cuda::mse(n, x.set(k, n), target.set(k, n), 1.0f, dx.set(k, n), loss.get(), workspace, ctx.stream);
        else
          cuda::l1(n, x.set(k, n), target.set(k, n), 1.0f, dx.set(k, n), loss.get(), workspace, ctx.stream);
      });
      row.baseline_ms = copy_baseline_ms(ctx, row.bytes);
    } catch (...) {
      cudaFree(workspace);
      throw;
    }
    cudaFree(workspace);
    ctx.rows.push_back(row);
  }
}

// DCGAN-64 (nz = 100, ngf = ndf = 64): every parameter tensor of G and D, stepped by one multi-tensor launch each.
GANCU_BENCH("adam") {
  const std::vector<int64_t> generator = {100 * 512 * 16, 512, 512, 512 * 256 * 16, 256, 256, 256 * 128 * 16,
                                          128, 128, 128 * 64 * 16, 64, 64, 64 * 3 * 16};
  const std::vector<int64_t> discriminator = {3 * 64 * 16, 64 * 128 * 16, 128, 128, 128 * 256 * 16, 256, 256,
                                              256 * 512 * 16, 512, 512, 512 * 1 * 16};
  std::vector<int64_t> sizes = generator;
  sizes.insert(sizes.end(), discriminator.begin(), discriminator.end());
  int64_t total = 0;
  for (int64_t size : sizes) total += size;
  // param, grad, m, v of every tensor in one arena each (the state alone is far larger than L2: no rotation needed).
  DeviceFloats param(total, ctx.stream, 1), grad(total, ctx.stream, 2), m(total, ctx.stream, 3), v(total, ctx.stream, 4);
  cuda::fill_uniform(total, 0.0f, 1e-4f, 5, 0, v.get(), ctx.stream);  // a second moment is non-negative
  std::vector<cuda::AdamTensor> list;
  int64_t offset = 0;
  for (int64_t size : sizes) {
    list.push_back({param.get() + offset, grad.get() + offset, m.get() + offset, v.get() + offset, size});
    offset += size;
  }
  int64_t* step = nullptr;
  GANCU_CUDA_CHECK(cudaMalloc(&step, sizeof(int64_t)));
  GANCU_CUDA_CHECK(cudaMemsetAsync(step, 0, sizeof(int64_t), ctx.stream));
  Row row{"adam_step", "dcgan64 G+D " + std::to_string(total) + " params, " + std::to_string(sizes.size()) + " tensors",
          "-"};
  row.bytes = 7.0 * double(total) * sizeof(float);  // read param, grad, m, v; write param, m, v
  const AdamParams p;
  try {
    row.custom_ms = time_median_ms(ctx, [&](int) { cuda::adam_step(p, list.data(), int(list.size()), step, ctx.stream); });
    row.baseline_ms = copy_baseline_ms(ctx, row.bytes);
  } catch (...) {
    cudaFree(step);
    throw;
  }
  cudaFree(step);
  ctx.rows.push_back(row);
}

// SRGAN upsampling: conv to 256 channels, then pixel_shuffle(2) to 64 channels at twice the resolution.
GANCU_BENCH("pixel_shuffle") {
  struct ShuffleCase {
    const char* shape;
    int batch, channels, h, w, r;
  };
  const ShuffleCase cases[] = {{"srgan 16x256x24x24->16x64x48x48", 16, 64, 24, 24, 2},
                               {"srgan 16x256x48x48->16x64x96x96", 16, 64, 48, 48, 2}};
  for (const ShuffleCase& c : cases) {
    const int64_t n = int64_t(c.batch) * c.channels * c.h * c.w * c.r * c.r;
    const int sets = rotation_sets(size_t(n) * 2 * sizeof(float));
    DeviceFloats in(n * sets, ctx.stream, 1), out(n * sets, ctx.stream, 2);
    const double bytes = 2.0 * double(n) * sizeof(float);
    const double copy_ms = copy_baseline_ms(ctx, bytes);
    Row forward{"pixel_shuffle_forward", c.shape, "-"};
    forward.bytes = bytes;
    forward.custom_ms = time_median_ms(ctx, [&](int r) {
      const int k = r % sets;
      cuda::pixel_shuffle_forward(c.batch, c.channels, c.h, c.w, c.r, in.set(k, n), out.set(k, n), ctx.stream);
    });
    forward.baseline_ms = copy_ms;
    ctx.rows.push_back(forward);
    Row backward{"pixel_shuffle_backward", c.shape, "-"};
    backward.bytes = bytes;
    backward.custom_ms = time_median_ms(ctx, [&](int r) {
      const int k = r % sets;
      cuda::pixel_shuffle_backward(c.batch, c.channels, c.h, c.w, c.r, in.set(k, n), out.set(k, n), ctx.stream);
    });
    backward.baseline_ms = copy_ms;
    ctx.rows.push_back(backward);
  }
}

// VGG19's 2×2/2 max pools on SRGAN's 96×96 crops (batch 16), forward and backward, against a device-to-device copy
// of the same bytes. Compulsory traffic: forward reads x and writes y (1.25·|x|); backward reads x and dy and writes
// dx (2.25·|x|): the argmax is recomputed from x, so x is read again rather than a stored index tensor.
GANCU_BENCH("max_pool2d") {
  struct PoolCase {
    const char* shape;
    int batch, channels, h, w;
  };
  const PoolCase cases[] = {{"vgg19 pool1 16x64x96x96", 16, 64, 96, 96},
                            {"vgg19 pool2 16x128x48x48", 16, 128, 48, 48},
                            {"vgg19 pool4 16x512x12x12", 16, 512, 12, 12}};
  for (const PoolCase& c : cases) {
    MaxPool2dParams p;
    p.batch = c.batch;
    p.channels = c.channels;
    p.in_h = c.h;
    p.in_w = c.w;
    p.kernel = p.stride = 2;
    const int64_t nx = p.x_size(), ny = p.y_size();
    const int sets = rotation_sets(size_t(2 * nx + ny) * sizeof(float));
    DeviceFloats x(nx * sets, ctx.stream, 1), y(ny * sets, ctx.stream, 2), dx(nx * sets, ctx.stream, 3);
    Row forward{"max_pool2d_forward", c.shape, "-"};
    forward.bytes = double(nx + ny) * sizeof(float);
    forward.custom_ms = time_median_ms(ctx, [&](int r) {
      const int k = r % sets;
      cuda::max_pool2d_forward(p, x.set(k, nx), y.set(k, ny), ctx.stream);
    });
    forward.baseline_ms = copy_baseline_ms(ctx, forward.bytes);
    ctx.rows.push_back(forward);
    Row backward{"max_pool2d_backward", c.shape, "-"};
    backward.bytes = double(2 * nx + ny) * sizeof(float);
    backward.custom_ms = time_median_ms(ctx, [&](int r) {
      const int k = r % sets;
      cuda::max_pool2d_backward(p, x.set(k, nx), y.set(k, ny), dx.set(k, nx), ctx.stream);
    });
    backward.baseline_ms = copy_baseline_ms(ctx, backward.bytes);
    ctx.rows.push_back(backward);
  }
}

// The conditional GAN's joins: label maps onto D's input images and one-hot vectors onto z (concat), the gradient of
// the image part (channel_slice), and the label maps themselves (one_hot), each against a device-to-device copy of
// the same bytes (the ceiling for a one-pass kernel).
GANCU_BENCH("channel_ops") {
  struct JoinCase {
    const char* shape;
    int batch, channels, classes, inner;  // [batch, channels + classes, inner] from [batch, channels, inner] and maps
  };
  const JoinCase cases[] = {{"cgan32 D input 64x(1+10)x32x32", 64, 1, 10, 32 * 32},
                            {"cgan64 D input 128x(3+10)x64x64", 128, 3, 10, 64 * 64},
                            {"cgan G input 128x(100+10)x1x1", 128, 100, 10, 1}};
  for (const JoinCase& c : cases) {
    const int64_t x_n = int64_t(c.batch) * c.channels * c.inner, maps_n = int64_t(c.batch) * c.classes * c.inner;
    const int64_t y_n = x_n + maps_n;
    const int sets = rotation_sets(size_t(2 * y_n) * sizeof(float));
    DeviceFloats x(x_n * sets, ctx.stream, 1), maps(maps_n * sets, ctx.stream, 2), y(y_n * sets, ctx.stream, 3),
        labels(int64_t(c.batch) * sets, ctx.stream);
    GANCU_CUDA_CHECK(cudaMemsetAsync(labels.get(), 0, size_t(c.batch) * sets * sizeof(float), ctx.stream));  // class 0
    const int channels[] = {c.channels, c.classes};

    Row concat{"concat_channels", c.shape, "-"};
    concat.bytes = 2.0 * double(y_n) * sizeof(float);  // read both inputs, write y
    concat.custom_ms = time_median_ms(ctx, [&](int r) {
      const int k = r % sets;
      const float* xs[] = {x.set(k, x_n), maps.set(k, maps_n)};
      cuda::concat_channels(c.batch, c.inner, 2, xs, channels, y.set(k, y_n), ctx.stream);
    });
    concat.baseline_ms = copy_baseline_ms(ctx, concat.bytes);
    ctx.rows.push_back(concat);

    Row slice{"channel_slice", c.shape, "-"};
    slice.bytes = 2.0 * double(x_n) * sizeof(float);  // read the image part of dy, write dx
    slice.custom_ms = time_median_ms(ctx, [&](int r) {
      const int k = r % sets;
      cuda::channel_slice(c.batch, c.channels + c.classes, 0, c.channels, c.inner, y.set(k, y_n), x.set(k, x_n),
                          ctx.stream);
    });
    slice.baseline_ms = copy_baseline_ms(ctx, slice.bytes);
    ctx.rows.push_back(slice);

    Row one_hot{"one_hot", c.shape, "-"};
    one_hot.bytes = double(maps_n + c.batch) * sizeof(float);  // read the labels, write the maps
    one_hot.custom_ms = time_median_ms(ctx, [&](int r) {
      const int k = r % sets;
      cuda::one_hot(c.batch, c.classes, c.inner, labels.set(k, c.batch), maps.set(k, maps_n), ctx.stream);
    });
    one_hot.baseline_ms = copy_baseline_ms(ctx, one_hot.bytes);
    ctx.rows.push_back(one_hot);
  }
}

}  // namespace
}  // namespace gancu::bench
