// SRGAN (issue 12): the SRResNet generator and the SRGAN discriminator (models/srgan.h) against their PyTorch twins
// (tools/pytorch_srgan.py), batch norm fused with PReLU (engine/fusion.h) against the unfused graph and finite
// differences, and one SRResNet training step on the CPU backend against the reference kernels.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/npy.h"
#include "kernels/cpu/batch_norm2d.h"
#include "tests/srgan_step.h"
#include "tests/temp_dir.h"

namespace gancu {
namespace {

namespace fs = std::filesystem;
using models::SrganDiscriminatorConfig;
using models::SrresnetConfig;
using testing::close_rel_l2;
using testing::error_of;

int64_t parameter_count(const Graph& g) {
  int64_t n = 0;
  for (const Value& v : g.values()) n += v.kind == ValueKind::kParameter ? v.numel() : 0;
  return n;
}

int count_nodes(const Graph& g, OpKind op) {
  int n = 0;
  for (const Node& node : g.nodes()) n += node.op == op;
  return n;
}

std::vector<float> host(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.numel()); }

// ---- the networks -------------------------------------------------------------------------------------------------

// The paper's networks at their defaults: G 4x from 24x24 with 16 blocks, D on 96x96 crops (6x6x512 before the dense
// layer). The counts are PyTorch's sum(p.numel() for p in net.parameters()) for tools/pytorch_srgan.py's modules
// (checked again by the twin tests below, which build the default modules in PyTorch).
TEST(SrganModels, DefaultNetworksHaveThePapersShapesAndParameterCounts) {
  Graph g;
  Builder b(g);
  const ValueId hr = models::srresnet(b, b.input("lr", Shape{2, 3, 24, 24}), SrresnetConfig{});
  EXPECT_EQ(g.shape(hr), (Shape{2, 3, 96, 96}));
  EXPECT_EQ(parameter_count(g), 1548547);
  EXPECT_EQ(count_nodes(g, OpKind::kBatchNorm2dTrain), 2 * 16 + 1);
  EXPECT_EQ(count_nodes(g, OpKind::kPixelShuffle), 2);

  Graph d;
  Builder db(d);
  const ValueId logits = models::srgan_discriminator(db, db.input("hr", Shape{2, 3, 96, 96}), SrganDiscriminatorConfig{});
  EXPECT_EQ(d.shape(logits), (Shape{2, 1}));
  EXPECT_EQ(d.shape(d.find("classifier.0.weight")), (Shape{1024, 512 * 6 * 6}));
  EXPECT_EQ(d.shape(d.find("features.21.weight")), (Shape{512}));  // the last batch norm
  EXPECT_EQ(parameter_count(d), 23563649);
}

TEST(SrganModels, UpscaleTwoHasOneUpsamplingBlock) {
  Graph g;
  Builder b(g);
  SrresnetConfig c;
  c.upscale = 2;
  c.residual_blocks = 1;
  EXPECT_EQ(g.shape(models::srresnet(b, b.input("lr", Shape{1, 3, 10, 12}), c)), (Shape{1, 3, 20, 24}));
  EXPECT_EQ(count_nodes(g, OpKind::kPixelShuffle), 1);
  EXPECT_EQ(g.find("upsample.1.0.weight"), kNoValue);
}

TEST(SrganModels, WrongInputsAndConfigurationsFailAtBuildTimeSayingWhy) {
  Graph g;
  Builder b(g);
  const std::string d_msg = error_of([&] {
    models::srgan_discriminator(b, b.input("hr", Shape{2, 3, 64, 64}), SrganDiscriminatorConfig{});
  });
  EXPECT_NE(d_msg.find("features.0"), std::string::npos) << d_msg;
  EXPECT_NE(d_msg.find("[2, 3, 64, 64]"), std::string::npos) << d_msg;
  EXPECT_NE(d_msg.find("[N, 3, 96, 96]"), std::string::npos) << d_msg;
  SrganDiscriminatorConfig odd;
  odd.image_size = 100;
  EXPECT_NE(error_of([&] { models::validate(odd); }).find("multiple of 16"), std::string::npos);
  SrresnetConfig three;
  three.upscale = 3;
  EXPECT_NE(error_of([&] { models::validate(three); }).find("upscale"), std::string::npos);
  const std::string g_msg = error_of([&] { models::srresnet(b, b.input("gray", Shape{1, 1, 8, 8}), SrresnetConfig{}); });
  EXPECT_NE(g_msg.find("[1, 1, 8, 8]"), std::string::npos) << g_msg;
}

// ---- the PyTorch twins ----------------------------------------------------------------------------------------------

bool have_torch() { return std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0; }

void save(const fs::path& path, const Tensor& t) {
  fs::create_directories(path.parent_path());
  write_npy(path.string(), t);
}
Tensor tensor_of(const std::vector<float>& v, const Shape& shape) {
  Tensor t(shape);
  std::copy(v.begin(), v.end(), t.data());
  return t;
}

struct TwinCase {
  std::string net;           // "srresnet" or "discriminator"
  std::string config_json, default_config_json;
  int64_t default_parameter_count;
  Shape input;
  std::function<ValueId(Builder&, ValueId)> build;
  bool bce;                  // D: BCE with logits against targets in [0, 1]; G: pixel MSE
};

// gancu's training-mode forward, loss and backward (CPU backend) and the eval-mode forward after it, with the
// initial state, written as tools/pytorch_srgan.py --check reads them; the twin repeats all of it in float64 and
// compares to 1e-5 relative L2 (fp32 against fp64 accumulation).
void check_against_pytorch_twin(const TwinCase& t) {
  if (!have_torch()) GTEST_SKIP() << "/usr/bin/python3 has no torch (Debian's python3-torch): the twin not checked";
  const fs::path dir = testing::fresh_temp_dir("srgan_twin_" + t.net);
  Graph train_graph, eval_graph;
  Builder b(train_graph), eb(eval_graph);
  const ValueId x = b.input("input", t.input);
  const ValueId y = t.build(b, x);
  b.keep(y);
  const ValueId target = b.input("target", train_graph.shape(y));
  const ValueId loss = t.bce ? b.bce_with_logits(y, target) : b.mse(y, target);
  std::vector<ValueId> wrt;
  for (const Value& v : train_graph.values())
    if (v.kind == ValueKind::kParameter) wrt.push_back(v.id);
  wrt.push_back(x);
  const std::vector<ValueId> grads = append_backward(train_graph, {loss}, wrt);
  for (ValueId g : grads) train_graph.value(train_graph.storage_root(g)).keep = true;
  eb.set_training(false);
  const ValueId eval_x = eb.input("input", t.input);
  const ValueId eval_y = t.build(eb, eval_x);
  eb.keep(eval_y);

  auto backend = make_cpu_backend();
  ParameterStore store(*backend, 5);
  Plan train(std::move(train_graph), store);
  Plan eval(std::move(eval_graph), store, StepAdvance::kKeep);
  testing::randomize_persistent_values(train, 100);
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer})
    for (ValueId id : train.values_of_kind(kind))
      save(dir / "state" / (train.graph().value(id).name + ".npy"), train.read(id));

  const Shape y_shape = train.graph().shape(y);
  const std::vector<float> input = testing::random_vector<float>(t.input.numel(), 7, 0.5);
  std::vector<float> targets = testing::random_vector<float>(y_shape.numel(), 8, 0.5);
  if (t.bce)
    for (float& v : targets) v = 0.5f + 0.4f * std::tanh(v);  // labels in (0.1, 0.9)
  train.write(x, input.data());
  train.write(target, targets.data());
  train.run();
  eval.write(eval_x, input.data());
  eval.run();
  save(dir / "input.npy", tensor_of(input, t.input));
  save(dir / "target.npy", tensor_of(targets, y_shape));
  save(dir / "train_output.npy", train.read(y));
  save(dir / "loss.npy", tensor_of(host(train.read(loss)), Shape{1}));
  save(dir / "eval_output.npy", eval.read(eval_y));
  for (size_t k = 0; k < wrt.size(); ++k) {
    const Tensor g = train.read(train.graph().storage_root(grads[k]));
    save(wrt[k] == x ? dir / "grad_input.npy" : dir / "grad" / (train.graph().value(wrt[k]).name + ".npy"), g);
  }
  for (ValueId id : train.values_of_kind(ValueKind::kBuffer))
    save(dir / "running" / (train.graph().value(id).name + ".npy"), train.read(id));
  std::ofstream(dir / "manifest.json") << "{\"net\": \"" << t.net << "\", \"config\": " << t.config_json
                                       << ", \"default_config\": " << t.default_config_json
                                       << ", \"default_parameter_count\": " << t.default_parameter_count
                                       << ", \"tolerance\": 1e-5}\n";
  const std::string command = "/usr/bin/python3 " GANCU_SOURCE_DIR "/tools/pytorch_srgan.py --check " + dir.string();
  const int status = std::system(command.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command << " failed (its report is above)";
  fs::remove_all(dir);
}

