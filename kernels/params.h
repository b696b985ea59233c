// Shape and attribute records shared by every backend's kernels (cpu reference, cpu BLAS, custom CUDA, cuDNN).
// Kernels are plain functions on raw pointers plus one of these records; they know nothing of graphs.
// Layout everywhere at this boundary: contiguous NCHW, PyTorch weight layouts.
#pragma once
#include <cstdint>

namespace gancu {

// conv2d: x [batch, in_channels, in_h, in_w], weight [out_channels, in_channels, kernel, kernel] (PyTorch Conv2d),
// bias [out_channels] or null, y [batch, out_channels, out_h, out_w]. Square kernel, stride and padding.
struct Conv2dParams {
  int batch = 1, in_channels = 1, in_h = 1, in_w = 1;
  int out_channels = 1, kernel = 1, stride = 1, pad = 0;
  int out_h() const { return (in_h + 2 * pad - kernel) / stride + 1; }
  int out_w() const { return (in_w + 2 * pad - kernel) / stride + 1; }
  int64_t x_size() const { return int64_t(batch) * in_channels * in_h * in_w; }
  int64_t w_size() const { return int64_t(out_channels) * in_channels * kernel * kernel; }
  int64_t y_size() const { return int64_t(batch) * out_channels * out_h() * out_w(); }
  double flops() const { return 2.0 * y_size() * in_channels * kernel * kernel; }  // forward multiply-adds × 2
};

// conv_transpose2d: x [batch, in_channels, in_h, in_w], weight [in_channels, out_channels, kernel, kernel]
// (PyTorch ConvTranspose2d), bias [out_channels] or null, y [batch, out_channels, out_h, out_w] with
// out = (in - 1)·stride − 2·pad + kernel + output_pad. It is the adjoint (gradient w.r.t. input) of a conv2d with the
// same weight tensor read as [out_channels_of_conv = in_channels, in_channels_of_conv = out_channels, k, k].
struct ConvTranspose2dParams {
  int batch = 1, in_channels = 1, in_h = 1, in_w = 1;
  int out_channels = 1, kernel = 1, stride = 1, pad = 0, output_pad = 0;
  int out_h() const { return (in_h - 1) * stride - 2 * pad + kernel + output_pad; }
  int out_w() const { return (in_w - 1) * stride - 2 * pad + kernel + output_pad; }
  int64_t x_size() const { return int64_t(batch) * in_channels * in_h * in_w; }
  int64_t w_size() const { return int64_t(in_channels) * out_channels * kernel * kernel; }
  int64_t y_size() const { return int64_t(batch) * out_channels * out_h() * out_w(); }
  double flops() const { return 2.0 * x_size() * out_channels * kernel * kernel; }
};

// batch_norm2d over x [batch, channels, spatial] (spatial = H·W). Training normalises with the batch's biased
// variance and updates running_var with the unbiased one (PyTorch).
struct BatchNorm2dParams {
  int batch = 1, channels = 1, spatial = 1;
  double eps = 1e-5;
  double momentum = 0.1;
  int64_t size() const { return int64_t(batch) * channels * spatial; }
};

// linear: x [batch, in_features], weight [out_features, in_features] (PyTorch Linear), bias [out_features] or null.
struct LinearParams {
  int batch = 1, in_features = 1, out_features = 1;
};

// max_pool2d: x [batch, channels, in_h, in_w] → y [batch, channels, out_h, out_w] (torch.nn.MaxPool2d, floor mode,
// dilation 1). Padding is −∞ (never chosen); pad ≤ kernel / 2 as PyTorch requires, so every window holds an element.
struct MaxPool2dParams {
  int batch = 1, channels = 1, in_h = 1, in_w = 1;
  int kernel = 1, stride = 1, pad = 0;
  int out_h() const { return (in_h + 2 * pad - kernel) / stride + 1; }
  int out_w() const { return (in_w + 2 * pad - kernel) / stride + 1; }
  int64_t x_size() const { return int64_t(batch) * channels * in_h * in_w; }
  int64_t y_size() const { return int64_t(batch) * channels * out_h() * out_w(); }
};

// Adam with PyTorch semantics: L2 weight decay added to the gradient (torch.optim.Adam, not AdamW), bias correction.
struct AdamParams {
  double lr = 2e-4, beta1 = 0.5, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

}  // namespace gancu
