// The whole DCGAN training step of the engine against the same step written out by hand, op by op, with the double-
// precision reference kernels: an independent check of the graph, autodiff, memory plan and optimiser wiring.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "engine/engine.h"
#include "recipes/gan_step.h"
#include "kernels/cpu/activations.h"
#include "kernels/cpu/adam.h"
#include "kernels/cpu/batch_norm2d.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv_transpose2d.h"
#include "kernels/cpu/losses.h"
#include "models/dcgan.h"
#include "tests/testing.h"

namespace gancu {
using recipes::build_gan_step;
using recipes::GanStep;
using recipes::GanStepConfig;
namespace {

using Vec = std::vector<double>;
using Params = std::map<std::string, Vec>;  // graph names: "G.main.0.weight", "D.main.3.running_var", ...

constexpr int kBatch = 4, kNz = 4, kWidth = 4, kSize = 16, kChannels = 1;

models::DcganConfig tiny_model() {
  models::DcganConfig m;
  m.image_size = kSize;
  m.channels = kChannels;
  m.latent_size = kNz;
  m.generator_width = m.discriminator_width = kWidth;
  return m;
}

// "z<k>": the latent batch of D update k (built by append: GCC 12 warns falsely on "z" + std::to_string(k)).
std::string latent_name(int k) { return std::string("z").append(std::to_string(k)); }

GanStep tiny_step(int d_steps = 1) {
  const models::DcganConfig m = tiny_model();
  GanStepConfig c;
  c.batch_size = kBatch;
  c.latent = Shape{kNz, 1, 1};
  c.image = Shape{kChannels, kSize, kSize};
  c.d_steps = d_steps;
  GanStep s = build_gan_step(c, [m](Builder& b, ValueId z, ValueId) { return models::dcgan_generator(b, z, m); },
                             [m](Builder& b, ValueId x, ValueId) { return models::dcgan_discriminator(b, x, m); });
  for (int k = 0; k < d_steps; ++k)  // so the test can read the latent batches the step drew
    s.graph.value(s.graph.find(latent_name(k))).keep = true;
  return s;
}

Vec to_double(const Tensor& t) { return Vec(t.data(), t.data() + t.numel()); }
std::vector<float> to_vector(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.numel()); }

// ---- the hand-written step -------------------------------------------------------------------------------------
struct BatchNormCache {
  Vec x, mean, invstd;
};

struct Layer {  // one convolution (transposed or not) with its input, for backward
  Vec x;
};

struct Generator {
  Params& p;
  Layer c0, c3, c6;
  BatchNormCache b1, b4;
  Vec pre_relu1, pre_relu4, out;  // batch-norm outputs (relu inputs) and the tanh output

