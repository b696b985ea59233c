// Frozen weights (ValueKind::kFrozen): declared by the builder's frozen mode, never given a gradient but passing
// gradients to their ops' inputs, kept out of the arena, unchanged by a training step, loaded by name with one-line
// errors, and absent from checkpoints and state dicts. And the VGG19 feature network built on them (models/vgg19.h);
// its values against torchvision are checked by the vgg19_against_torchvision ctest.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>

#include "engine/engine.h"
#include "models/vgg19.h"
#include "tests/plan_gradients.h"
#include "tests/temp_dir.h"
#include "tests/testing.h"
#include "tests/train_test.h"
#include "tools/gan/train.h"
#include "tools/io/dataset.h"
#include "tools/io/safetensors.h"

namespace gancu {
namespace {

using testing::error_of;
using testing::random_vector;

const Init kWeights{Init::kNormal, 0.0f, 0.3f};

// x → conv (trainable, "G.") → frozen conv → max pool → frozen conv → MSE against a target.
struct FrozenNet {
  Graph graph;
  ValueId x, target, loss;
};
FrozenNet frozen_net() {
  FrozenNet n;
  Builder b(n.graph);
  n.x = b.input("x", Shape{2, 2, 6, 6});
  n.target = b.input("target", Shape{2, 3, 3, 3});
  b.set_prefix("G.");
  ValueId h = b.conv2d(n.x, "conv", 3, 3, 1, 1, true, kWeights);
  b.set_prefix("F.");
  b.set_frozen(true);
  h = b.relu(b.conv2d(h, "features.0", 4, 3, 1, 1, true, kWeights));
  h = b.max_pool2d(h, 2, 2);
  h = b.conv2d(h, "features.3", 3, 1, 1, 0, true, kWeights);
  b.set_frozen(false);
  n.loss = b.mse(h, n.target);
  return n;
}

std::map<std::string, Tensor> random_tensors(const std::map<std::string, Shape>& shapes, uint64_t seed) {
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, shape] : shapes) {
    Tensor t(shape);
    const auto values = random_vector<float>(shape.numel(), seed++, 0.3);
    std::copy(values.begin(), values.end(), t.data());
    tensors.emplace(name, std::move(t));
  }
  return tensors;
}

TEST(Frozen, BuilderDeclaresFrozenWeights) {
  FrozenNet n = frozen_net();
  const Graph& g = n.graph;
  EXPECT_EQ(g.value(g.find("G.conv.weight")).kind, ValueKind::kParameter);
  for (const char* name : {"F.features.0.weight", "F.features.0.bias", "F.features.3.weight", "F.features.3.bias"})
    EXPECT_EQ(g.value(g.find(name)).kind, ValueKind::kFrozen) << name;
  Builder b(n.graph);
  b.set_prefix("F.");
  EXPECT_EQ(b.frozen("features.0.bias", Shape{4}), g.find("F.features.0.bias"));  // found by name, prefix applied
  // The same name as a trainable parameter is another value: refused.
  EXPECT_NE(error_of([&] { b.parameter("features.0.bias", Shape{4}, {}); }).find("F.features.0.bias"), std::string::npos);
}

TEST(Frozen, AutodiffGivesNoFrozenGradientsButReachesTheInput) {
  FrozenNet n = frozen_net();
  const std::vector<ValueId> wrt = {n.x, n.graph.find("G.conv.weight")};
  Graph refused = n.graph;
  EXPECT_NE(error_of([&] { append_backward(refused, {n.loss}, {refused.find("F.features.0.weight")}); }).find("frozen"),
            std::string::npos);
  const std::vector<ValueId> grads = append_backward(n.graph, {n.loss}, wrt);
  ASSERT_NE(grads[0], kNoValue);
  ASSERT_NE(grads[1], kNoValue);
  for (const Node& node : n.graph.nodes()) {  // no weight or bias gradient of the frozen convolutions
    if (node.op != OpKind::kConv2dBackwardWeight && node.op != OpKind::kBias2dBackward) continue;
    EXPECT_EQ(node.name.rfind("G.", 0), 0u) << node.name;
  }
  for (ValueId grad : grads) n.graph.value(n.graph.storage_root(grad)).keep = true;
  auto backend = make_reference_backend();
  ParameterStore store(*backend, 5);
  load_frozen(store, n.graph, "F.", random_tensors(frozen_shapes(n.graph, "F."), 30), "test weights");
  Plan plan(std::move(n.graph), store);
  const auto xs = random_vector<float>(2 * 2 * 6 * 6, 31), ts = random_vector<float>(2 * 3 * 3 * 3, 32);
  plan.write(n.x, xs.data());
  plan.write(n.target, ts.data());
  // Finite differences through the frozen convolutions and the pool, to the input and the trainable weight.
  testing::expect_plan_gradients_match_finite_differences(plan, wrt, grads, [&] {
    plan.run();
    return double(plan.read(n.loss)[0]);
  });
}

