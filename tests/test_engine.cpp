// Engine tests: build-time shape errors, autodiff against finite differences, what autodiff leaves out, the memory
// planner and its validator.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "engine/engine.h"
#include "models/dcgan.h"
#include "tests/testing.h"

namespace gancu {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(EngineShapes, StridedConvFedTooSmallAMapNamesNodeAndShape) {
  Graph g;
  Builder b(g);
  b.set_prefix("D.");
  ValueId x = b.input("x", Shape{2, 8, 3, 3});
  const std::string msg = error_of([&] { b.conv2d(x, "main.5", 16, 4, 2, 0, false, {}); });
  EXPECT_NE(msg.find("D.main.5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2, 8, 3, 3]"), std::string::npos) << msg;
}

TEST(EngineShapes, MismatchesFailAtBuildTime) {
  Graph g;
  Builder b(g);
  ValueId a = b.input("a", Shape{2, 3, 4, 4});
  ValueId c = b.input("c", Shape{2, 3, 5, 5});
  EXPECT_NE(error_of([&] { b.add(a, c); }).find("[2, 3, 5, 5]"), std::string::npos);
  EXPECT_NE(error_of([&] { b.linear(a, "fc", 3, true, {}); }).find("fc"), std::string::npos);
  EXPECT_NE(error_of([&] { b.pixel_shuffle(a, 2); }).find("divisible"), std::string::npos);
  // A parameter declared twice with different shapes is an error, not a silent new tensor.
  b.conv2d(a, "conv", 4, 3, 1, 1, false, {});
  EXPECT_NE(error_of([&] { b.conv2d(c, "conv", 5, 3, 1, 1, false, {}); }).find("conv.weight"), std::string::npos);
}

TEST(EngineShapes, GanStepRejectsAGeneratorThatDoesNotMatchTheData) {
  models::DcganConfig model;
  model.image_size = 32;
  GanStepConfig c;
  c.batch_size = 4;
  c.image_size = 64;  // data at 64, generator at 32
  c.channels = 1;
  auto g = [&](Builder& b, ValueId z) { return models::dcgan_generator(b, z, model); };
  auto d = [&](Builder& b, ValueId x) { return models::dcgan_discriminator(b, x, model); };
  const std::string msg = error_of([&] { build_gan_step(c, g, d); });
  EXPECT_NE(msg.find("generator"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4, 1, 32, 32]"), std::string::npos) << msg;
}

// A small graph using every differentiable op, two loss roots, and a parameter used twice. Gradients from the
// engine (reference backend) against central finite differences of the plan's own forward pass.
struct SmallNet {
  Graph graph;
  ValueId x, target, loss_a, loss_b;
  std::vector<ValueId> wrt, grads;
};

SmallNet build_small_net() {
  SmallNet n;
  Builder b(n.graph);
  const Init w{Init::kNormal, 0.0f, 0.3f};
  n.x = b.input("x", Shape{2, 3, 5, 5});
  n.target = b.input("target", Shape{2, 4});
  ValueId h = b.conv2d(n.x, "conv", 4, 3, 2, 1, true, w);        // [2,4,3,3]
  h = b.batch_norm2d(h, "bn", {Init::kNormal, 1.0f, 0.1f});
  h = b.leaky_relu(h, 0.2f);
  ValueId up = b.conv_transpose2d(h, "convt", 8, 4, 2, 1, 1, true, w);  // [2,8,7,7]
  up = b.prelu(up, "prelu");
  up = b.conv2d(up, "down", 4, 3, 1, 0, false, w);                // [2,4,5,5]
  ValueId skip = b.conv2d(n.x, "skip", 4, 1, 1, 0, false, w);     // [2,4,5,5]
  ValueId sum = b.add(b.tanh(up), skip);
  ValueId shuffled = b.pixel_shuffle(b.conv2d(sum, "pre_shuffle", 4, 1, 1, 0, true, w), 2);  // [2,1,10,10]
  ValueId flat = b.flatten(b.relu(shuffled));
  ValueId logits = b.linear(flat, "fc", 4, true, {Init::kNormal, 0.0f, 0.1f});
  n.loss_a = b.mse(b.sigmoid(logits), n.target);
  n.loss_b = b.bce_with_logits(logits, n.target);
  for (const Value& v : n.graph.values())
    if (v.kind == ValueKind::kParameter) n.wrt.push_back(v.id);
  n.wrt.push_back(n.x);
  n.grads = append_backward(n.graph, {n.loss_a, n.loss_b}, n.wrt);
  for (ValueId g : n.grads)
    if (g != kNoValue) n.graph.value(n.graph.storage_root(g)).keep = true;
  return n;
}

TEST(EngineAutodiff, GradientsMatchFiniteDifferences) {
  SmallNet net = build_small_net();
  auto backend = make_reference_backend();
  const SmallNet layout = net;
  Plan plan(std::move(net.graph), *backend, 7);
  auto x = testing::random_vector<float>(2 * 3 * 5 * 5, 11);
  std::vector<float> target = {0.9f, 0.1f, 0.5f, 0.3f, 0.2f, 0.7f, 1.0f, 0.0f};
  plan.write(layout.x, x.data());
  plan.write(layout.target, target.data());
  // conv.bias feeds batch norm, so its true gradient is 0: the comparison then is absolute, against ~0.
  auto loss = [&] {
    plan.set_step(0);
    plan.run();
    return double(plan.read(layout.loss_a)[0]) + double(plan.read(layout.loss_b)[0]);
  };
  loss();
  std::vector<Tensor> analytic;
  for (ValueId g : layout.grads) {
    ASSERT_NE(g, kNoValue);
    analytic.push_back(plan.read(plan.graph().storage_root(g)));
  }
  // Running stats are updated by every run but do not affect the training-mode forward.
  // Tolerance: relative L2 ≤ 2e-2, because the forward runs in float32 (h = 1e-3 balances float rounding against curvature and kinks).
  const double h = 1e-3;
  for (size_t k = 0; k < layout.wrt.size(); ++k) {
    Tensor value = plan.read(layout.wrt[k]);
    std::vector<double> numeric(static_cast<size_t>(value.numel()));
    for (int64_t i = 0; i < value.numel(); ++i) {
      const float saved = value[i];
      value[i] = saved + float(h);
      plan.write(layout.wrt[k], value.data());
      const double plus = loss();
      value[i] = saved - float(h);
      plan.write(layout.wrt[k], value.data());
      const double minus = loss();
      value[i] = saved;
      plan.write(layout.wrt[k], value.data());
      numeric[size_t(i)] = (plus - minus) / (2 * h);
    }
    const double err = testing::rel_l2_error(analytic[k].data(), numeric.data(), value.numel());
    EXPECT_LE(err, 2e-2) << plan.graph().value(layout.wrt[k]).name;
  }
}

int count_nodes(const Graph& g, OpKind op) {
  int n = 0;
  for (const Node& node : g.nodes()) n += node.op == op;
  return n;
}

GanStep dcgan32_step(int batch, int width) {
  models::DcganConfig m;
  m.image_size = 32;
  m.channels = 1;
  m.generator_width = m.discriminator_width = width;
  GanStepConfig c;
  c.batch_size = batch;
  c.image_size = 32;
  c.channels = 1;
  return build_gan_step(c, [m](Builder& b, ValueId z) { return models::dcgan_generator(b, z, m); },
                        [m](Builder& b, ValueId x) { return models::dcgan_discriminator(b, x, m); });
}

TEST(EngineAutodiff, GeneratorUpdateComputesNoDiscriminatorWeightGradients) {
  GanStep step = dcgan32_step(8, 8);
  // D has 4 convolutions. Its update differentiates both passes (real, fake) for the weights: 8 weight gradients.
  // The generator update differentiates the third pass only for its input: no weight gradients there.
  EXPECT_EQ(count_nodes(step.graph, OpKind::kConv2dBackwardWeight), 8);
  // Input gradients: layers 2-4 in the real and fake passes (never into the images), and all 4 in the G pass.
  EXPECT_EQ(count_nodes(step.graph, OpKind::kConv2dBackwardInput), 3 + 3 + 4);
  // G has 4 transposed convolutions, differentiated once; its first layer needs no gradient for z.
  EXPECT_EQ(count_nodes(step.graph, OpKind::kConvTranspose2dBackwardWeight), 4);
  EXPECT_EQ(count_nodes(step.graph, OpKind::kConvTranspose2dBackwardInput), 3);
  EXPECT_EQ(count_nodes(step.graph, OpKind::kAdamStep), 2);
}

TEST(EngineMemory, PlanIsValidAndSharesMemory) {
  GanStep step = dcgan32_step(16, 16);
  MemoryPlan plan = plan_memory(step.graph);
  EXPECT_NO_THROW(validate_memory_plan(step.graph, plan));
  EXPECT_GT(plan.arena_bytes, 0);
  EXPECT_LT(plan.arena_bytes, plan.naive_bytes * 6 / 10) << "liveness should save at least 40% on a GAN step";
  // Brute-force re-check, independent of the validator: no byte of the arena is claimed by two live tensors.
  const int nodes = static_cast<int>(step.graph.nodes().size());
  for (int t = 0; t < nodes; ++t) {
    std::vector<std::pair<int64_t, int64_t>> live;
    for (const Value& v : step.graph.values())
      if (plan.offset[v.id] >= 0 && plan.first_use[v.id] <= t && t <= plan.last_use[v.id])
        live.emplace_back(plan.offset[v.id], plan.offset[v.id] + v.numel() * 4);
    std::sort(live.begin(), live.end());
    for (size_t i = 1; i < live.size(); ++i) ASSERT_LE(live[i - 1].second, live[i].first) << "node " << t;
  }
}

TEST(EngineMemory, ValidatorCatchesOverlap) {
  GanStep step = dcgan32_step(4, 8);
  MemoryPlan plan = plan_memory(step.graph);
  // Find two arena tensors alive at the same time and force them onto the same offset.
  for (const Node& n : step.graph.nodes()) {
    ValueId a = kNoValue, b = kNoValue;
    for (ValueId in : n.inputs)
      if (in != kNoValue && plan.offset[step.graph.storage_root(in)] >= 0) a = step.graph.storage_root(in);
    for (ValueId out : n.outputs)
      if (plan.offset[out] >= 0) b = out;
    if (a != kNoValue && b != kNoValue && a != b) {
      plan.offset[b] = plan.offset[a];
      break;
    }
  }
  EXPECT_THROW(validate_memory_plan(step.graph, plan), std::logic_error);
}

}  // namespace
}  // namespace gancu