  static ConvTranspose2dParams shape(int in_c, int out_c, int in_hw, int stride, int pad) {
    ConvTranspose2dParams q;
    q.batch = kBatch;
    q.in_channels = in_c;
    q.out_channels = out_c;
    q.in_h = q.in_w = in_hw;
    q.kernel = 4;
    q.stride = stride;
    q.pad = pad;
    return q;
  }
  Vec convt(Layer& l, const Vec& x, const std::string& name, const ConvTranspose2dParams& q) {
    l.x = x;
    Vec y(size_t(q.y_size()));
    ref::conv_transpose2d_forward<double>(q, x.data(), p[name].data(), nullptr, y.data());
    return y;
  }
  Vec bn(BatchNormCache& c, const Vec& x, const std::string& name, int channels, int spatial) {
    BatchNorm2dParams q{kBatch, channels, spatial};
    c.x = x;
    c.mean.resize(size_t(channels));
    c.invstd.resize(size_t(channels));
    Vec y(x.size());
    ref::batch_norm2d_forward_train<double>(q, x.data(), p[name + ".weight"].data(), p[name + ".bias"].data(),
                                            p[name + ".running_mean"].data(), p[name + ".running_var"].data(),
                                            y.data(), c.mean.data(), c.invstd.data());
    return y;
  }
  Vec forward(const Vec& z) {
    Vec h = convt(c0, z, "G.main.0.weight", shape(kNz, 2 * kWidth, 1, 1, 0));  // 4x4
    pre_relu1 = bn(b1, h, "G.main.1", 2 * kWidth, 16);
    Vec r(pre_relu1.size());
    ref::relu_forward<double>(int64_t(r.size()), pre_relu1.data(), r.data());
    h = convt(c3, r, "G.main.3.weight", shape(2 * kWidth, kWidth, 4, 2, 1));  // 8x8
    pre_relu4 = bn(b4, h, "G.main.4", kWidth, 64);
    r.assign(pre_relu4.size(), 0);
    ref::relu_forward<double>(int64_t(r.size()), pre_relu4.data(), r.data());
    h = convt(c6, r, "G.main.6.weight", shape(kWidth, kChannels, 8, 2, 1));  // 16x16
    out.assign(h.size(), 0);
    ref::tanh_forward<double>(int64_t(h.size()), h.data(), out.data());
    return out;
  }
  // Gradients of all G parameters given dL/d(output).
  Params backward(const Vec& dout) {
    Params g;
    Vec d(dout.size());
    ref::tanh_backward<double>(int64_t(d.size()), out.data(), dout.data(), d.data());
    auto convt_back = [&](Layer& l, const Vec& dy, const std::string& name, const ConvTranspose2dParams& q, bool input) {
      g[name].assign(size_t(q.w_size()), 0);
      ref::conv_transpose2d_backward_weight<double>(q, l.x.data(), dy.data(), g[name].data());
      Vec dx(size_t(q.x_size()));
      if (input) ref::conv_transpose2d_backward_input<double>(q, dy.data(), p[name].data(), dx.data());
      return dx;
    };
    auto bn_back = [&](BatchNormCache& c, const Vec& dy, const std::string& name, int channels, int spatial) {
      BatchNorm2dParams q{kBatch, channels, spatial};
      Vec dx(dy.size());
      g[name + ".weight"].assign(size_t(channels), 0);
      g[name + ".bias"].assign(size_t(channels), 0);
      ref::batch_norm2d_backward<double>(q, dy.data(), c.x.data(), p[name + ".weight"].data(), c.mean.data(),
                                         c.invstd.data(), dx.data(), g[name + ".weight"].data(), g[name + ".bias"].data());
      return dx;
    };
    Vec dr = convt_back(c6, d, "G.main.6.weight", shape(kWidth, kChannels, 8, 2, 1), true);
    Vec dh(dr.size());
    ref::relu_backward<double>(int64_t(dr.size()), pre_relu4.data(), dr.data(), dh.data());
    dh = bn_back(b4, dh, "G.main.4", kWidth, 64);
    dr = convt_back(c3, dh, "G.main.3.weight", shape(2 * kWidth, kWidth, 4, 2, 1), true);
    dh.assign(dr.size(), 0);
    ref::relu_backward<double>(int64_t(dr.size()), pre_relu1.data(), dr.data(), dh.data());
    dh = bn_back(b1, dh, "G.main.1", 2 * kWidth, 16);
    convt_back(c0, dh, "G.main.0.weight", shape(kNz, 2 * kWidth, 1, 1, 0), false);
    return g;
  }
};

struct Discriminator {
  Params& p;
  Vec x0, a1, x2, b3_x, b3_mean, b3_invstd, pre_lrelu4, a4;

