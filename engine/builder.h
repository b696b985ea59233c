// The builder API through which models declare networks. Every op checks its input shapes and infers its output
// shape here, at build time: a mismatch throws std::invalid_argument naming the node and the shapes, long before any
// step runs. Parameters are found by name, so calling a network function twice (D on real, then on fake images)
// shares its weights, as calling an nn.Module twice does.
#pragma once
#include <string>
#include <vector>

#include "engine/graph.h"

namespace gancu {

class Builder {
 public:
  explicit Builder(Graph& graph) : g_(graph) {}

  Graph& graph() { return g_; }
  // Parameter and buffer names are prefix + local name ("G." + "main.0.weight").
  void set_prefix(const std::string& prefix) { prefix_ = prefix; }
  const std::string& prefix() const { return prefix_; }
  // Training mode: batch norm uses batch statistics and updates running ones; dropout drops.
  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }
  // Frozen mode: the weights layers declare (parameter() below) are ValueKind::kFrozen instead of kParameter, loaded
  // and never trained (ParameterStore::load_frozen). A flag rather than a per-layer argument, so that one network
  // function declares the trainable and the frozen variant alike, and every layer (conv2d, linear, prelu, batch norm's
  // affine) takes frozen weights with no new signature. Batch-norm running statistics stay buffers.
  void set_frozen(bool frozen) { frozen_ = frozen; }
  bool frozen() const { return frozen_; }

  // Persistent values. A second call with the same name returns the first value (same shape required).
  // parameter() makes a kFrozen value in frozen mode (set_frozen), with no initialisation: it is loaded.
  ValueId parameter(const std::string& name, const Shape& shape, Init init);
  ValueId frozen(const std::string& name, const Shape& shape);  // kFrozen, prefix + name, whatever the mode
  ValueId buffer(const std::string& name, const Shape& shape, Init init);
  ValueId input(const std::string& name, const Shape& shape);

  // Random sources, fresh every step (Philox keyed by the run's seed, this op's stream and the step number).
  ValueId normal(const std::string& name, const Shape& shape, float mean = 0.0f, float stddev = 1.0f);
  // Labels: every element is `value`, except that with probability `flip_probability` it becomes 1 − value.
  ValueId target(const std::string& name, const Shape& shape, float value, double flip_probability = 0.0);

  // Layers. `name` names the layer's parameters (name + ".weight", ".bias", ...) and the node in error messages.
  ValueId conv2d(ValueId x, const std::string& name, int out_channels, int kernel, int stride, int pad, bool bias,
                 Init weight_init);
  ValueId conv_transpose2d(ValueId x, const std::string& name, int out_channels, int kernel, int stride, int pad,
                           int output_pad, bool bias, Init weight_init);
  ValueId batch_norm2d(ValueId x, const std::string& name, Init gamma_init = {Init::kOnes, 0, 0}, double eps = 1e-5,
                       double momentum = 0.1);
  // PyTorch's BatchNorm1d over [N, C] (or [N, C, L]): batch_norm2d on an [N, C, 1, 1] (or [N, C, L, 1]) view, with
  // its parameter and buffer names (weight, bias, running_mean, running_var); the result has x's shape.
  ValueId batch_norm1d(ValueId x, const std::string& name, Init gamma_init = {Init::kOnes, 0, 0}, double eps = 1e-5,
                       double momentum = 0.1);
  // x [N, in_features] → [N, out_features]. PyTorch's nn.Linear initialises weight and bias with
  // Init::uniform(−1/√in_features, 1/√in_features).
  ValueId linear(ValueId x, const std::string& name, int out_features, bool bias, Init weight_init,
                 Init bias_init = {});
  ValueId relu(ValueId x);
  ValueId leaky_relu(ValueId x, float slope);
  ValueId prelu(ValueId x, const std::string& name);  // one slope per channel, initialised 0.25 as PyTorch's
  ValueId tanh(ValueId x);
  ValueId sigmoid(ValueId x);
  ValueId add(ValueId a, ValueId b);
  ValueId flatten(ValueId x);  // [N, C, H, W] → [N, C·H·W], a view
  ValueId reshape(ValueId x, const Shape& shape);
  ValueId dropout(ValueId x, double p);
  ValueId pixel_shuffle(ValueId x, int upscale);
  // torch.nn.MaxPool2d(kernel, stride, pad) on [N, C, H, W] → [N, C, ⌊(H + 2·pad − kernel)/stride⌋ + 1, ...] (floor
  // mode, padding never picked, ties to the first maximum in row-major order). pad ≤ kernel/2, as PyTorch requires.
  ValueId max_pool2d(ValueId x, int kernel, int stride, int pad = 0);
  // torch.cat(xs, 1): two or more values of one rank ≥ 2 that agree on every dim but dim 1 (channels or features).
  // Each input's gradient is its channel slice of the output's, made only for inputs that need one.
  ValueId concat(const std::vector<ValueId>& xs);
  // Class labels [N] (indices 0..classes−1 held as floats, written by the host) → [N, classes, h, w]: 1 in channel
  // labels[n], 0 elsewhere. h = w = 1 gives the one-hot vectors joined to z; h × w = the image size gives the label
  // maps joined to D's input. No gradient flows through it (autodiff refuses a graph that would need one). A label
  // that is not a class index: the CPU kernels throw; the CUDA kernel, which cannot, writes all-zero maps for it.
  ValueId one_hot(ValueId labels, int classes, int h, int w);