TEST(Frozen, PersistentOutsideTheArenaAndUnchangedByAStep) {
  FrozenNet n = frozen_net();
  const ValueId g_weight = n.graph.find("G.conv.weight"), g_bias = n.graph.find("G.conv.bias");
  const std::vector<ValueId> grads = append_backward(n.graph, {n.loss}, {g_weight, g_bias});
  Builder b(n.graph);
  EXPECT_NE(error_of([&] { b.adam_step("F", {n.graph.find("F.features.0.bias")}, {grads[1]}, AdamParams{}); })
                .find("not a trainable parameter"),
            std::string::npos);
  b.adam_step("G", {g_weight, g_bias}, grads, AdamParams{1e-2});
  const MemoryPlan memory = plan_memory(n.graph);
  for (const auto& [name, shape] : frozen_shapes(n.graph, "F.")) {
    const Value& v = n.graph.value(n.graph.find("F." + name));
    EXPECT_TRUE(v.persistent()) << name;
    EXPECT_EQ(memory.offset[size_t(v.id)], -1) << name << " is planned into the arena";
  }
  auto backend = make_cpu_backend();
  ParameterStore store(*backend, 5);
  load_frozen(store, n.graph, "F.", random_tensors(frozen_shapes(n.graph, "F."), 40), "test weights");
  Plan plan(std::move(n.graph), store);
  const auto xs = random_vector<float>(2 * 2 * 6 * 6, 41), ts = random_vector<float>(2 * 3 * 3 * 3, 42);
  plan.write(n.x, xs.data());
  plan.write(n.target, ts.data());
  std::map<std::string, Tensor> before;
  for (ParameterStore::Handle h = 0; h < store.size(); ++h) before.emplace(store.entry(h).name, store.read(h));
  for (int step = 0; step < 3; ++step) plan.run();
  int frozen = 0;
  for (ParameterStore::Handle h = 0; h < store.size(); ++h) {
    const ParameterStore::Entry& e = store.entry(h);
    const Tensor now = store.read(h),& then = before.at(e.name);
    const bool same = std::memcmp(now.data(), then.data(), size_t(now.numel()) * sizeof(float)) == 0;
    if (e.kind == ValueKind::kFrozen) {
      ++frozen;
      EXPECT_TRUE(same) << e.name << " changed in a training step";
    } else if (e.kind == ValueKind::kParameter) {
      EXPECT_FALSE(same) << e.name << " was not trained";
    }
  }
  EXPECT_EQ(frozen, 4);
}

TEST(Frozen, LoadRefusesMissingTensorsAndWrongShapesInOneLine) {
  FrozenNet n = frozen_net();
  auto backend = make_reference_backend();
  ParameterStore store(*backend, 5);
  std::map<std::string, Tensor> tensors = random_tensors(frozen_shapes(n.graph, "F."), 50);
  std::map<std::string, Tensor> missing = tensors, wrong = tensors;
  missing.erase("features.3.weight");
  wrong.erase("features.0.bias");
  wrong.emplace("features.0.bias", Tensor(Shape{5}));
  std::string msg = error_of([&] { load_frozen(store, n.graph, "F.", missing, "vgg.safetensors"); });
  EXPECT_EQ(msg, "vgg.safetensors: missing tensor \"features.3.weight\" ([3, 4, 1, 1])");
  msg = error_of([&] { load_frozen(store, n.graph, "F.", wrong, "vgg.safetensors"); });
  EXPECT_EQ(msg, "vgg.safetensors: tensor \"features.0.bias\" has shape [5], expected [4]");
  EXPECT_EQ(store.size(), 0) << "a refused load bound or wrote something";
  EXPECT_EQ(load_frozen(store, n.graph, "F.", tensors, "vgg.safetensors"), 4);
  const Tensor loaded = store.read(store.find("F.features.3.weight"));
  EXPECT_EQ(std::memcmp(loaded.data(), tensors.at("features.3.weight").data(), 12 * sizeof(float)), 0);
}

TEST(Vgg19, LayoutFollowsTorchvision) {
  EXPECT_EQ(models::vgg19_conv_index(1), 0);
  EXPECT_EQ(models::vgg19_conv_index(4), 7);
  EXPECT_EQ(models::vgg19_conv_index(16), 34);
  Graph g;
  Builder b(g);
  b.set_prefix("G.");
  const ValueId x = b.input("images", Shape{2, 3, 48, 48});
  const ValueId phi54 = models::vgg19_features(b, x);
  EXPECT_EQ(g.shape(phi54), (Shape{2, 512, 3, 3}));
  EXPECT_EQ(b.prefix(), "G.");  // restored
  EXPECT_FALSE(b.frozen());
  const std::map<std::string, Shape> shapes = frozen_shapes(g, "VGG.");
  EXPECT_EQ(shapes.size(), 2u + 2u * 16u);  // normalize + 16 convolutions
  EXPECT_EQ(shapes.at("features.0.weight"), (Shape{64, 3, 3, 3}));
  EXPECT_EQ(shapes.at("features.34.weight"), (Shape{512, 512, 3, 3}));
  EXPECT_EQ(shapes.at("features.34.bias"), (Shape{512}));
  for (const Value& v : g.values()) EXPECT_NE(v.kind, ValueKind::kParameter) << v.name;
  models::Vgg19Config phi22;
  phi22.convolutions = 4;
  phi22.prefix = "V22.";
  EXPECT_EQ(g.shape(models::vgg19_features(b, x, phi22)), (Shape{2, 128, 24, 24}));
  EXPECT_FALSE(frozen_shapes(g, "V22.").count("features.10.weight"));  // past the cut: not declared
  phi22.convolutions = 17;
  EXPECT_THROW(models::vgg19_features(b, x, phi22), std::invalid_argument);
}