  static Conv2dParams shape(int in_c, int out_c, int in_hw, int stride, int pad) {
    Conv2dParams q;
    q.batch = kBatch;
    q.in_channels = in_c;
    q.out_channels = out_c;
    q.in_h = q.in_w = in_hw;
    q.kernel = 4;
    q.stride = stride;
    q.pad = pad;
    return q;
  }
  Vec forward(const Vec& x) {
    x0 = x;
    Conv2dParams q0 = shape(kChannels, kWidth, 16, 2, 1), q2 = shape(kWidth, 2 * kWidth, 8, 2, 1),
                 q5 = shape(2 * kWidth, 1, 4, 1, 0);
    x2.assign(size_t(q0.y_size()), 0);
    ref::conv2d_forward<double>(q0, x.data(), p["D.main.0.weight"].data(), nullptr, x2.data());
    a1 = x2;
    ref::leaky_relu_forward<double>(int64_t(a1.size()), 0.2, x2.data(), a1.data());
    b3_x.assign(size_t(q2.y_size()), 0);
    ref::conv2d_forward<double>(q2, a1.data(), p["D.main.2.weight"].data(), nullptr, b3_x.data());
    BatchNorm2dParams bq{kBatch, 2 * kWidth, 16};
    pre_lrelu4.assign(b3_x.size(), 0);
    b3_mean.assign(size_t(2 * kWidth), 0);
    b3_invstd.assign(size_t(2 * kWidth), 0);
    ref::batch_norm2d_forward_train<double>(bq, b3_x.data(), p["D.main.3.weight"].data(), p["D.main.3.bias"].data(),
                                            p["D.main.3.running_mean"].data(), p["D.main.3.running_var"].data(),
                                            pre_lrelu4.data(), b3_mean.data(), b3_invstd.data());
    a4.assign(pre_lrelu4.size(), 0);
    ref::leaky_relu_forward<double>(int64_t(a4.size()), 0.2, pre_lrelu4.data(), a4.data());
    Vec logits(size_t(q5.y_size()));
    ref::conv2d_forward<double>(q5, a4.data(), p["D.main.5.weight"].data(), nullptr, logits.data());
    return logits;
  }
  // Accumulates parameter gradients into g (if given) and returns dL/dx.
  Vec backward(const Vec& dlogits, Params* g) {
    Conv2dParams q0 = shape(kChannels, kWidth, 16, 2, 1), q2 = shape(kWidth, 2 * kWidth, 8, 2, 1),
                 q5 = shape(2 * kWidth, 1, 4, 1, 0);
    auto accumulate = [&](const std::string& name, const Vec& v) {
      Vec& dst = (*g)[name];
      if (dst.empty()) dst.assign(v.size(), 0);
      for (size_t i = 0; i < v.size(); ++i) dst[i] += v[i];
    };
    Vec w(size_t(q5.w_size())), da4(a4.size());
    if (g) {
      ref::conv2d_backward_weight<double>(q5, a4.data(), dlogits.data(), w.data());
      accumulate("D.main.5.weight", w);
    }
    ref::conv2d_backward_input<double>(q5, dlogits.data(), p["D.main.5.weight"].data(), da4.data());
    Vec dpre(da4.size()), dx3(da4.size()), dgamma(size_t(2 * kWidth)), dbeta(size_t(2 * kWidth));
    ref::leaky_relu_backward<double>(int64_t(da4.size()), 0.2, pre_lrelu4.data(), da4.data(), dpre.data());
    ref::batch_norm2d_backward<double>(BatchNorm2dParams{kBatch, 2 * kWidth, 16}, dpre.data(), b3_x.data(),
                                       p["D.main.3.weight"].data(), b3_mean.data(), b3_invstd.data(), dx3.data(),
                                       dgamma.data(), dbeta.data());
    if (g) {
      accumulate("D.main.3.weight", dgamma);
      accumulate("D.main.3.bias", dbeta);
      w.assign(size_t(q2.w_size()), 0);
      ref::conv2d_backward_weight<double>(q2, a1.data(), dx3.data(), w.data());
      accumulate("D.main.2.weight", w);
    }
    Vec da1(a1.size()), dx2(a1.size());
    ref::conv2d_backward_input<double>(q2, dx3.data(), p["D.main.2.weight"].data(), da1.data());
    ref::leaky_relu_backward<double>(int64_t(da1.size()), 0.2, x2.data(), da1.data(), dx2.data());
    if (g) {
      w.assign(size_t(q0.w_size()), 0);
      ref::conv2d_backward_weight<double>(q0, x0.data(), dx2.data(), w.data());
      accumulate("D.main.0.weight", w);
    }
    Vec dx(x0.size());
    ref::conv2d_backward_input<double>(q0, dx2.data(), p["D.main.0.weight"].data(), dx.data());
    return dx;
  }
};

Vec bce_grad(const Vec& logits, double target, double* loss) {
  Vec t(logits.size(), target), d(logits.size());
  *loss = ref::bce_with_logits_forward<double>(int64_t(logits.size()), logits.data(), t.data());
  ref::bce_with_logits_backward<double>(int64_t(logits.size()), logits.data(), t.data(), 1.0, d.data());
  return d;
}

// Adam update number t of the optimiser whose moments are m, v (created as zeros by its first update).
void adam(Params& p, Params& grads, Params& m, Params& v, const std::string& prefix, const AdamParams& a, int64_t t) {
  for (auto& [name, g] : grads) {
    ASSERT_EQ(name.rfind(prefix, 0), 0u) << name;
    Vec& mm = m[name];
    Vec& vv = v[name];
    if (mm.empty()) mm.assign(g.size(), 0);
    if (vv.empty()) vv.assign(g.size(), 0);
    ref::adam_step<double>(int64_t(g.size()), a, t, p[name].data(), g.data(), mm.data(), vv.data());
  }
}

struct HandWrittenStep {
  double loss_real = 0, loss_fake = 0, loss_g = 0;  // of the last D update and of the G update
  Params m, v;                                      // Adam moments, by parameter name
};

// The first training step by hand, as PyTorch's loop with k = reals.size() D updates: D update j draws G(zs[j]),
// runs D on reals[j] and on that fake batch, and steps D's Adam (update j + 1 of the same optimiser: its moments
// and step count carry over); then G's update through the updated D on the last fake batch.
HandWrittenStep hand_written_step(Params& p, const std::vector<Vec>& reals, const std::vector<Vec>& zs) {
  HandWrittenStep out;
  Generator gen{p, {}, {}, {}, {}, {}, {}, {}, {}};
  Discriminator dis{p, {}, {}, {}, {}, {}, {}, {}, {}};
  AdamParams a;  // lr 2e-4, betas (0.5, 0.999): the step's defaults
  Vec fake;
  for (size_t k = 0; k < reals.size(); ++k) {
    fake = gen.forward(zs[k]);
    Params d_grads;
    const Vec real_logits = dis.forward(reals[k]);
    dis.backward(bce_grad(real_logits, 1.0, &out.loss_real), &d_grads);
    const Vec fake_logits = dis.forward(fake);
    dis.backward(bce_grad(fake_logits, 0.0, &out.loss_fake), &d_grads);
    adam(p, d_grads, out.m, out.v, "D.", a, int64_t(k) + 1);
  }
  const Vec g_logits = dis.forward(fake);  // updated D, one more batch-norm update of D's running statistics
  const Vec dfake = dis.backward(bce_grad(g_logits, 1.0, &out.loss_g), nullptr);
  Params g_grads = gen.backward(dfake);
  adam(p, g_grads, out.m, out.v, "G.", a, 1);
  return out;
}

// Runs the first step of a tiny DCGAN with d_steps D updates on the reference backend and the same step by hand.
// Tolerances: the engine runs in float32 on the same reference kernels, so losses agree to ~1e-6 relative. Adam's
// update is lr·m̂/(sqrt(v̂)+eps), insensitive to the gradients' magnitude, so parameters, buffers and moments agree
// to ≤ 1e-5 relative L2 after one or two updates.
void expect_engine_step_equals_hand_written(int d_steps) {
  GanStep layout = tiny_step(d_steps);
  const std::vector<ValueId> reals = layout.real_batches;
  std::vector<ValueId> z_ids;
  for (int k = 0; k < d_steps; ++k) z_ids.push_back(layout.graph.find(latent_name(k)));
  auto backend = make_reference_backend();
  ParameterStore plan_store(*backend, 123);
  Plan plan(std::move(layout.graph), plan_store);

  Params p;
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer})
    for (ValueId id : plan.values_of_kind(kind)) p[plan.graph().value(id).name] = to_double(plan.read(id));
  ASSERT_EQ(p.size(), 3u + 2u * 4u + 3u + 4u);  // G: 3 conv + 2 BN·(γ,β,μ,σ²); D: 3 conv + 1 BN·4

  std::vector<Vec> real_batches, zs;
  for (int k = 0; k < d_steps; ++k) {
    auto real = testing::random_vector<float>(kBatch * kChannels * kSize * kSize, 5 + uint64_t(k), 0.5);
    plan.write(reals[size_t(k)], real.data());
    real_batches.emplace_back(real.begin(), real.end());
  }
  plan.run();
  for (ValueId z : z_ids) zs.push_back(to_double(plan.read(z)));
  const HandWrittenStep want = hand_written_step(p, real_batches, zs);

  EXPECT_NEAR(plan.read(layout.loss_d_real)[0], want.loss_real, 1e-5 * std::abs(want.loss_real));
  EXPECT_NEAR(plan.read(layout.loss_d_fake)[0], want.loss_fake, 1e-5 * std::abs(want.loss_fake));
  EXPECT_NEAR(plan.read(layout.loss_g)[0], want.loss_g, 1e-5 * std::abs(want.loss_g));
  for (auto& [name, expected] : p) {
    const Tensor got = plan.read(plan.find(name));
    EXPECT_LE(testing::rel_l2_error(got.data(), expected.data(), got.numel()), 1e-5) << name;
  }
  ASSERT_EQ(want.m.size(), 3u + 2u * 2u + 3u + 2u);  // every parameter of G and D has its moments
  for (const auto* moments : {&want.m, &want.v})
    for (auto& [name, expected] : *moments) {
      const std::string state = "optim." + name.substr(0, 1) + "." + name + (moments == &want.m ? ".exp_avg" : ".exp_avg_sq");
      const Tensor got = plan.read(plan.find(state));
      EXPECT_LE(testing::rel_l2_error(got.data(), expected.data(), got.numel()), 1e-5) << state;
    }
  EXPECT_EQ(plan.counters()[size_t(plan_store.counter(recipes::kOptimiserG))], 1);
  EXPECT_EQ(plan.counters()[size_t(plan_store.counter(recipes::kOptimiserD))], d_steps);  // one Adam step per D update, as PyTorch counts them
}

