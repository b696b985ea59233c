#include "engine/autodiff.h"

#include <stdexcept>

namespace gancu {
namespace {

bool is_loss(OpKind op) {
  return op == OpKind::kBceWithLogits || op == OpKind::kMse || op == OpKind::kL1 || op == OpKind::kCrossEntropy;
}

OpKind loss_backward(OpKind op) {
  switch (op) {
    case OpKind::kBceWithLogits: return OpKind::kBceWithLogitsBackward;
    case OpKind::kMse: return OpKind::kMseBackward;
    case OpKind::kCrossEntropy: return OpKind::kCrossEntropyBackward;
    default: return OpKind::kL1Backward;
  }
}

class Differentiator {
 public:
  Differentiator(Graph& g, const std::vector<ValueId>& losses, const std::vector<ValueId>& wrt)
      : g_(g), forward_end_(static_cast<int>(g.nodes().size())), losses_(losses), wrt_(wrt),
        depends_on_wrt_(g.num_values(), false), needed_(g.num_values(), false), contributions_(g.num_values()) {}

  std::vector<ValueId> run() {
    for (ValueId v : wrt_)
      if (g_.value(v).kind == ValueKind::kFrozen)
        throw std::invalid_argument("append_backward: " + g_.value(v).name + " is frozen and has no gradient");
    mark_dependencies();
    mark_needed();
    for (int i = forward_end_ - 1; i >= 0; --i) {
      const Node node = g_.nodes()[static_cast<size_t>(i)];  // copy: emitting nodes may reallocate the list
      if (!relevant(node)) continue;
      differentiate(node);
    }
    std::vector<ValueId> grads;
    for (ValueId v : wrt_) grads.push_back(gradient(v));
    return grads;
  }

 private:
  void mark_dependencies() {
    for (ValueId v : wrt_) depends_on_wrt_[static_cast<size_t>(v)] = true;
    for (int i = 0; i < forward_end_; ++i) {
      const Node& n = g_.nodes()[static_cast<size_t>(i)];
      bool any = false;
      for (ValueId in : n.inputs) any = any || (in != kNoValue && depends_on_wrt_[static_cast<size_t>(in)]);
      if (any)
        for (ValueId out : n.outputs) depends_on_wrt_[static_cast<size_t>(out)] = true;
    }
  }

  void mark_needed() {
    for (ValueId l : losses_) {
      const Value& v = g_.value(l);
      if (v.shape.numel() != 1) throw std::invalid_argument("append_backward: " + v.name + " is not a scalar loss");
      needed_[static_cast<size_t>(l)] = true;
    }
    for (int i = forward_end_ - 1; i >= 0; --i) {
      const Node& n = g_.nodes()[static_cast<size_t>(i)];
      bool any = false;
      for (ValueId out : n.outputs) any = any || needed_[static_cast<size_t>(out)];
      if (any)
        for (ValueId in : n.inputs)
          if (in != kNoValue) needed_[static_cast<size_t>(in)] = true;
    }
  }

  bool relevant(const Node& n) const {
    bool out_needed = false, in_depends = false;
    for (ValueId out : n.outputs) out_needed = out_needed || needed_[static_cast<size_t>(out)];
    for (ValueId in : n.inputs) in_depends = in_depends || (in != kNoValue && depends_on_wrt_[static_cast<size_t>(in)]);
    return out_needed && in_depends;
  }

  bool wants(ValueId v) const { return v != kNoValue && depends_on_wrt_[static_cast<size_t>(v)]; }

  // The summed gradient of v, emitting add nodes on first request when there are several contributions.
  ValueId gradient(ValueId v) {
    auto& list = contributions_[static_cast<size_t>(v)];
    if (list.empty()) return kNoValue;
    while (list.size() > 1) {
      ValueId a = list[list.size() - 2], b = list.back();
      list.resize(list.size() - 2);
      ValueId sum = g_.add_value("grad/" + g_.value(v).name + "+", g_.shape(v), ValueKind::kTemporary);
      emit(OpKind::kAdd, "grad/" + g_.value(v).name + "/accumulate", {a, b}, {sum});
      list.push_back(sum);
    }
    return list[0];
  }

  ValueId new_grad(ValueId of) {
    return g_.add_value("grad/" + g_.value(of).name, g_.shape(of), ValueKind::kTemporary);
  }

  void emit(OpKind op, const std::string& name, std::vector<ValueId> in, std::vector<ValueId> out, Attrs attrs = {}) {
    Node n;
    n.op = op;
    n.name = name;
    n.inputs = std::move(in);
    n.outputs = std::move(out);
    n.attrs = attrs;
    g_.add_node(std::move(n));
  }

  void contribute(ValueId v, ValueId grad) { contributions_[static_cast<size_t>(v)].push_back(grad); }

  // Emits op(inputs) -> new gradient of `of` when `of` wants one.
  void simple(OpKind op, const Node& n, ValueId of, std::vector<ValueId> inputs) {
    if (!wants(of)) return;
    ValueId gx = new_grad(of);
    emit(op, n.name + "/" + op_name(op), std::move(inputs), {gx}, n.attrs);
    contribute(of, gx);
  }

