// The step profile's cost model (engine/op_profile.h) on hand-counted nodes, and the CPU backend's profile of a real
// plan: every op that ran is listed with its calls per step and the counted work.
#include <gtest/gtest.h>

#include <string>

#include "engine/engine.h"
#include "engine/op_profile.h"

namespace gancu {
namespace {

const Node& only_node(const Graph& g, OpKind op) {
  const Node* found = nullptr;
  for (const Node& n : g.nodes())
    if (n.op == op) {
      EXPECT_EQ(found, nullptr) << op_name(op) << " appears twice";
      found = &n;
    }
  if (found == nullptr) throw std::runtime_error(std::string("no ") + op_name(op) + " node");
  return *found;
}

struct ConvNet {
  Graph graph;
  ValueId x, target, loss, weight;
};

// x [2,3,8,8] → conv 4x4 stride 2 pad 1, 5 channels, no bias → [2,5,4,4] → MSE; Adam on the weight.
ConvNet conv_net() {
  ConvNet n;
  Builder b(n.graph);
  n.x = b.input("x", Shape{2, 3, 8, 8});
  n.target = b.input("target", Shape{2, 5, 4, 4});
  const ValueId y = b.conv2d(n.x, "conv", 5, 4, 2, 1, false, {Init::kNormal, 0.0f, 0.1f});
  n.loss = b.mse(y, n.target);
  n.weight = n.graph.find("conv.weight");
  const std::vector<ValueId> grads = append_backward(n.graph, {n.loss}, {n.weight});
  b.adam_step("adam", {n.weight}, grads, AdamParams{});
  return n;
}

TEST(OpCost, CountsTheConvolutionsMultiplyAddsAndCompulsoryBytes) {
  const ConvNet n = conv_net();
  const double x = 2 * 3 * 8 * 8, w = 5 * 3 * 4 * 4, y = 2 * 5 * 4 * 4;
  const double macs = y * 3 * 4 * 4;  // every output element sums Cin·k·k products
  const OpCost forward = op_cost(n.graph, only_node(n.graph, OpKind::kConv2d));
  EXPECT_DOUBLE_EQ(forward.flops, 2 * macs);
  EXPECT_DOUBLE_EQ(forward.bytes, 4 * (x + w + y));  // absent bias: not counted
  const OpCost weight_grad = op_cost(n.graph, only_node(n.graph, OpKind::kConv2dBackwardWeight));
  EXPECT_DOUBLE_EQ(weight_grad.flops, 2 * macs);  // {x, dy} → dw: the same products
  EXPECT_DOUBLE_EQ(weight_grad.bytes, 4 * (x + y + w));
  const OpCost adam = op_cost(n.graph, only_node(n.graph, OpKind::kAdamStep));
  EXPECT_DOUBLE_EQ(adam.flops, 0);
  EXPECT_DOUBLE_EQ(adam.bytes, 4 * (4 * w + 3 * w));  // reads p, g, m, v; writes p, m, v
  const OpCost mse = op_cost(n.graph, only_node(n.graph, OpKind::kMse));
  EXPECT_DOUBLE_EQ(mse.bytes, 4 * (y + y + 1));
}

TEST(OpProfile, CpuBackendReportsEveryOpThatRan) {
  ConvNet n = conv_net();
  auto backend = make_cpu_backend();
  backend->enable_profiling();
  const ValueId x = n.x, target = n.target;
  ParameterStore plan_store(*backend, 7);
  Plan plan(std::move(n.graph), plan_store);
  std::vector<float> ones(size_t(plan.graph().shape(x).numel()), 1.0f);
  std::vector<float> half(size_t(plan.graph().shape(target).numel()), 0.5f);
  plan.write(x, ones.data());
  plan.write(target, half.data());
  for (int i = 0; i < 3; ++i) plan.run();
  EXPECT_GE(backend->last_step_ms(), 0.0);
  const std::string report = backend->profile_report();
  for (const char* op : {"conv2d", "conv2d_backward_weight", "mse", "mse_backward", "adam_step", "total"})
    EXPECT_NE(report.find(std::string("\n") + op + " "), std::string::npos) << op << " missing from\n" << report;
  EXPECT_NE(report.find("3 steps profiled"), std::string::npos) << report;
  // No gradient for the input was asked for: its pass never ran.
  EXPECT_EQ(report.find("conv2d_backward_input"), std::string::npos) << report;
}

}  // namespace
}  // namespace gancu