TEST(GanStep, EngineStepEqualsTheHandWrittenReferenceStep) { expect_engine_step_equals_hand_written(1); }

// Two D updates: the second runs D with the weights the first one wrote, and continues the first one's Adam moments
// with step count 2 in its bias corrections (torch.optim.Adam called twice).
TEST(GanStep, TwoDiscriminatorUpdatesEqualTheHandWrittenReferenceStep) { expect_engine_step_equals_hand_written(2); }

// Two updates of one optimiser continue one set of moments and one step count: the second update is Adam's step 2
// from the first one's state, bit for bit as the reference kernel applied twice by hand.
TEST(GanStep, AdamUpdatesOfOneOptimiserShareTheirState) {
  Graph graph;
  Builder b(graph);
  const ValueId w = b.parameter("w", Shape{7}, {Init::kNormal, 0.0f, 1.0f});
  const ValueId g1 = b.input("g1", Shape{7}), g2 = b.input("g2", Shape{7});
  AdamParams a;
  a.lr = 0.1;  // large enough that each update moves w by far more than its rounding
  b.adam_step("opt", {w}, {g1}, a);
  b.adam_step("opt", {w}, {g2}, a);
  ASSERT_EQ(graph.nodes().size(), 2u);
  EXPECT_EQ(graph.nodes()[0].attrs.counter, graph.nodes()[1].attrs.counter);  // one optimiser, one step counter
  EXPECT_EQ(graph.optimisers(), std::vector<std::string>{"opt"});
  const std::vector<ValueId>& first = graph.nodes()[0].inputs;
  const std::vector<ValueId>& second = graph.nodes()[1].inputs;
  ASSERT_EQ(first.size(), 4u);
  ASSERT_EQ(second.size(), 4u);
  EXPECT_EQ(first[2], second[2]);  // exp_avg
  EXPECT_EQ(first[3], second[3]);  // exp_avg_sq
  int state = 0;
  for (const Value& v : graph.values()) state += v.kind == ValueKind::kOptState;
  EXPECT_EQ(state, 2);
  EXPECT_EQ(graph.find("optim.opt.w.exp_avg"), first[2]);

  auto backend = make_reference_backend();
  ParameterStore plan_store(*backend, 5);
  Plan plan(std::move(graph), plan_store);
  std::vector<float> p = to_vector(plan.read(w)), m(7, 0.0f), v(7, 0.0f);
  const auto grad1 = testing::random_vector<float>(7, 11), grad2 = testing::random_vector<float>(7, 12);
  plan.write(g1, grad1.data());
  plan.write(g2, grad2.data());
  plan.run();
  ref::adam_step<float>(7, a, 1, p.data(), grad1.data(), m.data(), v.data());
  ref::adam_step<float>(7, a, 2, p.data(), grad2.data(), m.data(), v.data());
  EXPECT_EQ(plan.counters()[0], 2);
  for (const auto& [id, want] : {std::pair{w, &p}, std::pair{plan.find("optim.opt.w.exp_avg"), &m},
                                 std::pair{plan.find("optim.opt.w.exp_avg_sq"), &v}}) {
    const Tensor got = plan.read(id);
    EXPECT_EQ(std::memcmp(got.data(), want->data(), want->size() * sizeof(float)), 0) << plan.graph().value(id).name;
  }
}

