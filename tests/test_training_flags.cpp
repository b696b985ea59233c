// Each training flag of `gan train` through the whole command: a run checkpointed every step and resumed ends
// bit-identical to an uninterrupted run, the resumed run takes the flag from the checkpoint (it is not passed again),
// and the flag changes the training (a flag that did nothing would pass the resume check trivially). Tiny on purpose:
// 16x16 images, width 4, batch 4, four steps.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <ostream>

#include "tests/temp_dir.h"
#include "tests/train_test.h"
#include "tools/gan/train.h"
#include "tools/io/safetensors.h"

namespace gancu::app {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kSteps = 4, kResumeAt = 2;

// Smaller still: every flag trains, checkpoints and resumes.
recipes::DcganRecipe tiny_dcgan() {
  recipes::DcganRecipe r = testing::tiny_dcgan();
  r.model.image_size = 16;
  r.model.latent_size = 8;
  r.model.generator_width = r.model.discriminator_width = 4;
  return r;
}

TrainOptions tiny_options() {
  TrainOptions o = testing::tiny_train_options();
  o.batch_size = 4;
  o.seed = 7;
  o.sample_every = 0;
  o.progress = false;
  o.out_given = true;
  return o;
}

struct Checkpoint {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> meta;
};

// Trains `o` to `steps` in `dir` (resuming when o.resume is set) and returns the final checkpoint.
Checkpoint train(TrainOptions o, recipes::DcganRecipe recipe, const fs::path& dir, int64_t steps) {
  o.out = dir.string();
  o.steps = steps;
  EXPECT_EQ(run_train(o, recipe), 0) << dir;
  Checkpoint c;
  c.tensors = load_safetensors((dir / "checkpoint.safetensors").string(), &c.meta);
  return c;
}

bool bit_identical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), size_t(a.numel()) * sizeof(float)) == 0;
}

// Names of the tensors that differ between a and b (all of a's tensors must be in b).
std::vector<std::string> differing(const Checkpoint& a, const Checkpoint& b) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : a.tensors) {
    auto it = b.tensors.find(name);
    if (it == b.tensors.end() || !bit_identical(tensor, it->second)) names.push_back(name);
  }
  return names;
}

// The run without any flag, shared by every flag's "the flag changes the training" check.
const Checkpoint& baseline() {
  static const Checkpoint c = [] {
    const fs::path dir = testing::fresh_temp_dir("flags_baseline");
    Checkpoint out = train(tiny_options(), tiny_dcgan(), dir / "run", kSteps);
    fs::remove_all(dir);
    return out;
  }();
  return c;
}

struct Flag {
  const char* name;
  std::function<void(recipes::DcganRecipe&)> set;
};

void PrintTo(const Flag& flag, std::ostream* out) { *out << flag.name; }  // for gtest's messages

class TrainingFlag : public ::testing::TestWithParam<Flag> {};

TEST_P(TrainingFlag, CheckpointedAndResumedRunIsBitIdenticalToAnUninterruptedOne) {
  const Flag& flag = GetParam();
  const fs::path dir = testing::fresh_temp_dir(std::string("flags_") + flag.name);
  const TrainOptions o = tiny_options();
  recipes::DcganRecipe recipe = tiny_dcgan();
  flag.set(recipe);
  const Checkpoint straight = train(o, recipe, dir / "straight", kSteps);

  TrainOptions first = o;
  first.checkpoint_every = 1;  // a checkpoint after every step: where `--d-steps 2` used to die
  train(first, recipe, dir / "split", kResumeAt);
  TrainOptions resumed = tiny_options();  // the flag is not given again: the checkpoint's metadata restores it
  resumed.resume = (dir / "split").string();
  const Checkpoint split = train(resumed, tiny_dcgan(), dir / "split", kSteps);

  ASSERT_EQ(straight.tensors.size(), split.tensors.size());
  ASSERT_GT(straight.tensors.size(), 20u);
  for (const std::string& name : differing(straight, split)) ADD_FAILURE() << name << " differs after the resume";
  for (const char* key : {"step", "counter.G", "counter.D", "loader.epoch", "loader.position"})
    EXPECT_EQ(straight.meta.at(key), split.meta.at(key)) << key;
  // PyTorch's Adam counts every optimizer.step(): d_steps per gancu step for D, one for G.
  EXPECT_EQ(split.meta.at("counter.G"), std::to_string(kSteps));
  EXPECT_EQ(split.meta.at("counter.D"), std::to_string(kSteps * recipe.training.d_steps));

  // The flag did something: the uninterrupted run differs from the run without flags.
  EXPECT_FALSE(differing(straight, baseline()).empty()) << flag.name << " left the training unchanged";
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Flags, TrainingFlag,
    ::testing::Values(Flag{"d_steps_2", [](recipes::DcganRecipe& r) { r.training.d_steps = 2; }},
                      Flag{"label_smoothing", [](recipes::DcganRecipe& r) { r.training.label_smoothing = true; }},
                      Flag{"label_noise", [](recipes::DcganRecipe& r) { r.training.label_noise = 0.3; }},
                      Flag{"d_dropout", [](recipes::DcganRecipe& r) { r.model.discriminator_dropout = 0.3; }},
                      Flag{"saturating_g_loss", [](recipes::DcganRecipe& r) { r.training.saturating_g_loss = true; }}),
    [](const ::testing::TestParamInfo<Flag>& info) { return std::string(info.param.name); });

// With two D updates per step, the checkpoint holds one set of Adam moments per parameter (no "optim.D.D...exp_avg"
// twice), and the PyTorch state dicts count the batch-norm forwards: G runs twice per step (one fake batch per D
// update), D five times (real and fake per D update, then the G update's pass).
TEST(TrainingFlags, TwoDiscriminatorStepsCheckpointOneAdamStateAndCountBatchNormForwards) {
  const fs::path dir = testing::fresh_temp_dir("flags_d_steps_state");
  recipes::DcganRecipe recipe = tiny_dcgan();
  recipe.training.d_steps = 2;
  const Checkpoint c = train(tiny_options(), recipe, dir / "run", kSteps);
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  int params = 0, state = 0;
  for (const auto& [name, tensor] : c.tensors) {
    state += name.rfind("optim.", 0) == 0;
    if (name.rfind("optim.", 0) == 0 || ends_with(name, ".running_mean") || ends_with(name, ".running_var")) continue;
    ++params;  // "G.main.0.weight": its optimiser's moments are "optim.G.G.main.0.weight.exp_avg" and ".exp_avg_sq"
    const std::string moments = "optim." + name.substr(0, 1) + "." + name;
    EXPECT_TRUE(c.tensors.count(moments + ".exp_avg")) << name;
    EXPECT_TRUE(c.tensors.count(moments + ".exp_avg_sq")) << name;
  }
  EXPECT_EQ(params, 3 + 2 * 2 + 3 + 2);  // G: 3 convolutions, 2 batch norms; D: 3 convolutions, 1 batch norm
  EXPECT_EQ(state, 2 * params);

  const auto g = load_safetensors((dir / "run" / "generator.safetensors").string());
  const auto d = load_safetensors((dir / "run" / "discriminator.safetensors").string());
  ASSERT_TRUE(g.count("main.1.num_batches_tracked"));
  ASSERT_TRUE(d.count("main.3.num_batches_tracked"));
  EXPECT_EQ(g.at("main.1.num_batches_tracked")[0], float(kSteps * 2));
  EXPECT_EQ(d.at("main.3.num_batches_tracked")[0], float(kSteps * (2 * 2 + 1)));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gancu::app
