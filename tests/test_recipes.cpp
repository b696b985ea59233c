// Recipes (recipes/recipe.h) and the generic trainer around them: options declared once round-trip through JSON and
// are checked; a checkpoint records its recipe and configuration, and a resumed run keeps it (refusing a flag that
// disagrees); DCGAN checkpoints from before recipes still resume.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "core/npy.h"
#include "recipes/dcgan.h"
#include "tests/temp_dir.h"
#include "tests/train_test.h"
#include "tools/gan/sample.h"
#include "tools/gan/train.h"
#include "tools/io/dataset.h"
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


// ---- every recipe through the whole command -------------------------------------------------------------------------

// A tiny configuration of any recipe, set through its declared options (keys a recipe lacks are ignored).
std::unique_ptr<recipes::Recipe> tiny(const std::string& name) {
  std::unique_ptr<recipes::Recipe> r = recipes::make_recipe(name);
  recipes::from_json(r->options(), {{"image_size", 16}, {"nz", 8}, {"ngf", 4}, {"ndf", 4}}, "tiny");
  return r;
}

TrainOptions tiny_run(const fs::path& out, int64_t steps) {
  TrainOptions o = testing::tiny_train_options();
  o.batch_size = 4;
  o.out = out.string();
  o.steps = steps;
  o.sample_every = 2;
  o.progress = false;
  o.out_given = true;
  return o;
}

std::map<std::string, Tensor> checkpoint_of(const fs::path& run, std::map<std::string, std::string>* meta = nullptr) {
  return load_safetensors((run / "checkpoint.safetensors").string(), meta);
}

class EveryRecipe : public ::testing::TestWithParam<std::string> {};

