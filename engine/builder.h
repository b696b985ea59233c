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

  // Persistent values. A second call with the same name returns the first value (same shape required).
  ValueId parameter(const std::string& name, const Shape& shape, Init init);
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
  ValueId linear(ValueId x, const std::string& name, int out_features, bool bias, Init weight_init);
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

  // Losses reduce to a scalar mean (shape []), kept for the host to read. Autodiff seeds a loss with gradient
  // `scale` (−1 maximises it: the saturating generator loss minimises −BCE(D(G(z)), 0)).
  ValueId bce_with_logits(ValueId x, ValueId target, float scale = 1.0f);
  ValueId mse(ValueId x, ValueId target, float scale = 1.0f);
  ValueId l1(ValueId x, ValueId target, float scale = 1.0f);

  // One Adam update of `params` with `grads` (matching lists), in place, at this point of the node order. The moments
  // are optimiser state named "optim.<name>.<param>.exp_avg" / ".exp_avg_sq", created by the first update of a
  // parameter and continued by later updates under the same name (several D updates per step, as PyTorch's loop
  // calling optimizer.step() k times). The optimiser's step counter is found by its name (Graph::optimiser): each
  // update advances it once.
  void adam_step(const std::string& name, const std::vector<ValueId>& params, const std::vector<ValueId>& grads,
                 const AdamParams& adam);

  // A temporary the host reads after the step.
  void keep(ValueId v) { g_.value(v).keep = true; }

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
  int next_stream_ = 1;
  int anonymous_ = 0;
};

// The error every shape check throws: "<node>: <problem> (got [..])".
[[noreturn]] void shape_error(const std::string& node, const std::string& problem);

}  // namespace gancu
