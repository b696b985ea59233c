// The conditional and MLP GANs' ops: concat along dim 1 and its channel-slice gradient, one_hot label maps,
// BatchNorm1d (a view through batch_norm2d) and uniform initialisation. Reference kernels against hand-worked values
// and finite differences in double; the engine's graph on the CPU backend against the reference backend; which
// gradients autodiff makes; BatchNorm1d against a double-precision transcription of PyTorch's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "kernels/cpu/elementwise.h"
#include "tests/plan_gradients.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using testing::close_rel_l2;
using testing::random_vector;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

using testing::error_of;

// ---- reference kernels --------------------------------------------------------------------------------------------

// a [2, 1, 2] and b [2, 2, 2] → [2, 3, 2]: each example's channels of a, then of b.
TEST(ConcatReference, JoinsTheChannelsOfEachExample) {
  const std::vector<double> a = {1, 2, 3, 4}, b = {5, 6, 7, 8, 9, 10, 11, 12};
  const double* xs[] = {a.data(), b.data()};
  const int channels[] = {1, 2};
  std::vector<double> y(12, kNaN);
  ref::concat_channels<double>(2, 2, 2, xs, channels, y.data());
  EXPECT_EQ(y, (std::vector<double>{1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12}));
  std::vector<double> b_again(8, kNaN);
  ref::channel_slice<double>(2, 3, 1, 2, 2, y.data(), b_again.data());
  EXPECT_EQ(b_again, b);
  EXPECT_THROW(ref::channel_slice<double>(2, 3, 2, 2, 2, y.data(), b_again.data()), std::invalid_argument);
}

// L(x0, x1, x2) = Σ w·y + ½ Σ y² with y = concat(x0, x1, x2), so dL/dy = w + y and each input's gradient must be its
// channel slice of that. Central differences in double: L is quadratic, so they are exact up to rounding (1e-8).
TEST(ConcatReference, SliceOfTheOutputGradientMatchesFiniteDifferences) {
  const int batch = 3, inner = 4;
  const std::vector<int> channels = {2, 1, 3};
  const int total = 6;
  std::vector<std::vector<double>> xs;
  for (size_t i = 0; i < channels.size(); ++i)
    xs.push_back(random_vector<double>(int64_t(batch) * channels[i] * inner, 20 + i));
  const std::vector<double> w = random_vector<double>(int64_t(batch) * total * inner, 30);
  auto forward = [&] {
    std::vector<const double*> pointers;
    for (const auto& x : xs) pointers.push_back(x.data());
    std::vector<double> y(w.size(), kNaN);
    ref::concat_channels<double>(batch, inner, int(xs.size()), pointers.data(), channels.data(), y.data());
    return y;
  };
  const std::vector<double> y = forward();
  std::vector<double> dy(y.size());
  for (size_t k = 0; k < y.size(); ++k) dy[k] = w[k] + y[k];
  int begin = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    std::vector<double> analytic(xs[i].size(), kNaN);
    ref::channel_slice<double>(batch, total, begin, channels[i], inner, dy.data(), analytic.data());
    const std::vector<double> numeric = testing::numerical_gradient(xs[i], [&] {
      double loss = 0;
      const std::vector<double> out = forward();
      for (size_t k = 0; k < out.size(); ++k) loss += w[k] * out[k] + 0.5 * out[k] * out[k];
      return loss;
    });
    EXPECT_TRUE(close_rel_l2(analytic, numeric, 1e-8, {batch, channels[i], inner})) << "input " << i;
    begin += channels[i];
  }
}

TEST(OneHotReference, WritesOneInTheLabelsChannel) {
  const std::vector<double> labels = {2, 0, 1};
  std::vector<double> y(3 * 3 * 2, kNaN);
  ref::one_hot<double>(3, 3, 2, labels.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{0, 0, 0, 0, 1, 1,  1, 1, 0, 0, 0, 0,  0, 0, 1, 1, 0, 0}));
}

