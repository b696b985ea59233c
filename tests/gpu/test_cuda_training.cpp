// `gan train` on the GPU as a user runs it: checkpoints move between the CPU and CUDA backends, and a whole run with
// --kernels auto trains on real images, writing its samples, checkpoints and kernel choices.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/rng.h"
#include "recipes/dcgan.h"
#include "tests/gpu/gpu_test.h"
#include "tests/temp_dir.h"
#include "tests/testing.h"
#include "tools/gan/train.h"
#include "tools/io/dataset.h"

namespace gancu::app {
namespace {

namespace fs = std::filesystem;

// Fashion-MNIST's 10,000 test images: $GANCU_TEST_IMAGES, Debian's package, or data/ beside this binary (where
// tools/gpu_check.sh --pack puts them for a GPU machine without the package). "" if none is there.
std::string fashion_test_images() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("GANCU_TEST_IMAGES")) candidates.emplace_back(env);
  candidates.emplace_back("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path() / "data" / "t10k-images-idx3-ubyte.gz");
  for (const fs::path& p : candidates)
    if (fs::exists(p)) return p.string();
  return "";
}

ImageSet random_images(int count, int size) {
  ImageSet set;
  set.count = count;
  set.channels = 1;
  set.height = set.width = size;
  set.pixels.resize(size_t(count) * size * size);
  Rng rng(3, 0);
  for (auto& p : set.pixels) p = static_cast<uint8_t>(rng.below(256));
  set.source = "random images";
  return set;
}

TrainOptions small_options(const std::string& device) {
  TrainOptions o;
  o.device = device;
  o.math = "fp32";
  o.batch_size = 16;
  o.seed = 11;
  return o;
}

// DCGAN-32 at width 16, nz 32.
const recipes::DcganRecipe& small_dcgan() {
  static const recipes::DcganRecipe recipe = [] {
    recipes::DcganRecipe r;
    r.model.image_size = 32;
    r.model.latent_size = 32;
    r.model.generator_width = r.model.discriminator_width = 16;
    return r;
  }();
  return recipe;
}

std::vector<std::pair<std::string, std::vector<float>>> state_of(Trainer& t) {
  std::vector<std::pair<std::string, std::vector<float>>> out;
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer, ValueKind::kOptState})
    for (ValueId id : t.plan().values_of_kind(kind)) {
      const Tensor x = t.plan().read(id);
      out.emplace_back(t.plan().graph().value(id).name, std::vector<float>(x.data(), x.data() + x.numel()));
    }
  return out;
}

void expect_same_state(Trainer& a, Trainer& b, const std::string& what) {
  const auto x = state_of(a), y = state_of(b);
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(x[i].first, y[i].first);
    ASSERT_EQ(x[i].second.size(), y[i].second.size());
    EXPECT_EQ(std::memcmp(x[i].second.data(), y[i].second.data(), x[i].second.size() * sizeof(float)), 0)
        << what << ": " << x[i].first;
  }
  EXPECT_EQ(a.steps_done(), b.steps_done()) << what;
  EXPECT_EQ(a.plan().counters(), b.plan().counters()) << what;
}

// Parameters and batch-norm buffers within 1e-4 (relative L2; fp32 on both sides, one step apart at most); the Adam
// moments are the gradients, held to a looser bound in test_cuda_backend.cpp.
void expect_close_parameters(Trainer& a, Trainer& b, const std::string& what) {
  const auto x = state_of(a), y = state_of(b);
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i].first.rfind("optim.", 0) == 0) continue;
    EXPECT_TRUE(testing::close_rel_l2(x[i].second, y[i].second, 1e-4, {int64_t(y[i].second.size())})) << what << ": " << x[i].first;
  }
}

// A checkpoint is the same file whichever backend wrote it: a CUDA run's checkpoint loads into a CPU trainer bit for
// bit (and back), and the next step on each side agrees to fp32 rounding (tolerance of the one-step test, 1e-4).
TEST(CudaTraining, CheckpointsMoveBetweenCpuAndGpu) {
  GANCU_REQUIRE_GPU();
  const fs::path dir = testing::fresh_temp_dir("cuda_checkpoint");
  const ImageSet data = random_images(64, 32);
  Trainer gpu(small_options("cuda"), small_dcgan(), data);
  for (int i = 0; i < 3; ++i) gpu.run_step();
  const std::string from_gpu = (dir / "from_gpu.safetensors").string();
  gpu.save_checkpoint(from_gpu);

  Trainer cpu(small_options("cpu"), small_dcgan(), data);
  cpu.load_checkpoint(from_gpu);
  expect_same_state(cpu, gpu, "GPU checkpoint loaded on the CPU");
  gpu.run_step();
  cpu.run_step();
  expect_close_parameters(gpu, cpu, "one step after the GPU checkpoint");

  const std::string from_cpu = (dir / "from_cpu.safetensors").string();
  cpu.save_checkpoint(from_cpu);
  Trainer gpu2(small_options("cuda"), small_dcgan(), data);
  gpu2.run_step();  // its graph is captured: the load must reach the device state too
  gpu2.load_checkpoint(from_cpu);
  expect_same_state(gpu2, cpu, "CPU checkpoint loaded on the GPU");
  // The replayed graph continues from the loaded step and counters (a stale device step would change z, a stale
  // counter Adam's bias correction: both far beyond 1e-4).
  gpu2.run_step();
  cpu.run_step();
  expect_close_parameters(gpu2, cpu, "one step after the CPU checkpoint");
  EXPECT_EQ(gpu2.plan().counters(), cpu.plan().counters());
  fs::remove_all(dir);
}