// Each recipe trains, writes its grids, checkpoints and resumes bit-identically to an uninterrupted run, with the
// resumed run configured from the checkpoint alone; its state dicts carry PyTorch's names.
TEST_P(EveryRecipe, TrainsCheckpointsAndResumesBitIdentically) {
  const std::string name = GetParam();
  const fs::path dir = testing::fresh_temp_dir(std::string("recipe_").append(name));  // append: GCC 12 warns falsely on +
  ASSERT_EQ(run_train(tiny_run(dir / "straight", 4), *tiny(name)), 0);
  ASSERT_EQ(run_train(tiny_run(dir / "split", 2), *tiny(name)), 0);
  TrainOptions resumed = tiny_run(dir / "split", 4);
  resumed.resume = (dir / "split").string();
  std::unique_ptr<recipes::Recipe> defaults = recipes::make_recipe(name);  // everything from the checkpoint
  ASSERT_EQ(run_train(resumed, *defaults), 0);

  std::map<std::string, std::string> meta;
  const auto a = checkpoint_of(dir / "straight", &meta), b = checkpoint_of(dir / "split");
  EXPECT_EQ(meta.at("recipe"), name);
  EXPECT_EQ(meta.at("step"), "4");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 10u);
  for (const auto& [tensor, value] : a) {
    ASSERT_TRUE(b.count(tensor)) << tensor;
    EXPECT_EQ(std::memcmp(value.data(), b.at(tensor).data(), size_t(value.numel()) * sizeof(float)), 0) << tensor;
  }
  for (const char* f : {"samples.png", "samples/step_000002.png", "losses.png", "generator.safetensors",
                        "discriminator.safetensors"})
    EXPECT_TRUE(fs::exists(dir / "split" / f)) << f;
  const auto g = load_safetensors((dir / "split" / "generator.safetensors").string());
  if (name == "mlp-gan") {
    EXPECT_EQ(g.at("model.0.weight").shape(), (Shape{256, 8}));
    EXPECT_EQ(g.at("model.2.num_batches_tracked")[0], 4.0f);  // BatchNorm1d, one G forward per step
    EXPECT_EQ(g.at("model.9.weight").shape(), (Shape{16 * 16, 1024}));
  } else {
    const int64_t in = name == "conditional-dcgan" ? 8 + 10 : 8;  // z and, conditional, the ten one-hot channels
    EXPECT_EQ(g.at("main.0.weight").shape(), (Shape{in, 8, 4, 4}));
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Recipes, EveryRecipe, ::testing::Values("dcgan", "mlp-gan", "conditional-dcgan"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

// The conditional generator's samples: one row per class by default; --class by name equals --labels of that index,
// and another class gives other images (the label reaches the generator).
TEST(ConditionalDcgan, SamplesFollowTheirLabels) {
  const fs::path dir = testing::fresh_temp_dir("recipe_conditional_sample");
  ASSERT_EQ(run_train(tiny_run(dir / "run", 2), *tiny("conditional-dcgan")), 0);
  auto sample = [&](const std::string& raw, const std::function<void(SampleOptions&)>& set) {
    SampleOptions s;
    s.checkpoint = (dir / "run" / "generator.safetensors").string();
    s.out = (dir / "grid.png").string();
    s.raw = (dir / raw).string();
    set(s);
    EXPECT_EQ(run_sample(s), 0);
    return read_npy(s.raw);
  };
  EXPECT_EQ(sample("all.npy", [](SampleOptions&) {}).shape(), (Shape{80, 1, 16, 16}));  // 10 rows of 8
  const std::string sneaker = "sneaker", zero = "0";  // named strings: GCC 12 warns falsely on literals assigned here
  const Tensor by_name = sample("sneaker.npy", [&](SampleOptions& s) { s.n = 4; s.class_name = sneaker; });
  Tensor sevens = Tensor::filled(Shape{4}, 7.0f);
  write_npy((dir / "sevens.npy").string(), sevens);
  const Tensor by_labels = sample("sevens_out.npy", [&](SampleOptions& s) { s.labels = (dir / "sevens.npy").string(); });
  const Tensor zeros = sample("zeros.npy", [&](SampleOptions& s) { s.n = 4; s.class_name = zero; });
  ASSERT_EQ(by_name.shape(), by_labels.shape());
  EXPECT_EQ(std::memcmp(by_name.data(), by_labels.data(), size_t(by_name.numel()) * sizeof(float)), 0);
  EXPECT_NE(std::memcmp(by_name.data(), zeros.data(), size_t(zeros.numel()) * sizeof(float)), 0);
  SampleOptions bad;
  bad.checkpoint = (dir / "run").string();
  bad.out = (dir / "bad.png").string();
  bad.class_name = std::string("sock");
  EXPECT_THROW(run_sample(bad), std::runtime_error);
  fs::remove_all(dir);
}

// --class: the run trains on one class of the labelled set (Fashion-MNIST t10k holds 1,000 sneakers), which the
// epoch count shows; a class the set lacks is refused naming the classes, before anything is written.
TEST(OneClass, TrainsOnTheChosenClassOnly) {
  const fs::path dir = testing::fresh_temp_dir("recipe_one_class");
  TrainOptions o = tiny_run(dir / "run", 5);
  o.data_class = "Sneaker";
  ASSERT_EQ(run_train(o, *tiny("dcgan")), 0);
  std::ifstream metrics(dir / "run" / "metrics.jsonl");
  std::string line, last;
  while (std::getline(metrics, line)) last = line;
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(last).at("epoch").get<double>(), 5.0 * 4 / 1000);
  std::map<std::string, std::string> meta;
  checkpoint_of(dir / "run", &meta);
  EXPECT_NE(meta.at("run").find("\"class\":\"Sneaker\""), std::string::npos) << meta.at("run");

  TrainOptions bad = tiny_run(dir / "bad", 1);
  bad.data_class = "sock";
  try {
    run_train(bad, *tiny("dcgan"));
    FAIL() << "trained on a class the set lacks";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("Ankle boot"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "bad" / "checkpoint.safetensors"));
  fs::remove_all(dir);
}

// --check-finite: a healthy run passes its checks; a NaN in any weight or Adam moment is found and named.
TEST(CheckFinite, FindsANonFiniteWeightOrMoment) {
  const fs::path dir = testing::fresh_temp_dir("recipe_check_finite");
  TrainOptions o = tiny_run(dir / "run", 3);
  o.check_finite_every = 1;
  ASSERT_EQ(run_train(o, *tiny("dcgan")), 0);

  const ImageSet data = load_dataset(testing::kFashionTestImages, 1, 16);
  const std::unique_ptr<recipes::Recipe> recipe = tiny("dcgan");
  Trainer t(tiny_run(dir / "unused", 1), *recipe, data);
  t.run_step();
  EXPECT_EQ(t.first_non_finite(), "");
  ParameterStore& store = t.store();
  const auto h = store.find("optim.D.D.main.0.weight.exp_avg");
  ASSERT_NE(h, ParameterStore::kNoHandle);
  Tensor moment = store.read(h);
  moment[5] = std::numeric_limits<float>::quiet_NaN();
  store.write(h, moment.data());
  EXPECT_EQ(t.first_non_finite(), "optim.D.D.main.0.weight.exp_avg holds NaN at element 5 of " +
                                      std::to_string(moment.numel()));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gancu::app
