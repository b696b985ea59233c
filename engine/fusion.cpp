#include "engine/fusion.h"

#include <vector>

namespace gancu {
namespace {

bool is_batch_norm(OpKind op) { return op == OpKind::kBatchNorm2dTrain || op == OpKind::kBatchNorm2dInfer; }

FusedActivation activation_of(OpKind op) {
  if (op == OpKind::kRelu) return FusedActivation::kRelu;
  if (op == OpKind::kLeakyRelu) return FusedActivation::kLeakyRelu;
  if (op == OpKind::kPRelu) return FusedActivation::kPRelu;
  return FusedActivation::kNone;
}

OpKind backward_of(FusedActivation a) {
  if (a == FusedActivation::kRelu) return OpKind::kReluBackward;
  if (a == FusedActivation::kLeakyRelu) return OpKind::kLeakyReluBackward;
  return OpKind::kPReluBackward;
}

bool is_activation_backward(OpKind op) {
  return op == OpKind::kReluBackward || op == OpKind::kLeakyReluBackward || op == OpKind::kPReluBackward;
}

// The activation's output gradient among its backward's inputs: {x, gz} for (leaky) relu, {x, slope, gz} for prelu.
ValueId output_gradient_of(const Node& act_backward) {
  return act_backward.op == OpKind::kPReluBackward ? act_backward.inputs[2] : act_backward.inputs[1];
}

// The same activation: the same leaky slope, or the same learned slope parameter.
bool same_activation(const Node& act, const Node& act_backward) {
  if (act_backward.op != backward_of(activation_of(act.op))) return false;
  if (act.op == OpKind::kPRelu) return act_backward.inputs[1] == act.inputs[1];
  return act_backward.attrs.slope == act.attrs.slope;
}

}  // namespace

int fuse_batch_norm_activations(Graph& graph) {
  std::vector<Node>& nodes = graph.nodes();
  // readers[v]: indices of the nodes reading value v.
  std::vector<std::vector<size_t>> readers(static_cast<size_t>(graph.num_values()));
  auto index_readers = [&] {
    for (auto& r : readers) r.clear();
    for (size_t i = 0; i < nodes.size(); ++i)
      for (ValueId v : nodes[i].inputs)
        if (v != kNoValue) readers[static_cast<size_t>(v)].push_back(i);
  };
  index_readers();
  std::vector<bool> removed(nodes.size(), false);
  int fused = 0;
  for (size_t b = 0; b < nodes.size(); ++b) {
    Node& bn = nodes[b];
    if (!is_batch_norm(bn.op) || bn.attrs.fused_activation != FusedActivation::kNone) continue;
    const ValueId y = bn.outputs[0];
    if (graph.value(y).persistent() || graph.value(y).alias_of != kNoValue) continue;
    // y's readers: exactly one activation (its input 0), and at most one matching activation backward (reading y as
    // its forward input, input 0).
    size_t act = nodes.size(), act_backward = nodes.size();
    bool other_reader = false;
    for (size_t r : readers[static_cast<size_t>(y)]) {
      const Node& n = nodes[r];
      if (activation_of(n.op) != FusedActivation::kNone && n.inputs[0] == y && act == nodes.size()) act = r;
      else if (is_activation_backward(n.op) && n.inputs[0] == y && act_backward == nodes.size()) act_backward = r;
      else other_reader = true;
    }
    if (other_reader || act == nodes.size()) continue;
    const FusedActivation kind = activation_of(nodes[act].op);
    if (act_backward != nodes.size() && !same_activation(nodes[act], nodes[act_backward])) continue;
    // PReLU's slope: a parameter the fused nodes read (forward input 5, backward input 6).
    const ValueId prelu_slope = kind == FusedActivation::kPRelu ? nodes[act].inputs[1] : kNoValue;
    // With the activation's backward, the batch norm's backward must be the only reader of its output gy, and must
    // belong to this batch norm (it reads the statistics this node saved).
    size_t bn_backward = nodes.size();
    if (act_backward != nodes.size()) {
      if (bn.op != OpKind::kBatchNorm2dTrain) continue;
      const ValueId gy = nodes[act_backward].outputs[0];
      if (graph.value(gy).persistent() || readers[static_cast<size_t>(gy)].size() != 1) continue;
      const size_t r = readers[static_cast<size_t>(gy)][0];
      const Node& n = nodes[r];
      if (n.op != OpKind::kBatchNorm2dBackward || n.inputs[0] != gy || n.inputs[1] != bn.inputs[0] ||
          n.inputs[3] != bn.outputs[1] || n.inputs[4] != bn.outputs[2])
        continue;
      bn_backward = r;
      // The fused backward reads beta (and PReLU's slope) when it runs; an optimiser step on either in between would
      // change the mask (and the slope's factor).
      bool updated = false;
      for (size_t k = b + 1; k < bn_backward; ++k)
        if (nodes[k].op == OpKind::kAdamStep)
          for (ValueId v : nodes[k].inputs) updated = updated || v == bn.inputs[2] || v == prelu_slope;
      if (updated) continue;
    }

    bn.attrs.fused_activation = kind;
    bn.attrs.slope = nodes[act].attrs.slope;
    bn.outputs[0] = nodes[act].outputs[0];
    bn.name.append("+").append(op_name(nodes[act].op));
    if (prelu_slope != kNoValue) bn.inputs.push_back(prelu_slope);
    removed[act] = true;
    if (bn_backward != nodes.size()) {
      Node& back = nodes[bn_backward];
      back.inputs[0] = output_gradient_of(nodes[act_backward]);
      back.inputs.push_back(bn.inputs[2]);  // beta, to recompute the pre-activation
      back.attrs.fused_activation = kind;
      back.attrs.slope = bn.attrs.slope;
      if (prelu_slope != kNoValue) {
        back.inputs.push_back(prelu_slope);
        back.outputs.push_back(nodes[act_backward].outputs[1]);  // the slope's gradient, now made here
      }
      removed[act_backward] = true;
    }
    ++fused;
  }
  if (fused == 0) return 0;
  std::vector<Node> kept;
  kept.reserve(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i)
    if (!removed[i]) kept.push_back(std::move(nodes[i]));
  nodes = std::move(kept);
  return fused;
}

}  // namespace gancu