// Two residual blocks at the paper's width, 24x24 LR → 96x96 HR, batch 2.
TEST(SrganPytorchTwin, SrresnetForwardBackwardAndEvalMatch) {
  SrresnetConfig c;
  c.residual_blocks = 2;
  check_against_pytorch_twin(TwinCase{
      "srresnet",
      R"({"residual_blocks": 2, "channels": 64, "upscale": 4, "image_channels": 3})",
      R"({"residual_blocks": 16, "channels": 64, "upscale": 4, "image_channels": 3})", 1548547, Shape{2, 3, 24, 24},
      [c](Builder& b, ValueId x) { return models::srresnet(b, x, c); }, false});
}

// The same without batch norm (--no-batch-norm): every convolution has a bias, the Sequentials lose their BN entries.
TEST(SrganPytorchTwin, SrresnetWithoutBatchNormMatches) {
  SrresnetConfig c;
  c.residual_blocks = 2;
  c.batch_norm = false;
  check_against_pytorch_twin(TwinCase{
      "srresnet",
      R"({"residual_blocks": 2, "channels": 64, "upscale": 4, "image_channels": 3, "batch_norm": false})",
      R"({"residual_blocks": 16, "channels": 64, "upscale": 4, "image_channels": 3, "batch_norm": false})", 1546435,
      Shape{2, 3, 24, 24}, [c](Builder& b, ValueId x) { return models::srresnet(b, x, c); }, false});
}