// The user's command: `gan train --device cuda --kernels auto` on real images. It must finish, write every file,
// keep finite losses, and move the generator's samples off their initial blank state toward the data's spread.
TEST(CudaTraining, TrainsDcganEndToEndWithAutoKernels) {
  GANCU_REQUIRE_GPU();
  const std::string images = fashion_test_images();
  if (images.empty()) GTEST_SKIP() << "Fashion-MNIST test images not found (set GANCU_TEST_IMAGES)";
  const fs::path dir = testing::fresh_temp_dir("cuda_train");
  TrainOptions o;
  o.device = "cuda";
  o.kernels = "auto";
  o.data = images;
  o.steps = 400;
  o.sample_every = 200;
  o.checkpoint_every = 200;
  o.out = (dir / "run").string();
  o.progress = false;
  recipes::DcganRecipe recipe;  // the defaults of `gan train`
  ASSERT_EQ(run_train(o, recipe), 0);
  for (const char* f : {"samples.png", "losses.png", "metrics.jsonl", "checkpoint.safetensors", "generator.safetensors",
                        "discriminator.safetensors", "kernel_choices.json", "samples/step_000200.png"})
    EXPECT_TRUE(fs::exists(fs::path(o.out) / f)) << f;
  std::ifstream metrics(fs::path(o.out) / "metrics.jsonl");
  std::string line, last;
  int lines = 0;
  while (std::getline(metrics, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_TRUE(std::isfinite(j.at("loss_d").get<double>()) && std::isfinite(j.at("loss_g").get<double>())) << line;
    last = line;
    ++lines;
  }
  EXPECT_EQ(lines, 40);  // read every 10 steps on cuda
  std::printf("last metrics: %s\n", last.c_str());

  // The trained generator's samples (inference mode) vary per pixel like images do, not like its initial output.
  const ImageSet data = load_dataset(images, 1, 32);
  TrainOptions reader = o;
  reader.kernels = "custom";  // sampling only: nothing to choose
  Trainer trainer(reader, recipe, data);
  trainer.load_checkpoint((fs::path(o.out) / "checkpoint.safetensors").string());
  Tensor z(Shape{64, recipe.model.latent_size, 1, 1});
  Rng rng(5, 0);
  for (int64_t i = 0; i < z.numel(); ++i) z.data()[i] = rng.normal();
  const Tensor samples = trainer.sample(z);
  const int64_t pixels = 32 * 32;
  double variance = 0;
  for (int64_t p = 0; p < pixels; ++p) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < 64; ++i) {
      const double v = samples.data()[i * pixels + p];
      sum += v;
      sq += v * v;
    }
    variance += (sq / 64 - (sum / 64) * (sum / 64)) / double(pixels);
  }
  std::printf("samples' mean per-pixel variance after 400 steps: %.4f (Fashion-MNIST: about 0.25)\n", variance);
  EXPECT_GT(variance, 0.03);
  fs::remove_all(dir);
}


// Every recipe's step on the GPU tracks the CPU backend: three steps in strict fp32 from the same store, then
// parameters and batch-norm statistics within 1e-4 (relative L2; the tolerance of the DCGAN one-step test). Small
// shapes, so that compute-sanitizer reaches the conditional and MLP GANs' kernels (one_hot, concat and its slices,
// batch_norm1d's reshapes, linear layers) inside a real training step.
class SmallRecipeStep : public ::testing::TestWithParam<std::string> {};

TEST_P(SmallRecipeStep, TracksTheCpuBackend) {
  GANCU_REQUIRE_GPU();
  ImageSet data = random_images(32, 16);
  for (int c = 0; c < 10; ++c) data.class_names.push_back(std::to_string(c));
  for (int64_t i = 0; i < data.count; ++i) data.labels.push_back(static_cast<int32_t>(i % 10));
  std::unique_ptr<recipes::Recipe> recipe = recipes::make_recipe(GetParam());
  recipes::from_json(recipe->options(), {{"image_size", 16}, {"nz", 8}, {"ngf", 8}, {"ndf", 8}}, "test");
  TrainOptions o = small_options("cuda");
  o.batch_size = 8;
  Trainer gpu(o, *recipe, data);
  o.device = "cpu";
  Trainer cpu(o, *recipe, data);
  for (int i = 0; i < 3; ++i) {
    gpu.run_step();
    cpu.run_step();
  }
  expect_close_parameters(gpu, cpu, GetParam() + " after three steps");
  EXPECT_EQ(gpu.plan().counters(), cpu.plan().counters());
}

INSTANTIATE_TEST_SUITE_P(Recipes, SmallRecipeStep, ::testing::Values("dcgan", "mlp-gan", "conditional-dcgan"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace gancu::app