// Labels come from the host; one that is not a class index is a data bug, refused before anything is written.
TEST(OneHotReference, RefusesLabelsThatAreNotClassIndices) {
  for (float bad : {-1.0f, 3.0f, 1.5f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    const std::vector<float> labels = {1, bad};
    std::vector<float> y(2 * 3, std::numeric_limits<float>::quiet_NaN());
    const std::string message = error_of([&] { ref::one_hot<float>(2, 3, 1, labels.data(), y.data()); });
    EXPECT_NE(message.find("one_hot: label"), std::string::npos) << bad << ": " << message;
    EXPECT_NE(message.find("example 1"), std::string::npos) << message;
    for (float v : y) EXPECT_TRUE(std::isnan(v)) << "written before the labels were checked";
  }
}

// ---- the builder ---------------------------------------------------------------------------------------------------

TEST(ChannelOpShapes, MismatchesFailAtBuildTime) {
  Graph g;
  Builder b(g);
  const ValueId image = b.input("image", Shape{4, 1, 8, 8}), small = b.input("small", Shape{4, 2, 4, 4});
  const ValueId flat = b.input("flat", Shape{4, 16}), labels = b.input("labels", Shape{4});
  EXPECT_EQ(g.shape(b.concat({image, b.input("maps", Shape{4, 10, 8, 8})})), (Shape{4, 11, 8, 8}));
  EXPECT_EQ(g.shape(b.concat({flat, b.input("z", Shape{4, 3}), flat})), (Shape{4, 35}));
  std::string msg = error_of([&] { b.concat({image, small}); });
  EXPECT_NE(msg.find("concat"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4, 2, 4, 4]"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { b.concat({image, flat}); }).find("[4, 16]"), std::string::npos);
  EXPECT_NE(error_of([&] { b.concat({image}); }).find("two or more"), std::string::npos);
  EXPECT_NE(error_of([&] { b.concat({labels, labels}); }).find("[4]"), std::string::npos);

  EXPECT_EQ(g.shape(b.one_hot(labels, 10, 1, 1)), (Shape{4, 10, 1, 1}));
  EXPECT_EQ(g.shape(b.one_hot(labels, 10, 28, 28)), (Shape{4, 10, 28, 28}));
  EXPECT_NE(error_of([&] { b.one_hot(flat, 10, 1, 1); }).find("[4, 16]"), std::string::npos);
  EXPECT_NE(error_of([&] { b.one_hot(labels, 0, 1, 1); }).find("one_hot"), std::string::npos);

  EXPECT_EQ(g.shape(b.batch_norm1d(flat, "bn")), (Shape{4, 16}));
  EXPECT_EQ(g.shape(b.batch_norm1d(b.input("seq", Shape{4, 16, 5}), "bn")), (Shape{4, 16, 5}));
  msg = error_of([&] { b.batch_norm1d(image, "bn4d"); });
  EXPECT_NE(msg.find("bn4d"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4, 1, 8, 8]"), std::string::npos) << msg;
  EXPECT_EQ(g.shape(b.linear(flat, "fc", 7, true, Init::uniform(-0.25f, 0.25f))), (Shape{4, 7}));
}

// ---- the engine: a conditional network ----------------------------------------------------------------------------

// Label maps joined to an image and to a learned feature map; a one-hot vector joined to features; a linear layer,
// BatchNorm1d and LeakyReLU, as the conditional and MLP discriminators do.
struct ConditionalNet {
  Graph graph;
  ValueId x, labels, target, loss;
  std::vector<ValueId> wrt, grads;
};

constexpr int kBatch = 4, kClasses = 3;

ConditionalNet build_conditional_net(bool x_gradient) {
  ConditionalNet n;
  Builder b(n.graph);
  const Init w{Init::kNormal, 0.0f, 0.3f};
  n.x = b.input("x", Shape{kBatch, 2, 4, 4});
  n.labels = b.input("labels", Shape{kBatch});
  n.target = b.input("target", Shape{kBatch, 1});
  const ValueId maps = b.one_hot(n.labels, kClasses, 4, 4);            // [4, 3, 4, 4]
  const ValueId feature = b.conv2d(n.x, "pre", 2, 3, 1, 1, false, w);  // [4, 2, 4, 4]
  ValueId h = b.concat({n.x, maps, feature});                          // [4, 7, 4, 4]
  h = b.flatten(b.leaky_relu(b.conv2d(h, "conv", 4, 4, 2, 1, true, w), 0.2f));  // [4, 16]
  h = b.concat({b.flatten(b.one_hot(n.labels, kClasses, 1, 1)), h});  // [4, 19]
  // No bias before the batch norm: its true gradient is 0, which finite differences only resolve to rounding noise.
  h = b.linear(h, "fc1", 8, false, Init::uniform(-0.3f, 0.3f));
  h = b.leaky_relu(b.batch_norm1d(h, "bn1", {Init::kNormal, 1.0f, 0.2f}), 0.2f);
  n.loss = b.bce_with_logits(b.linear(h, "fc2", 1, true, w), n.target);
  for (const Value& v : n.graph.values())
    if (v.kind == ValueKind::kParameter) n.wrt.push_back(v.id);
  if (x_gradient) n.wrt.push_back(n.x);
  n.grads = append_backward(n.graph, {n.loss}, n.wrt);
  for (ValueId g : n.grads)
    if (g != kNoValue) n.graph.value(n.graph.storage_root(g)).keep = true;
  return n;
}

const std::vector<float> kLabels = {2, 0, 1, 2};
const std::vector<float> kTarget = {1, 0, 1, 0};

void write_inputs(Plan& plan, const ConditionalNet& layout) {
  const std::vector<float> x = random_vector<float>(kBatch * 2 * 4 * 4, 41);
  plan.write(layout.x, x.data());
  plan.write(layout.labels, kLabels.data());
  plan.write(layout.target, kTarget.data());
}

int count_nodes(const Graph& g, OpKind op) {
  int n = 0;
  for (const Node& node : g.nodes()) n += node.op == op;
  return n;
}

// A concat input gets a gradient only when it needs one: the learned feature map and the features do; the data
// batch (unless asked for) and the label maps never do.
TEST(ChannelOpAutodiff, SlicesOnlyTheGradientsThatAreNeeded) {
  const ConditionalNet without_x = build_conditional_net(false);
  EXPECT_EQ(count_nodes(without_x.graph, OpKind::kChannelSlice), 2) << without_x.graph.dump();
  const ConditionalNet with_x = build_conditional_net(true);
  EXPECT_EQ(count_nodes(with_x.graph, OpKind::kChannelSlice), 3) << with_x.graph.dump();
  EXPECT_NE(with_x.grads.back(), kNoValue);
  for (const Value& v : with_x.graph.values())
    EXPECT_EQ(v.name.find("grad/one_hot"), std::string::npos) << "a label map got a gradient: " << v.name;
}

// one_hot has no derivative: harmless while nothing upstream of it needs a gradient (above), a clear error otherwise.
TEST(ChannelOpAutodiff, AGradientThroughOneHotIsRefused) {
  Graph g;
  Builder b(g);
  const ValueId labels = b.input("labels", Shape{2});
  const ValueId h = b.linear(b.flatten(b.one_hot(labels, 3, 1, 1)), "fc", 1, true, {Init::kNormal, 0.0f, 0.1f});
  const ValueId loss = b.mse(h, b.input("target", Shape{2, 1}));
  const std::string msg = error_of([&] { append_backward(g, {loss}, {labels}); });
  EXPECT_NE(msg.find("one_hot"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no gradient"), std::string::npos) << msg;
}

// Gradients of every parameter and of x (the plan's float forward on the reference backend) against central finite
// differences of the loss. Tolerance 2e-2 relative L2, as the engine's other finite-difference test: the forward is
// float32 (h = 1e-3 balances its rounding against curvature and LeakyReLU kinks).
TEST(ChannelOpAutodiff, GradientsMatchFiniteDifferences) {
  ConditionalNet net = build_conditional_net(true);
  const ConditionalNet layout = net;
  auto backend = make_reference_backend();
  ParameterStore plan_store(*backend, 7);
  Plan plan(std::move(net.graph), plan_store);
  write_inputs(plan, layout);
  testing::expect_plan_gradients_match_finite_differences(plan, layout.wrt, layout.grads, [&] {
    plan.set_step(0);
    plan.run();
    return double(plan.read(layout.loss)[0]);
  });
}

// The CPU backend's rows (the same reference kernels for these ops, OpenBLAS for the linear and conv layers) against
// the reference backend: loss and every gradient to 1e-5 relative L2 (fp32 sums in another order).
TEST(ChannelOpBackends, CpuBackendMatchesTheReference) {
  ConditionalNet a = build_conditional_net(true), b = build_conditional_net(true);
  const ConditionalNet layout = a;
  auto reference = make_reference_backend();
  auto cpu = make_cpu_backend();
  ParameterStore want_store(*reference, 7), got_store(*cpu, 7);
  Plan want(std::move(a.graph), want_store), got(std::move(b.graph), got_store);
  write_inputs(want, layout);
  write_inputs(got, layout);
  want.run();
  got.run();
  const Tensor loss_want = want.read(layout.loss), loss_got = got.read(layout.loss);
  EXPECT_NEAR(loss_got[0], loss_want[0], 1e-5 * std::abs(loss_want[0]));
  for (size_t k = 0; k < layout.grads.size(); ++k) {
    const Tensor gw = want.read(want.graph().storage_root(layout.grads[k]));
    const Tensor gg = got.read(got.graph().storage_root(layout.grads[k]));
    const std::vector<float> w(gw.data(), gw.data() + gw.numel()), g(gg.data(), gg.data() + gg.numel());
    EXPECT_TRUE(close_rel_l2(g, w, 1e-5, gw.shape().dims())) << want.graph().value(layout.wrt[k]).name;
  }
}

// ---- BatchNorm1d against PyTorch's definition ----------------------------------------------------------------------

// torch.nn.BatchNorm1d in double, for x [batch, channels, length]: training normalises with the batch's biased
// variance over (batch, length) and moves the running statistics by momentum towards the batch mean and the
// unbiased variance; inference normalises with the running statistics.
struct BatchNorm1dDouble {
  std::vector<double> running_mean, running_var;
  double eps, momentum;
  std::vector<double> forward(const std::vector<float>& x, const std::vector<float>& gamma,
                              const std::vector<float>& beta, int batch, int channels, int length, bool training) {
    std::vector<double> y(x.size());
    const int count = batch * length;
    for (int c = 0; c < channels; ++c) {
      auto at = [&](int n, int l) { return (size_t(n) * channels + c) * length + l; };
      double mean = running_mean[c], var = running_var[c];
      if (training) {
        double sum = 0, sq = 0;
        for (int n = 0; n < batch; ++n)
          for (int l = 0; l < length; ++l) sum += x[at(n, l)];
        mean = sum / count;
        for (int n = 0; n < batch; ++n)
          for (int l = 0; l < length; ++l) sq += (x[at(n, l)] - mean) * (x[at(n, l)] - mean);
        var = sq / count;
        running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean;
        running_var[c] = (1 - momentum) * running_var[c] + momentum * sq / (count - 1);
      }
      for (int n = 0; n < batch; ++n)
        for (int l = 0; l < length; ++l)
          y[at(n, l)] = (x[at(n, l)] - mean) / std::sqrt(var + eps) * gamma[c] + beta[c];
    }
    return y;
  }
};

std::vector<float> read_vector(Plan& plan, ValueId id) {
  const Tensor t = plan.read(id);
  return std::vector<float>(t.data(), t.data() + t.numel());
}

// Three training steps on fresh batches, each followed in the same step by the layer in inference mode (it shares the
// parameters and running statistics by name, and runs after the update): outputs and running statistics against the
// double transcription. Tolerance 1e-5 relative L2 (float kernels with double sums against double).
void check_batch_norm1d(const Shape& shape) {
  const int batch = int(shape[0]), channels = int(shape[1]), length = shape.rank() == 3 ? int(shape[2]) : 1;
  const double eps = 1e-3, momentum = 0.3;
  Graph g;
  Builder b(g);
  const ValueId x = b.input("x", shape);
  const ValueId y_train = b.batch_norm1d(x, "bn", {Init::kNormal, 1.0f, 0.3f}, eps, momentum);
  b.set_training(false);
  const ValueId y_eval = b.batch_norm1d(x, "bn", {Init::kNormal, 1.0f, 0.3f}, eps, momentum);
  b.keep(y_train);
  b.keep(y_eval);
  for (const char* name : {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"})
    EXPECT_NE(g.find(name), kNoValue) << name;
  auto backend = make_reference_backend();
  ParameterStore plan_store(*backend, 3);
  Plan plan(std::move(g), plan_store);
  const std::vector<float> beta = random_vector<float>(channels, 5, 0.5);
  plan.write(plan.find("bn.bias"), beta.data());
  const std::vector<float> gamma = read_vector(plan, plan.find("bn.weight"));
  BatchNorm1dDouble want{std::vector<double>(size_t(channels), 0.0), std::vector<double>(size_t(channels), 1.0), eps,
                         momentum};
  for (int step = 0; step < 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    std::vector<float> input = random_vector<float>(shape.numel(), 60 + step, 2.0);
    for (float& v : input) v += 1.5f;  // a mean away from 0, so the running mean moves
    plan.write(x, input.data());
    plan.run();
    EXPECT_TRUE(close_rel_l2(read_vector(plan, y_train),
                             want.forward(input, gamma, beta, batch, channels, length, true), 1e-5, shape.dims()))
        << "training";
    EXPECT_TRUE(close_rel_l2(read_vector(plan, plan.find("bn.running_mean")), want.running_mean, 1e-5));
    EXPECT_TRUE(close_rel_l2(read_vector(plan, plan.find("bn.running_var")), want.running_var, 1e-5));
    EXPECT_TRUE(close_rel_l2(read_vector(plan, y_eval),
                             want.forward(input, gamma, beta, batch, channels, length, false), 1e-5, shape.dims()))
        << "inference";
  }
}

TEST(BatchNorm1d, MatchesPyTorchOnFeatures) { check_batch_norm1d(Shape{6, 5}); }
TEST(BatchNorm1d, MatchesPyTorchOnSequences) { check_batch_norm1d(Shape{3, 4, 7}); }

// ---- uniform initialisation ----------------------------------------------------------------------------------------

// Init::uniform(low, high): every value in (low, high], spread over the range with the uniform's mean (4σ bound for
// 4,096 values: σ = 0.75/√12/√4096 ≈ 0.0034), the same for the same seed and name, different for another seed.
TEST(UniformInit, FillsTheRangeReproducibly) {
  auto make = [](uint64_t seed) {
    Graph g;
    Builder b(g);
    const ValueId p = b.parameter("w", Shape{4096}, Init::uniform(-0.5f, 0.25f));
    auto backend = make_reference_backend();
    ParameterStore plan_store(*backend, seed);
    Plan plan(std::move(g), plan_store);
    return read_vector(plan, p);
  };
  const std::vector<float> a = make(11), again = make(11), other = make(12);
  double sum = 0;
  float lowest = 1, highest = -1;
  for (float v : a) {
    EXPECT_GT(v, -0.5f);
    EXPECT_LE(v, 0.25f);
    sum += v;
    lowest = std::min(lowest, v);
    highest = std::max(highest, v);
  }
  EXPECT_NEAR(sum / double(a.size()), -0.125, 4 * 0.0034);
  EXPECT_LT(lowest, -0.49f);
  EXPECT_GT(highest, 0.24f);
  EXPECT_EQ(a, again);
  EXPECT_NE(a, other);
}

}  // namespace
}  // namespace gancu