// A missing or mismatched --vgg19 file: one line naming the file and the tensor.
TEST(Vgg19, BadWeightFilesNameTheFileAndTheTensor) {
  const std::filesystem::path dir = testing::fresh_temp_dir("vgg19_files");
  models::Vgg19Config cfg;
  cfg.convolutions = 2;
  Graph g;
  Builder b(g);
  models::vgg19_features(b, b.input("images", Shape{1, 3, 8, 8}), cfg);
  std::map<std::string, Shape> shapes = frozen_shapes(g, "VGG.");
  shapes.erase("normalize.weight");
  shapes.erase("normalize.bias");
  const std::map<std::string, Tensor> good = random_tensors(shapes, 60);
  auto save = [&](const std::string& file, std::map<std::string, Tensor> tensors) {
    const std::string path = (dir / file).string();
    save_safetensors(path, std::vector<std::pair<std::string, Tensor>>(tensors.begin(), tensors.end()));
    return path;
  };
  auto backend = make_reference_backend();
  ParameterStore store(*backend, 1);
  auto missing = good;
  missing.erase("features.2.bias");
  std::string path = save("missing.safetensors", missing);
  std::string msg = error_of([&] { models::load_vgg19(store, g, path, cfg); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("features.2.bias"), std::string::npos) << msg;
  auto wrong = good;
  wrong.erase("features.0.weight");
  wrong.emplace("features.0.weight", Tensor(Shape{64, 3, 5, 5}));
  path = save("wrong.safetensors", wrong);
  msg = error_of([&] { models::load_vgg19(store, g, path, cfg); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("features.0.weight"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  path = (dir / "f64.safetensors").string();
  std::vector<std::pair<std::string, F64Array>> f64;  // every tensor present and of its shape, but float64
  for (const auto& [name, shape] : shapes) {
    F64Array a{std::vector<int64_t>(shape.rank()), std::vector<double>(size_t(shape.numel()), 0.5)};
    for (int d = 0; d < shape.rank(); ++d) a.shape[size_t(d)] = shape[d];
    f64.emplace_back(name, std::move(a));
  }
  save_safetensors_f64(path, f64);
  msg = error_of([&] { models::load_vgg19(store, g, path, cfg); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"features.0.bias\" has dtype F64"), std::string::npos) << msg;
  const std::string absent = (dir / "absent.safetensors").string();
  msg = error_of([&] { models::load_vgg19(store, g, absent, cfg); });
  EXPECT_NE(msg.find(absent), std::string::npos) << msg;
  EXPECT_EQ(store.size(), 0);
  models::load_vgg19(store, g, save("good.safetensors", good), cfg);
  EXPECT_EQ(store.size(), 2 + 4);
  std::filesystem::remove_all(dir);
}

// A run's checkpoint and state dicts leave frozen weights out (they come from their own file), and a checkpoint
// resumes into a store that holds them.
TEST(Frozen, CheckpointsAndStateDictsLeaveThemOut) {
  const std::filesystem::path dir = testing::fresh_temp_dir("frozen_checkpoint");
  const ImageSet data = load_dataset(testing::kFashionTestImages, 1, 32);
  const recipes::DcganRecipe recipe = testing::tiny_dcgan();
  app::Trainer t(testing::tiny_train_options(), recipe, data);
  const Tensor frozen = Tensor::filled(Shape{4}, 0.5f);
  t.store().write(t.store().bind("G.vgg.weight", Shape{4}, ValueKind::kFrozen, {}), frozen.data());
  t.step();
  const std::string checkpoint = (dir / "checkpoint.safetensors").string();
  const std::string generator = (dir / "generator.safetensors").string();
  t.save_checkpoint(checkpoint);
  recipes::Network g_network;
  for (const recipes::Network& network : recipe.networks())
    if (network.prefix == "G.") g_network = network;
  ASSERT_EQ(g_network.prefix, "G.");
  t.save_state_dict(generator, g_network);
  EXPECT_FALSE(load_safetensors(checkpoint).count("G.vgg.weight"));
  EXPECT_FALSE(load_safetensors(generator).count("vgg.weight"));
  EXPECT_TRUE(load_safetensors(generator).count("main.0.weight"));
  t.load_checkpoint(checkpoint);  // the store's frozen value is not asked of the checkpoint
  const Tensor after = t.store().read(t.store().find("G.vgg.weight"));
  EXPECT_EQ(std::memcmp(after.data(), frozen.data(), 4 * sizeof(float)), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gancu
