// Recipes (recipes/recipe.h) and the generic trainer around them: options declared once round-trip through JSON and
// are checked; a checkpoint records its recipe and configuration, and a resumed run keeps it (refusing a flag that
// disagrees); DCGAN checkpoints from before recipes still resume.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "recipes/dcgan.h"
#include "tests/temp_dir.h"
#include "tests/train_test.h"
#include "tools/gan/train.h"
#include "tools/io/safetensors.h"

namespace gancu::app {
namespace {
namespace fs = std::filesystem;

TEST(RecipeOptions, RoundTripThroughJsonAndRefuseBadValues) {
  recipes::DcganRecipe a;
  a.model.latent_size = 7;
  a.training.label_noise = 0.25;
  a.training.saturating_g_loss = true;
  const nlohmann::ordered_json j = recipes::to_json(a.options());
  EXPECT_EQ(j.at("nz"), 7);
  EXPECT_EQ(j.at("d_steps"), 1);
  recipes::DcganRecipe b;
  recipes::from_json(b.options(), j, "test");
  EXPECT_EQ(b.model.latent_size, 7);
  EXPECT_EQ(b.training.label_noise, 0.25);
  EXPECT_TRUE(b.training.saturating_g_loss);
  EXPECT_EQ(recipes::to_json(b.options()), j);

  auto error_of = [](const nlohmann::ordered_json& bad) {
    recipes::DcganRecipe r;
    try {
      recipes::from_json(r.options(), bad, "ckpt.safetensors");
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(error_of({{"nz", "seven"}}).find("ckpt.safetensors: nz"), std::string::npos);
  EXPECT_NE(error_of({{"nz", 0}}).find("outside"), std::string::npos);
  EXPECT_NE(error_of({{"label_noise", 0.9}}).find("label_noise"), std::string::npos);
  EXPECT_NE(error_of({{"nz", 1e12}}).find("bad value"), std::string::npos);
  EXPECT_NE(error_of({{"label_smoothing", 1}}).find("label_smoothing"), std::string::npos);
  EXPECT_THROW(recipes::from_json(a.options(), nlohmann::ordered_json::array(), "x"), std::runtime_error);

  recipes::DcganRecipe c;
  c.training.d_steps = 0;
  EXPECT_THROW(recipes::check_bounds(c.options()), std::invalid_argument);
  EXPECT_THROW(recipes::make_recipe("stylegan9"), std::invalid_argument);
}

struct TinyRun {
  TrainOptions options = testing::tiny_train_options();
  recipes::DcganRecipe recipe = testing::tiny_dcgan();
  TinyRun(const fs::path& out, int64_t steps) {
    options.out = out.string();
    options.steps = steps;
    options.sample_every = 0;
    options.progress = false;
    options.out_given = true;
  }
};

TEST(RecipeCheckpoints, AResumedRunRefusesAFlagThatDisagreesWithItsCheckpoint) {
  const fs::path dir = testing::fresh_temp_dir("recipes_refuse");
  TinyRun first(dir / "run", 1);
  ASSERT_EQ(run_train(first.options, first.recipe), 0);
  const std::vector<char> before = read_file((dir / "run" / "checkpoint.safetensors").string());

  TinyRun again(dir / "run", 2);
  again.options.resume = (dir / "run").string();
  again.recipe.training.d_steps = 3;
  again.options.given_recipe_options = {"d-steps"};
  try {
    run_train(again.options, again.recipe);
    FAIL() << "a resumed run took --d-steps 3 over its checkpoint's 1";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("--d-steps 3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("trained with 1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file((dir / "run" / "checkpoint.safetensors").string()), before);
  // The same value given again is fine, and so is a flag not given (the checkpoint's value is used).
  again.recipe.training.d_steps = 1;
  again.recipe.model.latent_size = 99;  // not given: replaced by the checkpoint's
  EXPECT_EQ(run_train(again.options, again.recipe), 0);
  EXPECT_EQ(again.recipe.model.latent_size, testing::tiny_dcgan().model.latent_size);
  fs::remove_all(dir);
}

// A checkpoint written before recipes ("gancu-dcgan-1": DCGAN's config and a "training" object) resumes as the same
// run: made here by rewriting a new checkpoint's metadata the way the old trainer wrote it.
TEST(RecipeCheckpoints, ADcganCheckpointFromBeforeRecipesResumesBitIdentically) {
  const fs::path dir = testing::fresh_temp_dir("recipes_old_format");
  TinyRun straight(dir / "straight", 3);
  ASSERT_EQ(run_train(straight.options, straight.recipe), 0);
  TinyRun first(dir / "old", 2);
  ASSERT_EQ(run_train(first.options, first.recipe), 0);

  const std::string path = (dir / "old" / "checkpoint.safetensors").string();
  std::map<std::string, std::string> meta;
  const std::map<std::string, Tensor> tensors = load_safetensors(path, &meta);
  const recipes::DcganRecipe& r = first.recipe;
  const nlohmann::json config{{"model", "dcgan"}, {"image_size", r.model.image_size}, {"channels", 1},
                              {"nz", r.model.latent_size}, {"ngf", r.model.generator_width},
                              {"ndf", r.model.discriminator_width}, {"d_dropout", 0.0}};
  const nlohmann::json training{{"seed", first.options.seed}, {"batch_size", first.options.batch_size}, {"lr", 2e-4},
                                {"beta1", 0.5}, {"beta2", 0.999}, {"d_steps", 1}, {"label_smoothing", false},
                                {"label_noise", 0.0}, {"saturating_g_loss", false}, {"data", first.options.data}};
  std::map<std::string, std::string> old{{"format", "gancu-dcgan-1"},          {"config", config.dump()},
                                         {"training", training.dump()},        {"step", meta.at("step")},
                                         {"counter.G", meta.at("counter.G")},  {"counter.D", meta.at("counter.D")},
                                         {"loader.epoch", meta.at("loader.epoch")},
                                         {"loader.position", meta.at("loader.position")}};
  std::vector<std::pair<std::string, Tensor>> list(tensors.begin(), tensors.end());
  save_safetensors(path, list, old);

  TrainOptions resume = testing::tiny_train_options();
  resume.resume = (dir / "old").string();
  resume.steps = 3;
  resume.sample_every = 0;
  resume.progress = false;
  recipes::DcganRecipe defaults;  // everything from the old checkpoint
  ASSERT_EQ(run_train(resume, defaults), 0);
  const auto a = load_safetensors((dir / "straight" / "checkpoint.safetensors").string());
  const auto b = load_safetensors(path);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a)
    EXPECT_EQ(std::memcmp(t.data(), b.at(name).data(), size_t(t.numel()) * sizeof(float)), 0) << name;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gancu::app