// The graph of a step with two D updates: persistent names are unique (checkpoints key tensors by name), both D
// updates name the same moments, and the second D update's forward pass runs after the first update.
TEST(GanStep, DiscriminatorUpdatesShareTheirAdamState) {
  const GanStep s = tiny_step(2);
  std::set<std::string> names;
  int state = 0;
  for (const Value& v : s.graph.values()) {
    if (v.kind == ValueKind::kTemporary) continue;
    EXPECT_TRUE(names.insert(v.name).second) << "two persistent values named " << v.name;
    state += v.kind == ValueKind::kOptState;
  }
  EXPECT_EQ(state, int(2 * (s.d_params.size() + s.g_params.size())));

  std::vector<size_t> d_updates;
  size_t first_read_of_second_batch = s.graph.nodes().size();
  for (size_t i = 0; i < s.graph.nodes().size(); ++i) {
    const Node& n = s.graph.nodes()[i];
    if (n.op == OpKind::kAdamStep && n.name == "optim.D") d_updates.push_back(i);
    for (ValueId in : n.inputs)
      if (in == s.real_batches[1]) first_read_of_second_batch = std::min(first_read_of_second_batch, i);
  }
  ASSERT_EQ(d_updates.size(), 2u);
  const Node& a = s.graph.nodes()[d_updates[0]];
  const Node& b = s.graph.nodes()[d_updates[1]];
  ASSERT_EQ(a.inputs.size(), 4 * s.d_params.size());
  ASSERT_EQ(b.inputs.size(), a.inputs.size());
  for (size_t i = 0; i < a.inputs.size(); i += 4) {
    EXPECT_EQ(a.inputs[i], b.inputs[i]);          // the parameter
    EXPECT_NE(a.inputs[i + 1], b.inputs[i + 1]);  // each update its own gradient
    EXPECT_EQ(a.inputs[i + 2], b.inputs[i + 2]);  // exp_avg
    EXPECT_EQ(a.inputs[i + 3], b.inputs[i + 3]);  // exp_avg_sq
  }
  EXPECT_EQ(a.attrs.counter, 1);
  EXPECT_EQ(b.attrs.counter, 1);
  EXPECT_LT(d_updates[0], first_read_of_second_batch);
  EXPECT_LT(first_read_of_second_batch, d_updates[1]);
}

