// gan eval and gan train --eval-every: FID/KID of generators against the data set's test images, in the feature space
// of a classifier gancu trains (tools/gan/evaluate.h). The classifier here is a quick one (1,000 training images, one
// epoch), trained once for the suite: the tests check the plumbing and the order of the numbers, not their size.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "recipes/recipe.h"
#include "tests/temp_dir.h"
#include "tests/train_test.h"
#include "tools/eval/classifier.h"
#include "tools/eval/images.h"
#include "tools/gan/evaluate.h"
#include "tools/gan/train.h"
#include "tools/io/safetensors.h"

namespace gancu::app {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class Eval : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(testing::fresh_temp_dir("eval_suite"));
    classifier_ = new std::string((*dir_ / "mnist.safetensors").string());
    eval::LabelledSplit split = eval::load_labelled_split("mnist", 1);
    split.train = eval::subset(split.train, 1000, 1);
    eval::ClassifierTraining training;
    training.epochs = 1;
    training.batch_size = 50;
    eval::train_classifier(split, *classifier_, training);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete classifier_;
  }
  static fs::path* dir_;
  static std::string* classifier_;

  // A tiny DCGAN on MNIST (16×16, width 4).
  static std::unique_ptr<recipes::Recipe> tiny_dcgan() {
    std::unique_ptr<recipes::Recipe> r = recipes::make_recipe("dcgan");
    recipes::from_json(r->options(), {{"image_size", 16}, {"nz", 8}, {"ngf", 4}, {"ndf", 4}}, "tiny");
    return r;
  }
  static TrainOptions tiny_run(const fs::path& out, int64_t steps) {
    TrainOptions o = testing::tiny_train_options();
    o.data = "mnist";
    o.batch_size = 8;
    o.out = out.string();
    o.out_given = true;
    o.steps = steps;
    o.sample_every = 0;
    o.progress = false;
    return o;
  }
  static json eval_json(EvalOptions o) {
    o.json = (*dir_ / "eval.json").string();
    EXPECT_EQ(run_eval(o), 0);
    std::ifstream in(o.json);
    return json::parse(in);
  }
};
fs::path* Eval::dir_ = nullptr;
std::string* Eval::classifier_ = nullptr;

// Real images score far below noise, and below a generator after a few steps (which may still be farther than
// noise: a tiny G's first images are flat grey); the numbers repeat exactly.
TEST_F(Eval, TheFloorIsBelowAGeneratorAndFarBelowTheCeiling) {
  const fs::path run = *dir_ / "run";
  ASSERT_EQ(run_train(tiny_run(run, 30), *tiny_dcgan()), 0);
  EvalOptions o;
  o.checkpoint = run.string();
  o.classifier = *classifier_;
  o.n = 400;
  o.kid_subsets = 5;
  const json a = eval_json(o);
  EXPECT_EQ(a.at("data"), "mnist");
  EXPECT_EQ(a.at("reference_images"), 2000);
  EXPECT_EQ(a.at("comparable_with_inception_fid"), false);
  const double floor = a.at("floor").at("fid"), generated = a.at("generated").at("fid"), ceiling = a.at("ceiling").at("fid");
  EXPECT_LT(floor, generated);
  EXPECT_LT(10 * floor, ceiling);
  EXPECT_GT(floor, 0.0);
  EXPECT_LT(a.at("floor").at("kid").get<double>(), a.at("ceiling").at("kid").get<double>());
  const json b = eval_json(o);
  EXPECT_EQ(a.dump(), b.dump());  // deterministic: same latents, same draws
}

