// The super-resolution recipes (recipes/super_resolution.h): the srresnet and srgan steps train on the CPU backend,
// the srgan step starts G from an srresnet file and loads VGG19 as frozen weights, and G's receptive radius (which
// tiled upscaling relies on) is exact.
#include "recipes/super_resolution.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "tests/temp_dir.h"
#include "tests/testing.h"
#include "tools/io/safetensors.h"

namespace gancu::recipes {
namespace {

SuperResolutionRecipe small_recipe(bool adversarial) {
  SuperResolutionRecipe r(adversarial);
  r.residual_blocks = 1;
  r.crop = 32;
  return r;
}

// Runs `steps` steps of the recipe's training graph on random crops; returns the metrics of the last one.
std::map<std::string, double> train(const Recipe& recipe, ParameterStore& store, Plan& plan, const TrainingGraph& t,
                                    int steps) {
  std::map<std::string, double> last;
  for (int s = 0; s < steps; ++s) {
    std::vector<float> hr;
    for (const StepInput& in : t.inputs) {
      const Shape& shape = plan.graph().shape(in.value);
      std::vector<float> x = testing::random_vector<float>(shape.numel(), 100 + s * 7 + int(in.source), 0.4);
      for (float& v : x) v = std::tanh(v);
      plan.write(in.value, x.data());
    }
    plan.run();
  }
  (void)recipe;
  (void)store;
  for (const Metric& m : t.metrics) {
    double v = 0;
    for (ValueId id : m.values) v += plan.read(id)[0];
    last[m.name] = v;
  }
  return last;
}

TEST(SuperResolutionRecipe, SrresnetStepLowersThePixelLossOnOneBatch) {
  SuperResolutionRecipe r = small_recipe(false);
  r.lr = 1e-3;
  const DataShape data{3, 32, 32, 0};
  TrainingGraph t = r.training_step(data, 2);
  ASSERT_EQ(t.inputs.size(), 2u);
  EXPECT_EQ(t.inputs[0].source, InputSource::kHighRes);
  EXPECT_EQ(t.inputs[1].source, InputSource::kLowRes);
  EXPECT_EQ(t.graph.shape(t.inputs[1].value), (Shape{2, 3, 8, 8}));
  auto backend = make_cpu_backend();
  ParameterStore store(*backend, 3);
  const std::vector<StepInput> inputs = t.inputs;
  const std::vector<Metric> metrics = t.metrics;
  Plan plan(std::move(t.graph), store);
  // The same batch again and again: the pixel loss must fall.
  std::vector<std::vector<float>> batch;
  for (const StepInput& in : inputs) {
    std::vector<float> x = testing::random_vector<float>(plan.graph().shape(in.value).numel(), 11 + int(in.source), 0.4);
    for (float& v : x) v = std::tanh(v);
    batch.push_back(x);
  }
  double first = 0, last = 0;
  for (int s = 0; s < 12; ++s) {
    for (size_t i = 0; i < inputs.size(); ++i) plan.write(inputs[i].value, batch[i].data());
    plan.run();
    const double loss = plan.read(metrics.at(0).values.at(0))[0];
    ASSERT_TRUE(std::isfinite(loss));
    (s == 0 ? first : last) = loss;
  }
  EXPECT_EQ(metrics.at(0).name, "loss_pixel");
  EXPECT_LT(last, 0.8 * first) << "first " << first << ", last " << last;
}

class SuperResolutionFiles : public testing::TempDirTest {};

TEST_F(SuperResolutionFiles, SrganStepStartsFromTheSrresnetFileAndKeepsVggFrozen) {
  // Phase 1: a few srresnet steps, G exported as its state dict would be (names without "G.").
  SuperResolutionRecipe phase1 = small_recipe(false);
  auto backend = make_cpu_backend();
  std::vector<std::pair<std::string, Tensor>> generator;
  {
    ParameterStore store(*backend, 5);
    TrainingGraph t = phase1.training_step({3, 32, 32, 0}, 2);
    Plan plan(std::move(t.graph), store);
    train(phase1, store, plan, t, 2);
    for (ParameterStore::Handle h = 0; h < store.size(); ++h) {
      const ParameterStore::Entry& e = store.entry(h);
      if (e.kind == ValueKind::kParameter || e.kind == ValueKind::kBuffer) generator.emplace_back(e.name.substr(2), store.read(h));
    }
  }
  save_safetensors(path("generator.safetensors"), generator, {{"format", "pytorch-state-dict"}, {"network", "G"}});

  // VGG19 cut after its 2nd convolution, random weights in torchvision's names.
  SuperResolutionRecipe phase2 = small_recipe(true);
  phase2.generator_init = path("generator.safetensors");
  phase2.vgg19 = path("vgg19.safetensors");
  phase2.vgg_convolutions = 2;
  std::vector<std::pair<std::string, Tensor>> vgg = {{"features.0.weight", Tensor(Shape{64, 3, 3, 3})},
                                                      {"features.0.bias", Tensor(Shape{64})},
                                                      {"features.2.weight", Tensor(Shape{64, 64, 3, 3})},
                                                      {"features.2.bias", Tensor(Shape{64})}};
  uint64_t seed = 40;
  for (auto& [name, tensor] : vgg) {
    const std::vector<float> x = testing::random_vector<float>(tensor.numel(), seed++, 0.1);
    std::copy(x.begin(), x.end(), tensor.data());
  }
  save_safetensors(phase2.vgg19, vgg, {});

  ParameterStore store(*backend, 6);
  TrainingGraph t = phase2.training_step({3, 32, 32, 0}, 2);
  Plan plan(std::move(t.graph), store);
  phase2.initialise(store, plan.graph());
  phase2.load_frozen(store, plan.graph());
  for (const auto& [name, tensor] : generator) {
    const Tensor now = store.read(store.find("G." + name));
    EXPECT_EQ(std::vector<float>(now.data(), now.data() + now.numel()),
              std::vector<float>(tensor.data(), tensor.data() + tensor.numel()))
        << name;
  }
  const ParameterStore::Handle vgg_weight = store.find("VGG.features.2.weight");
  ASSERT_NE(vgg_weight, ParameterStore::kNoHandle);
  const Tensor vgg_before = store.read(vgg_weight);
  const Tensor g_before = store.read(store.find("G.head.0.weight"));
  const std::map<std::string, double> m = train(phase2, store, plan, t, 2);
  for (const char* name : {"loss_d", "loss_vgg", "loss_adversarial", "d_x", "d_g_z1"}) {
    ASSERT_TRUE(m.count(name)) << name;
    EXPECT_TRUE(std::isfinite(m.at(name))) << name;
  }
  const Tensor vgg_after = store.read(vgg_weight), g_after = store.read(store.find("G.head.0.weight"));
  EXPECT_EQ(std::vector<float>(vgg_after.data(), vgg_after.data() + vgg_after.numel()),
            std::vector<float>(vgg_before.data(), vgg_before.data() + vgg_before.numel()));
  EXPECT_NE(std::vector<float>(g_after.data(), g_after.data() + g_after.numel()),
            std::vector<float>(g_before.data(), g_before.data() + g_before.numel()));

  // A generator file of another depth is refused in one line naming it.
  SuperResolutionRecipe deeper = phase2;
  deeper.residual_blocks = 2;
  ParameterStore other(*backend, 7);
  TrainingGraph t2 = deeper.training_step({3, 32, 32, 0}, 2);
  Plan plan2(std::move(t2.graph), other);
  try {
    deeper.initialise(other, plan2.graph());
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path("generator.safetensors") + ": missing tensor"), std::string::npos)
        << e.what();
  }
}