// A narrow discriminator (width 16, dense 64) on 48x48 crops: 3x3x128 before the dense layer; batch 4.
TEST(SrganPytorchTwin, DiscriminatorForwardBackwardAndEvalMatch) {
  SrganDiscriminatorConfig c;
  c.image_size = 48;
  c.width = 16;
  c.dense_features = 64;
  check_against_pytorch_twin(TwinCase{
      "discriminator", R"({"image_size": 48, "image_channels": 3, "width": 16, "dense_features": 64})",
      R"({"image_size": 96, "image_channels": 3, "width": 64, "dense_features": 1024})", 23563649,
      Shape{4, 3, 48, 48}, [c](Builder& b, ValueId x) { return models::srgan_discriminator(b, x, c); }, true});
}

// ---- batch norm fused with PReLU ------------------------------------------------------------------------------------

SrresnetConfig small_srresnet() {
  SrresnetConfig c;
  c.residual_blocks = 2;
  c.channels = 16;
  return c;
}

// Each residual block's first batch norm feeds a PReLU: those pairs fuse, forward and backward, the PReLU slope
// joining both nodes; the block's second batch norm (into the skip's add), the head's and the upsampling's PReLUs
// (after a convolution, a pixel shuffle) stay as they are.
TEST(BatchNormPreluFusion, FoldsTheResidualBlocksPairsAndTheSlopeGradient) {
  testing::SrresnetStep step = testing::srresnet_step(small_srresnet(), 2, 6, true);
  ASSERT_EQ(count_nodes(step.graph, OpKind::kPRelu), 2 + 2 + 1);
  EXPECT_EQ(fuse_batch_norm_activations(step.graph), 2);
  EXPECT_EQ(count_nodes(step.graph, OpKind::kPRelu), 3);
  EXPECT_EQ(count_nodes(step.graph, OpKind::kPReluBackward), 3);
  int fused_forward = 0, fused_backward = 0;
  for (const Node& n : step.graph.nodes()) {
    if (n.attrs.fused_activation != FusedActivation::kPRelu) continue;
    const ValueId slope = n.inputs.back();
    EXPECT_EQ(step.graph.value(slope).kind, ValueKind::kParameter) << n.name;
    if (n.op == OpKind::kBatchNorm2dTrain) {
      ++fused_forward;
      EXPECT_EQ(n.inputs.size(), 6u) << n.name;
    } else {
      ASSERT_EQ(n.op, OpKind::kBatchNorm2dBackward) << n.name;
      ++fused_backward;
      ASSERT_EQ(n.inputs.size(), 7u) << n.name;
      ASSERT_EQ(n.outputs.size(), 4u) << n.name;
      // The slope's gradient is what the Adam step reads for that slope.
      const auto it = std::find(step.params.begin(), step.params.end(), slope);
      ASSERT_NE(it, step.params.end());
      EXPECT_EQ(n.outputs[3], step.grads[size_t(it - step.params.begin())]) << n.name;
    }
  }
  EXPECT_EQ(fused_forward, 2);
  EXPECT_EQ(fused_backward, 2);
  EXPECT_NO_THROW(validate_memory_plan(step.graph, plan_memory(step.graph)));
  EXPECT_LT(plan_memory(step.graph).arena_bytes,
            plan_memory(testing::srresnet_step(small_srresnet(), 2, 6, true).graph).arena_bytes);
}