// The CUDA backend runs the step with batch norm and activation fused (engine/fusion.h). With two D updates every
// pair still fuses (no Adam step falls between a batch norm and its backward: each D update's passes lie between
// two updates), the memory plan stays valid, and on the CPU the fused step follows the unfused one (tolerances as
// EngineFusion.FusedStepMatchesTheUnfusedStepOnTheCpu: the masks come from recomputed pre-activations).
TEST(GanStep, TwoDiscriminatorUpdatesFuseAndPlanAsOneStep) {
  GanStep plain = tiny_step(2), fused = tiny_step(2);
  int batch_norms = 0;
  for (const Node& n : fused.graph.nodes()) batch_norms += n.op == OpKind::kBatchNorm2dTrain;
  EXPECT_EQ(batch_norms, 2 * 2 + 1 * 5);  // G's two per D update; D's one per pass (real, fake twice, then G's pass)
  EXPECT_EQ(fuse_batch_norm_activations(fused.graph), batch_norms);
  EXPECT_NO_THROW(validate_memory_plan(fused.graph, plan_memory(fused.graph)));
  auto backend = make_cpu_backend();
  ParameterStore a_store(*backend, 3);
  Plan a(std::move(plain.graph), a_store);
  ParameterStore b_store(*backend, 3);
  Plan b(std::move(fused.graph), b_store);
  for (size_t k = 0; k < plain.real_batches.size(); ++k) {
    const auto batch = testing::random_vector<float>(kBatch * kChannels * kSize * kSize, 40 + k, 0.5);
    a.write(plain.real_batches[k], batch.data());
    b.write(fused.real_batches[k], batch.data());
  }
  a.run();
  b.run();
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer, ValueKind::kOptState})
    for (ValueId id : a.values_of_kind(kind)) {
      const Tensor x = a.read(id), y = b.read(b.find(a.graph().value(id).name));
      EXPECT_LE(testing::rel_l2_error(x.data(), y.data(), x.numel()), kind == ValueKind::kOptState ? 1e-4 : 1e-5)
          << a.graph().value(id).name;
    }
  EXPECT_EQ(a.counters(), b.counters());
  EXPECT_EQ(b.counters()[size_t(b_store.counter(recipes::kOptimiserD))], 2);
}

