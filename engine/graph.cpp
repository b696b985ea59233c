#include "engine/graph.h"

#include <sstream>
#include <stdexcept>

namespace gancu {

const char* op_name(OpKind op) {
  switch (op) {
    case OpKind::kConv2d: return "conv2d";
    case OpKind::kConvTranspose2d: return "conv_transpose2d";
    case OpKind::kBatchNorm2dTrain: return "batch_norm2d_train";
    case OpKind::kBatchNorm2dInfer: return "batch_norm2d_infer";
    case OpKind::kRelu: return "relu";
    case OpKind::kLeakyRelu: return "leaky_relu";
    case OpKind::kPRelu: return "prelu";
    case OpKind::kTanh: return "tanh";
    case OpKind::kSigmoid: return "sigmoid";
    case OpKind::kAdd: return "add";
    case OpKind::kLinear: return "linear";
    case OpKind::kReshape: return "reshape";
    case OpKind::kDropout: return "dropout";
    case OpKind::kPixelShuffle: return "pixel_shuffle";
    case OpKind::kBceWithLogits: return "bce_with_logits";
    case OpKind::kMse: return "mse";
    case OpKind::kL1: return "l1";
    case OpKind::kCrossEntropy: return "cross_entropy";
    case OpKind::kNormalFill: return "normal_fill";
    case OpKind::kTargetFill: return "target_fill";
    case OpKind::kConcat: return "concat";
    case OpKind::kOneHot: return "one_hot";
    case OpKind::kChannelSlice: return "channel_slice";
    case OpKind::kMaxPool2d: return "max_pool2d";
    case OpKind::kConv2dBackwardInput: return "conv2d_backward_input";
    case OpKind::kConv2dBackwardWeight: return "conv2d_backward_weight";
    case OpKind::kBias2dBackward: return "bias2d_backward";
    case OpKind::kConvTranspose2dBackwardInput: return "conv_transpose2d_backward_input";
    case OpKind::kConvTranspose2dBackwardWeight: return "conv_transpose2d_backward_weight";
    case OpKind::kBatchNorm2dBackward: return "batch_norm2d_backward";
    case OpKind::kReluBackward: return "relu_backward";
    case OpKind::kLeakyReluBackward: return "leaky_relu_backward";
    case OpKind::kPReluBackward: return "prelu_backward";
    case OpKind::kTanhBackward: return "tanh_backward";
    case OpKind::kSigmoidBackward: return "sigmoid_backward";
    case OpKind::kLinearBackwardInput: return "linear_backward_input";
    case OpKind::kLinearBackwardWeight: return "linear_backward_weight";
    case OpKind::kLinearBackwardBias: return "linear_backward_bias";
    case OpKind::kDropoutBackward: return "dropout_backward";
    case OpKind::kPixelShuffleBackward: return "pixel_shuffle_backward";
    case OpKind::kBceWithLogitsBackward: return "bce_with_logits_backward";
    case OpKind::kMseBackward: return "mse_backward";
    case OpKind::kL1Backward: return "l1_backward";
    case OpKind::kCrossEntropyBackward: return "cross_entropy_backward";
    case OpKind::kMaxPool2dBackward: return "max_pool2d_backward";
    case OpKind::kAdamStep: return "adam_step";
    case OpKind::kAllReduceMean: return "all_reduce_mean";
    case OpKind::kSyncBatchNorm2dTrain: return "sync_batch_norm2d_train";
    case OpKind::kSyncBatchNorm2dBackward: return "sync_batch_norm2d_backward";
    case OpKind::kCount: break;
  }
  return "?";
}

ValueId Graph::add_value(const std::string& name, const Shape& shape, ValueKind kind, Init init) {
  Value v;
  v.id = static_cast<ValueId>(values_.size());
  v.name = name;
  v.shape = shape;
  v.kind = kind;
  v.init = init;
  values_.push_back(std::move(v));
  return values_.back().id;
}

int Graph::add_node(Node node) {
  for (ValueId id : node.inputs)
    if (id != kNoValue && (id < 0 || id >= num_values()))
      throw std::logic_error(node.name + ": input value " + std::to_string(id) + " does not exist");
  for (ValueId id : node.outputs)
    if (id < 0 || id >= num_values())
      throw std::logic_error(node.name + ": output value " + std::to_string(id) + " does not exist");
  nodes_.push_back(std::move(node));
  return static_cast<int>(nodes_.size()) - 1;
}

int Graph::optimiser(const std::string& name) {
  for (size_t i = 0; i < optimisers_.size(); ++i)
    if (optimisers_[i] == name) return static_cast<int>(i);
  optimisers_.push_back(name);
  return static_cast<int>(optimisers_.size() - 1);
}

ValueId Graph::find(const std::string& name) const {
  for (const Value& v : values_)
    if (v.name == name) return v.id;
  return kNoValue;
}

ValueId Graph::storage_root(ValueId id) const {
  while (value(id).alias_of != kNoValue) id = value(id).alias_of;
  return id;
}

std::string Graph::dump() const {
  std::ostringstream out;
  auto list = [&](const std::vector<ValueId>& ids) {
    std::string s;
    for (ValueId id : ids) {
      if (!s.empty()) s += ", ";
      s += id == kNoValue ? std::string("-") : value(id).name + shape(id).str();
    }
    return s;
  };
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    out << i << " " << op_name(n.op) << " " << n.name << " (" << list(n.inputs) << ") -> " << list(n.outputs) << "\n";
  }
  return out.str();
}

}  // namespace gancu