// An Adam step on the slope between the batch norm and its backward would change the factor the fused backward reads:
// such a pair stays unfused (here: a second network's update in between, sharing the slope by name).
TEST(BatchNormPreluFusion, LeavesAPairAloneWhenTheSlopeIsUpdatedInBetween) {
  Graph g;
  Builder b(g);
  const ValueId x = b.input("x", Shape{2, 4, 3, 3});
  ValueId y = b.prelu(b.batch_norm2d(x, "bn"), "act");
  const ValueId loss = b.mse(y, b.input("t", Shape{2, 4, 3, 3}));
  const ValueId slope = g.find("act.weight");
  // The slope's update is placed after the forward, before the backward is derived.
  const ValueId loss2 = b.mse(b.prelu(x, "act"), b.input("t2", Shape{2, 4, 3, 3}));
  const std::vector<ValueId> g2 = append_backward(g, {loss2}, {slope});
  b.adam_step("other", {slope}, g2, AdamParams{});
  append_backward(g, {loss}, {x, slope});
  EXPECT_EQ(fuse_batch_norm_activations(g), 0);
}

// The whole fused graph against the unfused one on the CPU backend, from the same randomised state: the forward
// values and running statistics are bit-identical (the same kernels, the activation in place), the gradients agree to
// 1e-6 relative L2 (the fused backward masks with the pre-activation recomputed in double from the saved float
// statistics, and sums the slope's gradient from it; the unfused one uses the stored float output).
TEST(BatchNormPreluFusion, FusedGraphEqualsTheUnfusedGraphOnTheCpu) {
  testing::SrresnetStep plain = testing::srresnet_step(small_srresnet(), 2, 6, false);
  testing::SrresnetStep fused = testing::srresnet_step(small_srresnet(), 2, 6, false);
  ASSERT_EQ(fuse_batch_norm_activations(fused.graph), 2);
  auto backend = make_cpu_backend();
  ParameterStore a_store(*backend, 3), b_store(*backend, 3);
  Plan a(std::move(plain.graph), a_store), b(std::move(fused.graph), b_store);
  const auto lr = testing::random_vector<float>(a.graph().shape(plain.lr).numel(), 21, 0.5);
  const auto hr = testing::random_vector<float>(a.graph().shape(plain.hr).numel(), 22, 0.5);
  for (Plan* p : {&a, &b}) {
    testing::randomize_persistent_values(*p, 300);
    p->write(p->graph().find("lr"), lr.data());
    p->write(p->graph().find("hr"), hr.data());
    p->run();
  }
  EXPECT_EQ(host(a.read(plain.output)), host(b.read(fused.output)));
  EXPECT_EQ(host(a.read(plain.loss)), host(b.read(fused.loss)));
  for (ValueId id : a.values_of_kind(ValueKind::kBuffer))
    EXPECT_EQ(host(a.read(id)), host(b.read(b.find(a.graph().value(id).name)))) << a.graph().value(id).name;
  for (size_t k = 0; k < plain.params.size(); ++k) {
    const Tensor want = a.read(a.graph().storage_root(plain.grads[k]));
    const Tensor got = b.read(b.graph().storage_root(fused.grads[k]));
    EXPECT_TRUE(close_rel_l2(host(got), host(want), 1e-6, want.shape().dims()))
        << "gradient of " << a.graph().value(plain.params[k]).name;
  }
}