  // Losses reduce to a scalar mean (shape []), kept for the host to read. Autodiff seeds a loss with gradient
  // `scale` (−1 maximises it: the saturating generator loss minimises −BCE(D(G(z)), 0)).
  ValueId bce_with_logits(ValueId x, ValueId target, float scale = 1.0f);
  ValueId mse(ValueId x, ValueId target, float scale = 1.0f);
  ValueId l1(ValueId x, ValueId target, float scale = 1.0f);
  // torch.nn.CrossEntropyLoss (reduction "mean"): logits [N, K] against labels [N], class indices 0..K−1 held as
  // floats (written by the host). The gradient reaches the logits only: d logits = scale·(softmax − onehot)/N. A label
  // that is not a class index: the CPU kernels throw; the CUDA kernel, which cannot, makes the loss NaN.
  ValueId cross_entropy(ValueId logits, ValueId labels, float scale = 1.0f);

  // One Adam update of `params` with `grads` (matching lists), in place, at this point of the node order. The moments
  // are optimiser state named "optim.<name>.<param>.exp_avg" / ".exp_avg_sq", created by the first update of a
  // parameter and continued by later updates under the same name (several D updates per step, as PyTorch's loop
  // calling optimizer.step() k times). The optimiser's step counter is found by its name (Graph::optimiser): each
  // update advances it once.
  void adam_step(const std::string& name, const std::vector<ValueId>& params, const std::vector<ValueId>& grads,
                 const AdamParams& adam);

  // A temporary the host reads after the step. A view (a reshape's output, such as batch_norm1d's) keeps the value
  // whose memory it shares: that is what the planner allocates.
  void keep(ValueId v) {
    g_.value(v).keep = true;
    g_.value(g_.storage_root(v)).keep = true;
  }

 private:
  ValueId persistent(const std::string& name, const Shape& shape, ValueKind kind, Init init);  // prefix + name
  // The persistent value named `full_name`, made on first request; the same kind and shape are required after that.
  ValueId find_or_add(const std::string& full_name, const Shape& shape, ValueKind kind, Init init);
  ValueId temp(const std::string& name, const Shape& shape);
  int emit(OpKind op, const std::string& name, std::vector<ValueId> inputs, std::vector<ValueId> outputs, Attrs attrs = {});
  ValueId loss(OpKind op, const char* what, ValueId x, ValueId target, float scale);
  ValueId elementwise(OpKind op, const char* what, ValueId x, Attrs attrs = {});  // same shape in and out
  std::string auto_name(const char* what);
  Shape expect_rank(ValueId x, int rank, const std::string& node) const;  // a copy: the value list may grow

  Graph& g_;
  std::string prefix_;
  bool training_ = true;
  bool frozen_ = false;
  int next_stream_ = 1;
  int anonymous_ = 0;
};

// The error every shape check throws: "<node>: <problem> (got [..])".
[[noreturn]] void shape_error(const std::string& node, const std::string& problem);

}  // namespace gancu
