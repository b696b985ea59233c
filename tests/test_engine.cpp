// Engine tests: build-time shape errors, autodiff against finite differences, what autodiff leaves out, the memory
// planner and its validator.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "engine/engine.h"
#include "recipes/gan_step.h"
#include "models/dcgan.h"
#include "tests/plan_gradients.h"
#include "tests/testing.h"

namespace gancu {
using recipes::build_gan_step;
using recipes::GanStep;
using recipes::GanStepConfig;
namespace {

using testing::error_of;

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
  c.image = Shape{1, 64, 64};  // data at 64, generator at 32
  auto g = [&](Builder& b, ValueId z, ValueId) { return models::dcgan_generator(b, z, model); };
  auto d = [&](Builder& b, ValueId x, ValueId) { return models::dcgan_discriminator(b, x, model); };
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

void check_gradients_against_finite_differences(bool fuse) {
  SmallNet net = build_small_net();
  if (fuse) {
    ASSERT_EQ(fuse_batch_norm_activations(net.graph), 1);  // bn → leaky_relu, forward and backward
  }
  auto backend = make_reference_backend();
  const SmallNet layout = net;
  ParameterStore plan_store(*backend, 7);
  Plan plan(std::move(net.graph), plan_store);
  auto x = testing::random_vector<float>(2 * 3 * 5 * 5, 11);
  std::vector<float> target = {0.9f, 0.1f, 0.5f, 0.3f, 0.2f, 0.7f, 1.0f, 0.0f};
  plan.write(layout.x, x.data());
  plan.write(layout.target, target.data());
  // conv.bias feeds batch norm, so its true gradient is 0: the comparison then is absolute, against ~0.
  // Running stats are updated by every run but do not affect the training-mode forward.
  testing::expect_plan_gradients_match_finite_differences(plan, layout.wrt, layout.grads, [&] {
    plan.set_step(0);
    plan.run();
    return double(plan.read(layout.loss_a)[0]) + double(plan.read(layout.loss_b)[0]);
  });
}

TEST(EngineAutodiff, GradientsMatchFiniteDifferences) { check_gradients_against_finite_differences(false); }

// The same with the batch norm and its LeakyReLU fused into one node (engine/fusion.h), whose backward recomputes the
// pre-activation to mask the gradient.
TEST(EngineAutodiff, FusedBatchNormActivationGradientsMatchFiniteDifferences) {
  check_gradients_against_finite_differences(true);
}

// Finite differences in float cannot resolve the masks well, so the fused gradients are also compared with the
// unfused ones (checked above) exactly: with beta away from 0 and gamma of both signs, the pre-activation the fused
// backward masks with differs from x̂ in sign on many elements, so a backward that ignored beta or gamma would differ
// there. Tolerance 1e-6 relative L2: both paths compute the same double-accumulated values; only an element whose
// pre-activation rounds across zero could take the other branch.
TEST(EngineAutodiff, FusedBatchNormActivationGradientsEqualTheUnfusedOnes) {
  SmallNet plain = build_small_net(), fused = build_small_net();
  ASSERT_EQ(fuse_batch_norm_activations(fused.graph), 1);
  auto backend = make_reference_backend();
  const SmallNet a_layout = plain, b_layout = fused;
  ParameterStore a_store(*backend, 7), b_store(*backend, 7);
  Plan a(std::move(plain.graph), a_store), b(std::move(fused.graph), b_store);
  const auto x = testing::random_vector<float>(2 * 3 * 5 * 5, 11);
  const std::vector<float> target = {0.9f, 0.1f, 0.5f, 0.3f, 0.2f, 0.7f, 1.0f, 0.0f};
  const std::vector<float> gamma = {0.8f, -1.1f, 1.3f, -0.6f}, beta = {0.4f, -0.3f, 0.7f, -0.5f};
  for (Plan* p : {&a, &b}) {
    p->write(p->find("bn.weight"), gamma.data());
    p->write(p->find("bn.bias"), beta.data());
  }
  a.write(a_layout.x, x.data());
  b.write(b_layout.x, x.data());
  a.write(a_layout.target, target.data());
  b.write(b_layout.target, target.data());
  a.run();
  b.run();
  for (size_t k = 0; k < a_layout.grads.size(); ++k) {
    const Tensor ga = a.read(a.graph().storage_root(a_layout.grads[k]));
    const Tensor gb = b.read(b.graph().storage_root(b_layout.grads[k]));
    EXPECT_LE(testing::rel_l2_error(gb.data(), ga.data(), ga.numel()), 1e-6) << a.graph().value(a_layout.wrt[k]).name;
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
  c.image = Shape{1, 32, 32};
  return build_gan_step(c, [m](Builder& b, ValueId z, ValueId) { return models::dcgan_generator(b, z, m); },
                        [m](Builder& b, ValueId x, ValueId) { return models::dcgan_discriminator(b, x, m); });
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

// The DCGAN-32 step has 9 batch norms (3 in G; 2 in D, which runs three times: real, fake for D, fake for G), each
// followed by a ReLU (G) or LeakyReLU (D), and each with a backward. All 9 pairs fuse: no ReLU remains, only the 3
// LeakyReLUs of D's first layer (no batch norm there) and their gradients, and every batch-norm backward takes beta.
TEST(EngineFusion, FoldsEveryBatchNormActivationPairOfTheGanStep) {
  GanStep step = dcgan32_step(8, 8);
  const size_t nodes_before = step.graph.nodes().size();
  ASSERT_EQ(count_nodes(step.graph, OpKind::kBatchNorm2dTrain), 9);
  ASSERT_EQ(count_nodes(step.graph, OpKind::kLeakyRelu), 9);
  EXPECT_EQ(fuse_batch_norm_activations(step.graph), 9);
  EXPECT_EQ(step.graph.nodes().size(), nodes_before - 18);
  EXPECT_EQ(count_nodes(step.graph, OpKind::kRelu), 0);
  EXPECT_EQ(count_nodes(step.graph, OpKind::kReluBackward), 0);
  EXPECT_EQ(count_nodes(step.graph, OpKind::kLeakyRelu), 3);
  EXPECT_EQ(count_nodes(step.graph, OpKind::kLeakyReluBackward), 3);
  for (const Node& n : step.graph.nodes()) {
    if (n.op == OpKind::kBatchNorm2dTrain) {
      EXPECT_NE(n.attrs.fused_activation, FusedActivation::kNone) << n.name;
    }
    if (n.op == OpKind::kBatchNorm2dBackward) {
      EXPECT_NE(n.attrs.fused_activation, FusedActivation::kNone) << n.name;
      EXPECT_EQ(n.inputs.size(), 6u) << n.name;
    }
  }
  EXPECT_EQ(fuse_batch_norm_activations(step.graph), 0);  // nothing left to fuse
  MemoryPlan memory = plan_memory(step.graph);
  EXPECT_NO_THROW(validate_memory_plan(step.graph, memory));
  EXPECT_LT(memory.arena_bytes, plan_memory(dcgan32_step(8, 8).graph).arena_bytes);
}

// A fused step computes the same forward values as the unfused one (batch norm, then the activation in place) and
// masks the gradient with the recomputed pre-activation instead of the stored one; the two can differ only where the
// pre-activation rounds across zero. On the CPU backend, one whole training step: parameters within 1e-5 (relative
// L2), Adam moments (the gradients) within 1e-4.
TEST(EngineFusion, FusedStepMatchesTheUnfusedStepOnTheCpu) {
  GanStep plain = dcgan32_step(8, 16), fused = dcgan32_step(8, 16);
  ASSERT_EQ(fuse_batch_norm_activations(fused.graph), 9);
  auto backend = make_cpu_backend();
  ParameterStore a_store(*backend, 3);
  Plan a(std::move(plain.graph), a_store);
  ParameterStore b_store(*backend, 3);
  Plan b(std::move(fused.graph), b_store);
  for (size_t k = 0; k < plain.real_batches.size(); ++k) {
    const auto batch = testing::random_vector<float>(a.graph().shape(plain.real_batches[k]).numel(), 40 + k);
    a.write(plain.real_batches[k], batch.data());
    b.write(fused.real_batches[k], batch.data());
  }
  a.run();
  b.run();
  int compared = 0;
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer, ValueKind::kOptState})
    for (ValueId id : a.values_of_kind(kind)) {
      const Tensor x = a.read(id), y = b.read(b.find(a.graph().value(id).name));
      EXPECT_LE(testing::rel_l2_error(x.data(), y.data(), x.numel()), kind == ValueKind::kOptState ? 1e-4 : 1e-5)
          << a.graph().value(id).name;
      ++compared;
    }
  EXPECT_GT(compared, 30);
  EXPECT_EQ(a.read(plain.loss_d_fake)[0], b.read(fused.loss_d_fake)[0]);  // forward values are identical
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