// The CPU backend (OpenBLAS convolutions) follows the reference backend over several steps.
TEST(GanStep, CpuBackendTracksReferenceBackend) {
  auto cpu = make_cpu_backend();
  auto reference = make_reference_backend();
  GanStep a = tiny_step(), b = tiny_step();
  const ValueId real = a.real_batches[0];
  ParameterStore fast_store(*cpu, 9);
  Plan fast(std::move(a.graph), fast_store);
  ParameterStore slow_store(*reference, 9);
  Plan slow(std::move(b.graph), slow_store);
  for (int step = 0; step < 3; ++step) {
    auto batch = testing::random_vector<float>(kBatch * kChannels * kSize * kSize, 100 + step, 0.5);
    fast.write(real, batch.data());
    slow.write(real, batch.data());
    fast.run();
    slow.run();
  }
  // Tolerance: relative L2 ≤ 1e-4 after three steps (float32 GEMM vs double-accumulated loops, through Adam).
  for (ValueId id : fast.values_of_kind(ValueKind::kParameter)) {
    const Tensor x = fast.read(id), y = slow.read(id);
    EXPECT_LE(testing::rel_l2_error(x.data(), y.data(), x.numel()), 1e-4) << fast.graph().value(id).name;
  }
}

}  // namespace
}  // namespace gancu
