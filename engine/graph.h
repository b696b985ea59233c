// The static graph: values with static shapes, and nodes (ops with attributes) in program order.
// A model is declared once through the Builder (builder.h); autodiff appends backward nodes; the planner turns the
// node list into one flat plan. Node order is execution order: optimiser steps mutate parameters in place, so a
// later forward pass (the generator update's pass through D) sees the updated weights, exactly as eager PyTorch does.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/params.h"

namespace gancu {

using ValueId = int;
constexpr ValueId kNoValue = -1;

enum class ValueKind {
  kParameter,  // learned; persistent; checkpointed
  kBuffer,     // BatchNorm running statistics; persistent; checkpointed
  kOptState,   // Adam moments; persistent; checkpointed with the training state
  kInput,      // written by the host before each step (a data batch)
  kTemporary,  // activations and gradients: planned into the arena by liveness
  kFrozen,     // loaded weights of a fixed network (VGG19 for a content loss): persistent, never updated, never given a
               // gradient, never checkpointed or exported; gradients still flow through its ops to their inputs
};

// How a persistent value starts out. kUniform draws from U(low, high]: PyTorch's nn.Linear default is
// U(−1/√fan_in, 1/√fan_in) for weight and bias, Keras' glorot_uniform is U(−b, b) with b = √(6/(fan_in + fan_out)).
struct Init {
  enum Kind { kZeros, kOnes, kNormal, kUniform } kind = kZeros;
  float mean = 0, stddev = 0;
  float low = 0, high = 0;
  static Init uniform(float low, float high) {
    Init init;
    init.kind = kUniform;
    init.low = low;
    init.high = high;
    return init;
  }
};

struct Value {
  ValueId id = kNoValue;
  std::string name;
  Shape shape;
  ValueKind kind = ValueKind::kTemporary;
  Init init;
  bool keep = false;           // a temporary the host reads after the step (losses, D outputs): not arena-shared
  ValueId alias_of = kNoValue; // a reshape's output shares its input's memory
  int64_t numel() const { return shape.numel(); }
  bool persistent() const { return kind != ValueKind::kTemporary || keep; }
};

enum class OpKind {
  // forward
  kConv2d, kConvTranspose2d, kBatchNorm2dTrain, kBatchNorm2dInfer, kRelu, kLeakyRelu, kPRelu, kTanh, kSigmoid,
  kAdd, kLinear, kReshape, kDropout, kPixelShuffle, kBceWithLogits, kMse, kL1, kNormalFill, kTargetFill,
  kConcat,       // along dim 1 of inputs that agree on every other dim (torch.cat(xs, 1))
  kOneHot,       // labels [N] (class indices as floats) → [N, K, H, W]; no gradient
  kChannelSlice, // y = x[:, begin : begin + y.shape[1]]: the gradient of one concat input
  kCrossEntropy, // logits [N, K], labels [N] (class indices as floats) → mean softmax cross-entropy; no label gradient
  kMaxPool2d,    // torch.nn.MaxPool2d (kernel, stride, pad)
  // backward
  kConv2dBackwardInput, kConv2dBackwardWeight, kBias2dBackward, kConvTranspose2dBackwardInput,
  kConvTranspose2dBackwardWeight, kBatchNorm2dBackward, kReluBackward, kLeakyReluBackward, kPReluBackward,
  kTanhBackward, kSigmoidBackward, kLinearBackwardInput, kLinearBackwardWeight, kLinearBackwardBias,
  kDropoutBackward, kPixelShuffleBackward, kBceWithLogitsBackward, kMseBackward, kL1Backward,
  kCrossEntropyBackward,
  kMaxPool2dBackward,  // {x, dy} → {dx}: recomputes each window's argmax from x (no index tensor to plan or store)
  // optimiser: one node updates a whole parameter list (inputs: p0, g0, m0, v0, p1, g1, ...)
  kAdamStep,
  // data parallel (engine/data_parallel.h): inserted by its pass, never by a model
  kAllReduceMean,            // averages its inputs (gradients) over the process group in place; no outputs
  kSyncBatchNorm2dTrain,     // kBatchNorm2dTrain with the batch statistics of the whole group
  kSyncBatchNorm2dBackward,  // its gradient: the group's sums of dy and dy·x̂ (dgamma, dbeta stay per rank)
  kCount
};
const char* op_name(OpKind op);

// An activation folded into a batch-norm node by fuse_batch_norm_activations (engine/fusion.h): the node's output is
// act(batch_norm(x)), and its backward takes the gradient of that output. kPRelu's per-channel slope is an input of
// the fused nodes (and its gradient an output of the fused backward).
enum class FusedActivation { kNone, kRelu, kLeakyRelu, kPRelu };

// Attributes of every op kind in one record; each op reads the fields it needs.
struct Attrs {
  int kernel = 1, stride = 1, pad = 0, output_pad = 0;  // convolutions
  int upscale = 1;                                      // pixel shuffle
  int channel_begin = 0;                                // channel slice: the first channel of x that y holds
  float slope = 0.0f;                                   // leaky relu (and a fused one)
  FusedActivation fused_activation = FusedActivation::kNone;  // batch norm (train, infer, backward)
  double eps = 1e-5, momentum = 0.1;                    // batch norm
  double p = 0.0;                                       // dropout probability
  float fill_value = 0.0f;                              // target fill (label value), normal fill mean
  float fill_stddev = 1.0f;                             // normal fill stddev
  double label_noise = 0.0;                             // target fill: probability of flipping a label
  uint64_t stream = 0;                                  // Philox stream of random ops (distinct per op)
  float loss_scale = 1.0f;                              // loss backward: dL/dloss
  AdamParams adam;                                      // adam step
  int counter = -1;                                     // adam step: its optimiser (Graph::optimisers index)
};

struct Node {
  OpKind op = OpKind::kCount;
  std::string name;
  std::vector<ValueId> inputs;   // kNoValue for an absent optional input (no bias)
  std::vector<ValueId> outputs;
  Attrs attrs;
};

class Graph {
 public:
  ValueId add_value(const std::string& name, const Shape& shape, ValueKind kind, Init init = {});
  int add_node(Node node);  // validates value ids; returns the node index

  Value& value(ValueId id) { return values_.at(static_cast<size_t>(id)); }
  const Value& value(ValueId id) const { return values_.at(static_cast<size_t>(id)); }
  const Shape& shape(ValueId id) const { return value(id).shape; }
  const std::vector<Value>& values() const { return values_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  std::vector<Node>& nodes() { return nodes_; }
  int num_values() const { return static_cast<int>(values_.size()); }
  // Finds a value by name (persistent values have unique names); kNoValue if absent.
  ValueId find(const std::string& name) const;
  // Following alias links to the value that owns the memory.
  ValueId storage_root(ValueId id) const;
  // One line per node: "12 conv2d D.main.2 (x[64,64,16,16], w[128,64,4,4]) -> y[64,128,8,8]".
  std::string dump() const;

  // The optimisers whose updates the graph holds, by name ("G", "D"); an Adam node's Attrs::counter indexes this list.
  // Each has one step counter in the run's ParameterStore, found by this name when a plan binds the graph, so every
  // plan (and every update of one step) that updates an optimiser advances the same counter.
  int optimiser(const std::string& name);  // its index, added on first request
  const std::vector<std::string>& optimisers() const { return optimisers_; }

 private:
  std::vector<Value> values_;
  std::vector<Node> nodes_;
  std::vector<std::string> optimisers_;
};

}  // namespace gancu
