#include "engine/builder.h"

#include <algorithm>
#include <stdexcept>

namespace gancu {

void shape_error(const std::string& node, const std::string& problem) {
  throw std::invalid_argument(node + ": " + problem);
}

ValueId Builder::persistent(const std::string& name, const Shape& shape, ValueKind kind, Init init) {
  return find_or_add(prefix_ + name, shape, kind, init);
}

ValueId Builder::find_or_add(const std::string& full_name, const Shape& shape, ValueKind kind, Init init) {
  ValueId existing = g_.find(full_name);
  if (existing != kNoValue) {
    const Value& v = g_.value(existing);
    if (v.kind != kind || v.shape != shape)
      shape_error(full_name, "declared again with shape " + shape.str() + " but it has shape " + v.shape.str());
    return existing;
  }
  return g_.add_value(full_name, shape, kind, init);
}

ValueId Builder::parameter(const std::string& name, const Shape& shape, Init init) {
  if (frozen_) return frozen(name, shape);
  return persistent(name, shape, ValueKind::kParameter, init);
}
ValueId Builder::frozen(const std::string& name, const Shape& shape) {
  return persistent(name, shape, ValueKind::kFrozen, {});
}
ValueId Builder::buffer(const std::string& name, const Shape& shape, Init init) {
  return persistent(name, shape, ValueKind::kBuffer, init);
}
ValueId Builder::input(const std::string& name, const Shape& shape) {
  return persistent(name, shape, ValueKind::kInput, {});
}

ValueId Builder::temp(const std::string& name, const Shape& shape) {
  return g_.add_value(name, shape, ValueKind::kTemporary);
}

int Builder::emit(OpKind op, const std::string& name, std::vector<ValueId> inputs, std::vector<ValueId> outputs, Attrs attrs) {
  Node n;
  n.op = op;
  n.name = name;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  n.attrs = attrs;
  return g_.add_node(std::move(n));
}

std::string Builder::auto_name(const char* what) { return prefix_ + what + "#" + std::to_string(anonymous_++); }

Shape Builder::expect_rank(ValueId x, int rank, const std::string& node) const {
  const Shape s = g_.shape(x);  // a copy: adding values below may move the value list
  if (s.rank() != rank)
    shape_error(node, "expects a rank-" + std::to_string(rank) + " input, got " + s.str());
  return s;
}

ValueId Builder::normal(const std::string& name, const Shape& shape, float mean, float stddev) {
  Attrs a;
  a.fill_value = mean;
  a.fill_stddev = stddev;
  a.stream = static_cast<uint64_t>(next_stream_++);
  ValueId y = temp(prefix_ + name, shape);
  emit(OpKind::kNormalFill, prefix_ + name, {}, {y}, a);
  return y;
}

ValueId Builder::target(const std::string& name, const Shape& shape, float value, double flip_probability) {
  Attrs a;
  a.fill_value = value;
  a.label_noise = flip_probability;
  a.stream = static_cast<uint64_t>(next_stream_++);
  ValueId y = temp(prefix_ + name, shape);
  emit(OpKind::kTargetFill, prefix_ + name, {}, {y}, a);
  return y;
}

ValueId Builder::conv2d(ValueId x, const std::string& name, int out_channels, int kernel, int stride, int pad, bool bias,
                        Init weight_init) {
  const std::string node = prefix_ + name;
  const Shape s = expect_rank(x, 4, node + " (conv2d)");
  if (kernel < 1 || stride < 1 || pad < 0) shape_error(node, "invalid kernel/stride/padding");
  const int64_t h = s[2] + 2 * pad - kernel, w = s[3] + 2 * pad - kernel;
  if (h < 0 || w < 0)
    shape_error(node, "a " + std::to_string(kernel) + "x" + std::to_string(kernel) + " kernel with padding " +
                          std::to_string(pad) + " does not fit the input " + s.str());
  Shape out{s[0], out_channels, h / stride + 1, w / stride + 1};
  ValueId wt = parameter(name + ".weight", Shape{out_channels, s[1], kernel, kernel}, weight_init);
  ValueId b = bias ? parameter(name + ".bias", Shape{out_channels}, {}) : kNoValue;
  ValueId y = temp(node, out);
  Attrs a;
  a.kernel = kernel;
  a.stride = stride;
  a.pad = pad;
  emit(OpKind::kConv2d, node, {x, wt, b}, {y}, a);
  return y;
}

ValueId Builder::conv_transpose2d(ValueId x, const std::string& name, int out_channels, int kernel, int stride, int pad,
                                  int output_pad, bool bias, Init weight_init) {
  const std::string node = prefix_ + name;
  const Shape s = expect_rank(x, 4, node + " (conv_transpose2d)");
  if (kernel < 1 || stride < 1 || pad < 0 || output_pad < 0 || output_pad >= stride)
    shape_error(node, "invalid kernel/stride/padding/output_padding");
  const int64_t h = (s[2] - 1) * stride - 2 * pad + kernel + output_pad;
  const int64_t w = (s[3] - 1) * stride - 2 * pad + kernel + output_pad;
  if (h < 1 || w < 1) shape_error(node, "output would be empty for input " + s.str());
  ValueId wt = parameter(name + ".weight", Shape{s[1], out_channels, kernel, kernel}, weight_init);
  ValueId b = bias ? parameter(name + ".bias", Shape{out_channels}, {}) : kNoValue;
  ValueId y = temp(node, Shape{s[0], out_channels, h, w});
  Attrs a;
  a.kernel = kernel;
  a.stride = stride;
  a.pad = pad;
  a.output_pad = output_pad;
  emit(OpKind::kConvTranspose2d, node, {x, wt, b}, {y}, a);
  return y;
}

ValueId Builder::batch_norm2d(ValueId x, const std::string& name, Init gamma_init, double eps, double momentum) {
  const std::string node = prefix_ + name;
  const Shape s = expect_rank(x, 4, node + " (batch_norm2d)");
  const int64_t c = s[1];
  ValueId gamma = parameter(name + ".weight", Shape{c}, gamma_init);
  ValueId beta = parameter(name + ".bias", Shape{c}, {});
  ValueId mean = buffer(name + ".running_mean", Shape{c}, {});
  ValueId var = buffer(name + ".running_var", Shape{c}, {Init::kOnes, 0, 0});
  Attrs a;
  a.eps = eps;
  a.momentum = momentum;
  ValueId y = temp(node, s);
  if (training_) {
    if (s[0] * s[2] * s[3] < 2) shape_error(node, "training batch norm needs more than one value per channel, got " + s.str());
    ValueId save_mean = temp(node + ".save_mean", Shape{c});
    ValueId save_invstd = temp(node + ".save_invstd", Shape{c});
    emit(OpKind::kBatchNorm2dTrain, node, {x, gamma, beta, mean, var}, {y, save_mean, save_invstd}, a);
  } else {
    emit(OpKind::kBatchNorm2dInfer, node, {x, gamma, beta, mean, var}, {y}, a);
  }
  return y;
}

ValueId Builder::batch_norm1d(ValueId x, const std::string& name, Init gamma_init, double eps, double momentum) {
  const Shape s = g_.shape(x);  // a copy: adding values below may move the value list
  if (s.rank() != 2 && s.rank() != 3)
    shape_error(prefix_ + name, "batch_norm1d expects [N, C] or [N, C, L], got " + s.str());
  const ValueId view = reshape(x, Shape{s[0], s[1], s.rank() == 3 ? s[2] : 1, 1});
  return reshape(batch_norm2d(view, name, gamma_init, eps, momentum), s);
}

ValueId Builder::linear(ValueId x, const std::string& name, int out_features, bool bias, Init weight_init,
                        Init bias_init) {
  const std::string node = prefix_ + name;
  const Shape s = expect_rank(x, 2, node + " (linear)");
  ValueId wt = parameter(name + ".weight", Shape{out_features, s[1]}, weight_init);
  ValueId b = bias ? parameter(name + ".bias", Shape{out_features}, bias_init) : kNoValue;
  ValueId y = temp(node, Shape{s[0], out_features});
  emit(OpKind::kLinear, node, {x, wt, b}, {y});
  return y;
}

ValueId Builder::elementwise(OpKind op, const char* what, ValueId x, Attrs attrs) {
  const std::string node = auto_name(what);
  ValueId y = temp(node, g_.shape(x));
  emit(op, node, {x}, {y}, attrs);
  return y;
}

ValueId Builder::relu(ValueId x) { return elementwise(OpKind::kRelu, "relu", x); }

ValueId Builder::leaky_relu(ValueId x, float slope) {
  Attrs a;
  a.slope = slope;
  return elementwise(OpKind::kLeakyRelu, "leaky_relu", x, a);
}

ValueId Builder::prelu(ValueId x, const std::string& name) {
  const std::string node = prefix_ + name;
  const Shape s = g_.shape(x);  // a copy: adding values below may move the value list
  if (s.rank() < 2) shape_error(node, "prelu expects [N, C, ...], got " + s.str());
  ValueId slope = parameter(name + ".weight", Shape{s[1]}, {Init::kNormal, 0.25f, 0.0f});
  ValueId y = temp(node, s);
  emit(OpKind::kPRelu, node, {x, slope}, {y});
  return y;
}

ValueId Builder::tanh(ValueId x) { return elementwise(OpKind::kTanh, "tanh", x); }

ValueId Builder::sigmoid(ValueId x) { return elementwise(OpKind::kSigmoid, "sigmoid", x); }

ValueId Builder::add(ValueId a, ValueId b) {
  std::string node = auto_name("add");
  if (g_.shape(a) != g_.shape(b))
    shape_error(node, "adds tensors of different shapes " + g_.shape(a).str() + " and " + g_.shape(b).str());
  ValueId y = temp(node, g_.shape(a));
  emit(OpKind::kAdd, node, {a, b}, {y});
  return y;
}

ValueId Builder::reshape(ValueId x, const Shape& shape) {
  std::string node = auto_name("reshape");
  if (shape.numel() != g_.shape(x).numel())
    shape_error(node, "cannot reshape " + g_.shape(x).str() + " to " + shape.str());
  ValueId y = temp(node, shape);
  g_.value(y).alias_of = x;
  emit(OpKind::kReshape, node, {x}, {y});
  return y;
}

ValueId Builder::flatten(ValueId x) {
  const Shape s = g_.shape(x);  // a copy: adding values below may move the value list
  if (s.rank() < 1) shape_error(auto_name("flatten"), "cannot flatten a scalar");
  return reshape(x, Shape{s[0], s.numel() / std::max<int64_t>(s[0], 1)});
}

ValueId Builder::dropout(ValueId x, double p) {
  std::string node = auto_name("dropout");
  if (p < 0 || p >= 1) shape_error(node, "dropout probability must be in [0, 1)");
  if (!training_ || p == 0) return x;
  Attrs a;
  a.p = p;
  a.stream = static_cast<uint64_t>(next_stream_++);
  ValueId y = temp(node, g_.shape(x));
  ValueId mask = temp(node + ".mask", g_.shape(x));
  emit(OpKind::kDropout, node, {x}, {y, mask}, a);
  return y;
}

ValueId Builder::pixel_shuffle(ValueId x, int upscale) {
  std::string node = auto_name("pixel_shuffle");
  const Shape s = expect_rank(x, 4, node);
  if (upscale < 1 || s[1] % (upscale * upscale) != 0)
    shape_error(node, "channels " + std::to_string(s[1]) + " not divisible by upscale² = " + std::to_string(upscale * upscale));
  Attrs a;
  a.upscale = upscale;
  ValueId y = temp(node, Shape{s[0], s[1] / (upscale * upscale), s[2] * upscale, s[3] * upscale});
  emit(OpKind::kPixelShuffle, node, {x}, {y}, a);
  return y;
}

ValueId Builder::max_pool2d(ValueId x, int kernel, int stride, int pad) {
  const std::string node = auto_name("max_pool2d");
  const Shape s = expect_rank(x, 4, node);
  if (kernel < 1 || stride < 1 || pad < 0 || 2 * pad > kernel)
    shape_error(node, "invalid kernel " + std::to_string(kernel) + ", stride " + std::to_string(stride) + " or padding " +
                          std::to_string(pad) + " (pad must be at most kernel/2)");
  const int64_t h = s[2] + 2 * pad - kernel, w = s[3] + 2 * pad - kernel;
  if (h < 0 || w < 0)
    shape_error(node, "a " + std::to_string(kernel) + "x" + std::to_string(kernel) + " window with padding " +
                          std::to_string(pad) + " does not fit the input " + s.str());
  Attrs a;
  a.kernel = kernel;
  a.stride = stride;
  a.pad = pad;
  ValueId y = temp(node, Shape{s[0], s[1], h / stride + 1, w / stride + 1});
  emit(OpKind::kMaxPool2d, node, {x}, {y}, a);
  return y;
}

ValueId Builder::concat(const std::vector<ValueId>& xs) {
  const std::string node = auto_name("concat");
  if (xs.size() < 2) shape_error(node, "concat needs two or more values, got " + std::to_string(xs.size()));
  Shape out = g_.shape(xs[0]);
  if (out.rank() < 2) shape_error(node, "concat joins values of rank 2 or more along dim 1, got " + out.str());
  for (size_t i = 1; i < xs.size(); ++i) {
    const Shape& s = g_.shape(xs[i]);
    bool agree = s.rank() == out.rank();
    for (int d = 0; agree && d < s.rank(); ++d) agree = d == 1 || s[d] == out[d];
    if (!agree)
      shape_error(node, "cannot join " + s.str() + " to " + g_.shape(xs[0]).str() +
                            " along dim 1: every other dim must agree");
    out[1] += s[1];
  }
  ValueId y = temp(node, out);
  emit(OpKind::kConcat, node, xs, {y});
  return y;
}

ValueId Builder::one_hot(ValueId labels, int classes, int h, int w) {
  const std::string node = auto_name("one_hot");
  const Shape s = expect_rank(labels, 1, node + " (labels)");
  if (classes < 1 || h < 1 || w < 1)
    shape_error(node, "one_hot needs classes, h and w ≥ 1, got " + std::to_string(classes) + ", " + std::to_string(h) +
                          ", " + std::to_string(w));
  ValueId y = temp(node, Shape{s[0], classes, h, w});
  emit(OpKind::kOneHot, node, {labels}, {y});
  return y;
}

ValueId Builder::loss(OpKind op, const char* what, ValueId x, ValueId target, float scale) {
  std::string node = auto_name(what);
  if (g_.shape(x).numel() != g_.shape(target).numel())
    shape_error(node, std::string(what) + " of " + g_.shape(x).str() + " against a target of " + g_.shape(target).str());
  ValueId y = temp(node, Shape{});
  Attrs a;
  a.loss_scale = scale;
  emit(op, node, {x, target}, {y}, a);
  keep(y);
  return y;
}

ValueId Builder::bce_with_logits(ValueId x, ValueId target, float scale) {
  return loss(OpKind::kBceWithLogits, "bce_with_logits", x, target, scale);
}
ValueId Builder::mse(ValueId x, ValueId target, float scale) { return loss(OpKind::kMse, "mse", x, target, scale); }
ValueId Builder::l1(ValueId x, ValueId target, float scale) { return loss(OpKind::kL1, "l1", x, target, scale); }
ValueId Builder::cross_entropy(ValueId logits, ValueId labels, float scale) {
  const std::string node = auto_name("cross_entropy");
  const Shape x = expect_rank(logits, 2, node + " (logits)");
  const Shape l = expect_rank(labels, 1, node + " (labels)");
  if (l[0] != x[0])
    shape_error(node, "logits " + x.str() + " need one label per row, got labels " + l.str());
  ValueId y = temp(node, Shape{});
  Attrs a;
  a.loss_scale = scale;
  emit(OpKind::kCrossEntropy, node, {logits, labels}, {y}, a);
  keep(y);
  return y;
}

void Builder::adam_step(const std::string& name, const std::vector<ValueId>& params, const std::vector<ValueId>& grads,
                        const AdamParams& adam) {
  const std::string node = "optim." + name;
  if (params.size() != grads.size()) shape_error(node, "adam_step needs one gradient per parameter");
  std::vector<ValueId> inputs;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string param = g_.value(params[i]).name;  // copies: adding values below may move the value list
    const Shape shape = g_.shape(params[i]);
    if (g_.value(params[i]).kind != ValueKind::kParameter) shape_error(node, param + " is not a trainable parameter");
    if (grads[i] == kNoValue) shape_error(node, "parameter " + param + " has no gradient");
    if (g_.shape(grads[i]) != shape) shape_error(node, "gradient of " + param + " has the wrong shape");
    ValueId m = find_or_add(node + "." + param + ".exp_avg", shape, ValueKind::kOptState, {});
    ValueId v = find_or_add(node + "." + param + ".exp_avg_sq", shape, ValueKind::kOptState, {});
    inputs.insert(inputs.end(), {params[i], grads[i], m, v});
  }
  Attrs a;
  a.adam = adam;
  a.counter = g_.optimiser(name);
  emit(OpKind::kAdamStep, node, std::move(inputs), {}, a);
}

}  // namespace gancu