TEST(SuperResolutionRecipe, DropsTheLearningRateTenfoldAfterTheGivenStep) {
  SuperResolutionRecipe r = small_recipe(true);
  r.lr_drop_step = 100;
  EXPECT_EQ(r.step_version(99), 0);
  EXPECT_EQ(r.step_version(100), 1);
  for (const int version : {0, 1}) {
    const TrainingGraph t = r.training_step_version({3, 32, 32, 0}, 2, version);
    int updates = 0;
    for (const Node& n : t.graph.nodes())
      if (n.op == OpKind::kAdamStep) {
        EXPECT_DOUBLE_EQ(n.attrs.adam.lr, version == 0 ? 1e-4 : 1e-5);
        ++updates;
      }
    EXPECT_EQ(updates, 2);  // D, then G
  }
  r.lr_drop_step = 0;
  EXPECT_EQ(r.step_version(1000000), 0);
}

TEST(SuperResolutionRecipe, ReceptiveRadiusIsExact) {
  // One LR pixel changed: the SR output changes up to exactly the radius away (in LR pixels), and no farther.
  for (const int scale : {4, 2}) {
    SuperResolutionRecipe r = small_recipe(false);
    r.scale = scale;
    const int radius = r.receptive_radius();
    const int lr = 2 * radius + 9, centre = lr / 2;
    const int hr = lr * scale;
    SamplerGraph s = r.sampler({3, hr, hr, 0}, 1);
    auto backend = make_cpu_backend();
    ParameterStore store(*backend, 9);
    Plan plan(std::move(s.graph), store, StepAdvance::kKeep);
    std::vector<float> x = testing::random_vector<float>(3 * lr * lr, 13, 0.5);
    plan.write(s.z, x.data());
    plan.run();
    const Tensor before = plan.read(s.images);
    x[size_t(centre) * lr + centre] += 0.5f;  // channel 0
    plan.write(s.z, x.data());
    plan.run();
    const Tensor after = plan.read(s.images);
    int reach = 0;
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < hr; ++y)
        for (int xx = 0; xx < hr; ++xx) {
          const size_t i = (size_t(c) * hr + y) * hr + xx;
          if (after[int64_t(i)] != before[int64_t(i)])
            reach = std::max({reach, std::abs(y / scale - centre), std::abs(xx / scale - centre)});
        }
    EXPECT_EQ(reach, radius) << "scale " << scale;
  }
}

}  // namespace
}  // namespace gancu::recipes
