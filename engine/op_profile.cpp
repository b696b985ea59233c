#include "engine/op_profile.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "engine/kernel_params.h"

namespace gancu {

OpCost op_cost(const Graph& graph, const Node& node) {
  OpCost cost;
  double floats = 0;
  for (ValueId id : node.inputs)
    if (id != kNoValue) floats += double(graph.shape(id).numel());
  for (ValueId id : node.outputs) floats += double(graph.shape(id).numel());
  if (node.op == OpKind::kAdamStep) {  // inputs (p, g, m, v) per tensor; p, m and v are written back
    double written = 0;
    for (size_t i = 0; i < node.inputs.size(); ++i)
      if (i % 4 != 1) written += double(graph.shape(node.inputs[i]).numel());
    floats += written;
  }
  cost.bytes = floats * sizeof(float);
  switch (node.op) {
    case OpKind::kConv2d:
    case OpKind::kConv2dBackwardInput:
    case OpKind::kConv2dBackwardWeight: cost.flops = conv2d_params_of(graph, node).flops(); break;
    case OpKind::kConvTranspose2d:
    case OpKind::kConvTranspose2dBackwardInput:
    case OpKind::kConvTranspose2dBackwardWeight: cost.flops = conv_transpose2d_params_of(graph, node).flops(); break;
    case OpKind::kLinear: {
      const LinearParams p = linear_params(graph.shape(node.inputs[0]), graph.shape(node.outputs[0]));
      cost.flops = 2.0 * p.batch * p.in_features * p.out_features;
      break;
    }
    case OpKind::kLinearBackwardInput:     // {dy, w} → {dx}
    case OpKind::kLinearBackwardWeight: {  // {x, dy} → {dw}; either way input 0 leads with the batch
      const Shape& w = graph.shape(node.op == OpKind::kLinearBackwardInput ? node.inputs[1] : node.outputs[0]);
      cost.flops = 2.0 * double(graph.shape(node.inputs[0])[0]) * double(w.numel());
      break;
    }
    default: break;
  }
  return cost;
}

void OpProfile::add(const Graph& graph, const Node& node, double seconds) {
  Row& row = rows_[static_cast<size_t>(node.op)];
  const OpCost cost = op_cost(graph, node);
  row.seconds += seconds;
  row.flops += cost.flops;
  row.bytes += cost.bytes;
  row.calls += 1;
}

std::string OpProfile::report() const {
  const double steps = double(std::max<int64_t>(steps_, 1));
  Row total;
  std::vector<size_t> order;
  for (size_t i = 0; i < rows_.size(); ++i) {
    if (rows_[i].calls == 0) continue;
    order.push_back(i);
    total.seconds += rows_[i].seconds;
    total.flops += rows_[i].flops;
    total.bytes += rows_[i].bytes;
    total.calls += rows_[i].calls;
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rows_[a].seconds > rows_[b].seconds; });
  std::string out =
      "op                                ms/step   share  calls/step   GFLOP/step  GFLOP/s     MB/step     GB/s\n";
  char line[200];
  auto print = [&](const char* name, const Row& r) {
    const double share = total.seconds > 0 ? 100.0 * r.seconds / total.seconds : 0;
    const double gflops = r.seconds > 0 ? 1e-9 * r.flops / r.seconds : 0;
    const double gbs = r.seconds > 0 ? 1e-9 * r.bytes / r.seconds : 0;
    std::snprintf(line, sizeof line, "%-32s %8.3f  %5.1f%%  %10.1f  %11.3f  %7.0f  %10.2f  %7.1f\n", name,
                  1e3 * r.seconds / steps, share, double(r.calls) / steps, 1e-9 * r.flops / steps, gflops,
                  1e-6 * r.bytes / steps, gbs);
    out += line;
  };
  for (size_t i : order) print(op_name(static_cast<OpKind>(i)), rows_[i]);
  print("total", total);
  std::snprintf(line, sizeof line, "(%lld steps profiled; FLOPs are the convolutions' and linear layers' multiply-adds x2, "
                "bytes each input read once and each output written once)\n", static_cast<long long>(steps_));
  out += line;
  return out;
}

}  // namespace gancu