// --eval-every puts fid and kid into the metrics lines of its steps (and the last), and keeps the best checkpoint.
TEST_F(Eval, TrainingScoresEveryNStepsAndKeepsTheBestCheckpoint) {
  const fs::path run = *dir_ / "scored";
  TrainOptions o = tiny_run(run, 12);
  o.eval_every = 5;
  o.eval_samples = 100;
  o.classifier = *classifier_;
  ASSERT_EQ(run_train(o, *tiny_dcgan()), 0);
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  std::vector<int64_t> scored;
  double best = INFINITY;
  int64_t best_step = -1;
  while (std::getline(in, line)) {
    const json j = json::parse(line);
    if (!j.contains("fid")) continue;
    scored.push_back(j.at("step"));
    EXPECT_GT(j.at("fid").get<double>(), 0.0);
    EXPECT_TRUE(j.contains("kid"));
    if (j.at("fid").get<double>() < best) best = j.at("fid"), best_step = j.at("step");
  }
  EXPECT_EQ(scored, (std::vector<int64_t>{5, 10, 12}));
  std::map<std::string, std::string> meta = load_safetensors_metadata((run / "best.safetensors").string());
  EXPECT_EQ(meta.at("step"), std::to_string(best_step));

  // The best checkpoint scores as training scored it: same latent vectors, same classifier.
  EvalOptions e;
  e.checkpoint = (run / "best.safetensors").string();
  e.classifier = *classifier_;
  e.n = 100;
  e.kid_subsets = 20;
  e.bounds = false;
  e.seed = o.seed;
  EXPECT_NEAR(eval_json(e).at("generated").at("fid").get<double>(), best, 1e-9 * best);
}

TEST_F(Eval, RefusesWhatItCannotScore) {
  EvalOptions o;
  o.classifier = *classifier_;
  o.n = 10;
  try {
    run_eval(o);
    FAIL() << "scored nothing";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--checkpoint"), std::string::npos) << e.what();
  }
  o.data = "fashion-mnist";  // an MNIST classifier
  try {
    run_eval(o);
    FAIL() << "used a classifier of another data set";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("a classifier of mnist"), std::string::npos) << e.what();
  }
  o.data = (*dir_ / "no-such-folder").string();
  EXPECT_THROW(run_eval(o), std::runtime_error);
}

// CIFAR-10 (not in Debian, so a synthetic folder in its format): the split is data_batch_1..5 / test_batch, the
// classifier and the scorer work in 3 channels, and the bounds come out ordered.
TEST_F(Eval, ACifar10FolderIsScoredInThreeChannels) {
  const fs::path cifar = *dir_ / "cifar-10-batches-bin";
  fs::create_directories(cifar);
  // Class c is a colour gradient of its own slope, with per-image noise: learnable, and not constant.
  auto records = [](int n, int first) {
    std::string out;
    uint32_t state = 12345u + uint32_t(first);
    for (int i = 0; i < n; ++i) {
      const int label = (first + i) % 10;
      out += static_cast<char>(label);
      for (int k = 0; k < 3072; ++k) {
        state = state * 1664525u + 1013904223u;
        const int value = (k % 1024) / 32 * (label + 1) + (k / 1024) * 20 + int(state >> 28);
        out += static_cast<char>(value % 256);
      }
    }
    return out;
  };
  for (int b = 1; b <= 5; ++b)
    write_file_atomic((cifar / ("data_batch_" + std::to_string(b) + ".bin")).string(), records(40, 40 * (b - 1)));
  write_file_atomic((cifar / "test_batch.bin").string(), records(50, 1000));
  const eval::LabelledSplit split = eval::load_labelled_split(cifar.string(), 3);
  EXPECT_EQ(split.name, "cifar10");
  EXPECT_EQ(split.train.count, 200);
  EXPECT_EQ(split.test.count, 50);
  EXPECT_EQ(split.test.channels, 3);
  const std::string classifier = (*dir_ / "cifar10.safetensors").string();
  eval::ClassifierTraining training;
  training.epochs = 1;
  training.batch_size = 20;
  EXPECT_EQ(eval::train_classifier(split, classifier, training).channels, 3);

  EvalOptions o;
  o.data = cifar.string();
  o.classifier = classifier;
  o.n = 50;
  o.kid_subsets = 3;
  const json bounds = eval_json(o);
  EXPECT_EQ(bounds.at("data"), "cifar10");
  EXPECT_EQ(bounds.at("reference_images"), 50);
  EXPECT_LT(bounds.at("floor").at("fid").get<double>(), bounds.at("ceiling").at("fid").get<double>());
}

}  // namespace
}  // namespace gancu::app