  void differentiate(const Node& n) {
    const std::string& name = n.name;
    if (is_loss(n.op)) {
      if (wants(n.inputs[1])) throw std::invalid_argument(name + ": gradients with respect to a loss target are not supported");
      bool seeded = false;
      for (ValueId l : losses_) seeded = seeded || l == n.outputs[0];
      if (!seeded) throw std::invalid_argument(name + ": a loss feeding other ops is not supported; pass it as a root");
      simple(loss_backward(n.op), n, n.inputs[0], {n.inputs[0], n.inputs[1]});
      return;
    }
    const ValueId gy = gradient(n.outputs[0]);
    if (gy == kNoValue) return;  // output feeds only things that do not reach the losses
    const ValueId x = n.inputs.empty() ? kNoValue : n.inputs[0];
    switch (n.op) {
      case OpKind::kConv2d:
      case OpKind::kConvTranspose2d: {
        const bool transposed = n.op == OpKind::kConvTranspose2d;
        simple(transposed ? OpKind::kConvTranspose2dBackwardInput : OpKind::kConv2dBackwardInput, n, x, {gy, n.inputs[1]});
        simple(transposed ? OpKind::kConvTranspose2dBackwardWeight : OpKind::kConv2dBackwardWeight, n, n.inputs[1], {x, gy});
        simple(OpKind::kBias2dBackward, n, n.inputs[2], {gy});
        return;
      }
      case OpKind::kLinear:
        simple(OpKind::kLinearBackwardInput, n, x, {gy, n.inputs[1]});
        simple(OpKind::kLinearBackwardWeight, n, n.inputs[1], {x, gy});
        simple(OpKind::kLinearBackwardBias, n, n.inputs[2], {gy});
        return;
      case OpKind::kBatchNorm2dTrain: {
        if (n.attrs.fused_activation != FusedActivation::kNone)
          throw std::invalid_argument(name + ": derive the backward before fusing (engine/fusion.h)");
        const ValueId gamma = n.inputs[1], beta = n.inputs[2];
        if (!wants(x) && !wants(gamma) && !wants(beta)) return;
        // One kernel produces all three; unwanted ones land in values nobody reads.
        ValueId gx = new_grad(x), ggamma = new_grad(gamma), gbeta = new_grad(beta);
        emit(OpKind::kBatchNorm2dBackward, name + "/backward", {gy, x, gamma, n.outputs[1], n.outputs[2]},
             {gx, ggamma, gbeta}, n.attrs);
        if (wants(x)) contribute(x, gx);
        if (wants(gamma)) contribute(gamma, ggamma);
        if (wants(beta)) contribute(beta, gbeta);
        return;
      }
      case OpKind::kBatchNorm2dInfer:
        throw std::invalid_argument(name + ": backward through inference-mode batch norm is not supported");
      case OpKind::kRelu: simple(OpKind::kReluBackward, n, x, {x, gy}); return;
      case OpKind::kLeakyRelu: simple(OpKind::kLeakyReluBackward, n, x, {x, gy}); return;
      case OpKind::kTanh: simple(OpKind::kTanhBackward, n, x, {n.outputs[0], gy}); return;
      case OpKind::kSigmoid: simple(OpKind::kSigmoidBackward, n, x, {n.outputs[0], gy}); return;
      case OpKind::kPRelu: {
        const ValueId slope = n.inputs[1];
        if (!wants(x) && !wants(slope)) return;
        ValueId gx = new_grad(x), gslope = new_grad(slope);
        emit(OpKind::kPReluBackward, name + "/backward", {x, slope, gy}, {gx, gslope});
        if (wants(x)) contribute(x, gx);
        if (wants(slope)) contribute(slope, gslope);
        return;
      }
      case OpKind::kAdd:
        if (wants(n.inputs[0])) contribute(n.inputs[0], gy);
        if (wants(n.inputs[1])) contribute(n.inputs[1], gy);
        return;
      case OpKind::kReshape: {
        if (!wants(x)) return;
        ValueId gx = new_grad(x);
        g_.value(gx).alias_of = gy;
        emit(OpKind::kReshape, name + "/backward", {gy}, {gx});
        contribute(x, gx);
        return;
      }
      case OpKind::kDropout: simple(OpKind::kDropoutBackward, n, x, {n.outputs[1], gy}); return;
      case OpKind::kPixelShuffle: simple(OpKind::kPixelShuffleBackward, n, x, {gy}); return;
      case OpKind::kMaxPool2d: simple(OpKind::kMaxPool2dBackward, n, x, {x, gy}); return;
      case OpKind::kConcat: {
        // Each input's gradient is its channel slice of gy, one node per input that wants it: a data batch or a label
        // map joined to a network's input gets none. (One node writing every input's gradient, as batch norm's
        // backward does, would also write the label maps' gradient, often larger than the image's.)
        int64_t begin = 0;
        for (ValueId in : n.inputs) {
          const int64_t channels = g_.shape(in)[1];
          if (wants(in)) {
            Attrs a;
            a.channel_begin = static_cast<int>(begin);
            ValueId gx = new_grad(in);
            emit(OpKind::kChannelSlice, name + "/slice@" + std::to_string(begin), {gy}, {gx}, a);
            contribute(in, gx);
          }
          begin += channels;
        }
        return;
      }
      case OpKind::kOneHot:
        throw std::invalid_argument(name + ": one_hot has no gradient, but its labels depend on a value whose gradient "
                                           "was asked for");
      default:
        throw std::logic_error(name + ": no derivative for op " + op_name(n.op));
    }
  }

  Graph& g_;
  int forward_end_;
  std::vector<ValueId> losses_, wrt_;
  std::vector<bool> depends_on_wrt_, needed_;
  std::vector<std::vector<ValueId>> contributions_;
};

}  // namespace

std::vector<ValueId> append_backward(Graph& graph, const std::vector<ValueId>& losses, const std::vector<ValueId>& wrt) {
  return Differentiator(graph, losses, wrt).run();
}

}  // namespace gancu