// ref::batch_norm2d_activation_backward followed by ref::batch_norm2d_backward, in double, is the gradient of
// L = Σ w·act(batch_norm_train(x)) for x, gamma, beta and the PReLU slope: against central differences (h = 1e-6)
// to 1e-7 relative L2. Gamma of both signs and beta away from 0 put the kink in different places per channel.
TEST(BatchNormPreluFusion, FusedBackwardMatchesFiniteDifferencesInDouble) {
  BatchNorm2dParams p;
  p.batch = 3;
  p.channels = 4;
  p.spatial = 5;
  const int64_t n = p.size();
  std::vector<double> x = testing::random_vector<double>(n, 1), w = testing::random_vector<double>(n, 2);
  std::vector<double> gamma = {0.9, -1.2, 1.4, 0.6}, beta = {0.3, -0.4, 0.8, -0.2}, slope = {0.25, 0.1, -0.3, 0.6};
  for (const char* activation : {"prelu", "leaky_relu", "relu"}) {
    const bool prelu = std::string(activation) == "prelu";
    const double negative_slope = std::string(activation) == "leaky_relu" ? 0.2 : 0.0;
    std::vector<double> running_mean(4, 0.0), running_var(4, 1.0), mean(4), invstd(4);
    std::vector<double> y(static_cast<size_t>(n));
    auto forward = [&] {
      ref::batch_norm2d_forward_train(p, x.data(), gamma.data(), beta.data(), running_mean.data(), running_var.data(),
                                      y.data(), mean.data(), invstd.data());
      double loss = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int c = int(i / p.spatial % p.channels);
        const double a = prelu ? slope[size_t(c)] : negative_slope;
        loss += w[size_t(i)] * (y[size_t(i)] > 0 ? y[size_t(i)] : a * y[size_t(i)]);
      }
      return loss;
    };
    forward();
    std::vector<double> dy(static_cast<size_t>(n)), dx(static_cast<size_t>(n)), dgamma(4), dbeta(4), dslope(4, -7.0);
    ref::batch_norm2d_activation_backward(p, negative_slope, prelu ? slope.data() : nullptr, w.data(), x.data(),
                                          gamma.data(), beta.data(), mean.data(), invstd.data(), dy.data(),
                                          prelu ? dslope.data() : nullptr);
    ref::batch_norm2d_backward(p, dy.data(), x.data(), gamma.data(), mean.data(), invstd.data(), dx.data(),
                               dgamma.data(), dbeta.data());
    EXPECT_TRUE(close_rel_l2(dx, testing::numerical_gradient(x, forward), 1e-7)) << activation << " dx";
    EXPECT_TRUE(close_rel_l2(dgamma, testing::numerical_gradient(gamma, forward), 1e-7)) << activation << " dgamma";
    EXPECT_TRUE(close_rel_l2(dbeta, testing::numerical_gradient(beta, forward), 1e-7)) << activation << " dbeta";
    if (prelu) {
      EXPECT_TRUE(close_rel_l2(dslope, testing::numerical_gradient(slope, forward), 1e-7)) << "dslope";
    } else {
      EXPECT_EQ(dslope, std::vector<double>(4, -7.0)) << activation << ": no slope gradient asked for, none written";
    }
  }
}

// ---- one training step against the reference kernels --------------------------------------------------------------

// One SRResNet pixel-MSE step (forward, backward, Adam) on the CPU backend (OpenBLAS convolutions, float sums), and
// again with batch norm and PReLU fused, against the reference backend (double-accumulating loops everywhere).
// Tolerances as GanStep.CpuBackendTracksReferenceBackend: the loss, parameters and running statistics to 1e-5
// relative L2 after one step, the Adam moments (the gradients) to 1e-4.
TEST(SrresnetStep, CpuBackendMatchesTheReferenceKernels) {
  const SrresnetConfig config = small_srresnet();
  auto reference = make_reference_backend();
  auto cpu = make_cpu_backend();
  testing::SrresnetStep want_step = testing::srresnet_step(config, 2, 8, true);
  ParameterStore want_store(*reference, 11);
  Plan want(std::move(want_step.graph), want_store);
  const auto lr = testing::random_vector<float>(want.graph().shape(want_step.lr).numel(), 31, 0.5);
  const auto hr = testing::random_vector<float>(want.graph().shape(want_step.hr).numel(), 32, 0.5);
  auto run = [&](Plan& p) {
    testing::randomize_persistent_values(p, 500);
    p.write(p.graph().find("lr"), lr.data());
    p.write(p.graph().find("hr"), hr.data());
    p.run();
  };
  run(want);
  for (bool fuse : {false, true}) {
    testing::SrresnetStep step = testing::srresnet_step(config, 2, 8, true);
    if (fuse) {
      ASSERT_EQ(fuse_batch_norm_activations(step.graph), config.residual_blocks);
    }
    ParameterStore store(*cpu, 11);
    Plan got(std::move(step.graph), store);
    run(got);
    const char* what = fuse ? "fused, " : "";
    EXPECT_TRUE(close_rel_l2(host(got.read(step.loss)), host(want.read(want_step.loss)), 1e-5)) << what << "loss";
    int compared = 0;
    for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer, ValueKind::kOptState})
      for (ValueId id : want.values_of_kind(kind)) {
        const std::string& name = want.graph().value(id).name;
        const Tensor w = want.read(id), g = got.read(got.find(name));
        EXPECT_TRUE(close_rel_l2(host(g), host(w), kind == ValueKind::kOptState ? 1e-4 : 1e-5, w.shape().dims()))
            << what << name;
        ++compared;
      }
    EXPECT_EQ(compared, int(want.values_of_kind(ValueKind::kParameter).size() * 3 +
                            want.values_of_kind(ValueKind::kBuffer).size()));
  }
}

}  // namespace
}  // namespace gancu
