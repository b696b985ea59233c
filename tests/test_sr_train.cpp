// Super-resolution end to end on small synthetic photo folders: `gan train` runs srresnet (validation PSNR/SSIM, the
// progress grid, checkpoints, bit-identical resume) and then srgan from its generator; gan upscale's tiles equal one
// whole-image pass; sr-eval scores a checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/files.h"
#include "core/rng.h"
#include "recipes/super_resolution.h"
#include "tests/temp_dir.h"
#include "tools/gan/sr_eval.h"
#include "tools/gan/train.h"
#include "tools/gan/upscale.h"
#include "tools/io/png.h"

namespace gancu::app {
namespace {

namespace fs = std::filesystem;

// A smooth random photo: a few sinusoids per channel, so bicubic and the network have something to reconstruct.
Image smooth_photo(int w, int h, uint64_t seed) {
  Rng rng(seed, 1);
  Image img{w, h, 3, std::vector<uint8_t>(size_t(w) * h * 3)};
  double f[3][4];
  for (auto& channel : f)
    for (double& v : channel) v = rng.uniform() * 0.3;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        const double v = 0.5 + 0.25 * std::sin(f[c][0] * x + f[c][1] * y) + 0.2 * std::cos(f[c][2] * x - f[c][3] * y);
        img.pixels[(size_t(y) * w + x) * 3 + size_t(c)] = uint8_t(std::lround(255 * std::clamp(v, 0.0, 1.0)));
      }
  return img;
}

class SrTrain : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    fs::create_directories(path("train"));
    fs::create_directories(path("val"));
    for (int i = 0; i < 3; ++i) write_png(path("train/p" + std::to_string(i) + ".png"), smooth_photo(64 + 8 * i, 56, 10 + i));
    for (int i = 0; i < 2; ++i) write_png(path("val/v" + std::to_string(i) + ".png"), smooth_photo(48, 44 + 4 * i, 20 + i));
  }
  TrainOptions options(const std::string& out, int64_t steps) const {
    TrainOptions o;
    o.data = path("train");
    o.val_data = path("val");
    o.val_crop = 32;
    o.batch_size = 2;
    o.steps = steps;
    o.seed = 3;
    o.out = path(out);
    o.out_given = true;
    o.progress = false;
    o.eval_every = 2;
    o.sample_every = 2;
    o.checkpoint_every = 2;
    return o;
  }
  static recipes::SuperResolutionRecipe recipe(bool adversarial) {
    recipes::SuperResolutionRecipe r(adversarial);
    r.residual_blocks = 1;
    r.crop = 32;
    return r;
  }
  static std::vector<nlohmann::json> metrics(const std::string& run) {
    std::vector<nlohmann::json> lines;
    std::ifstream in(run + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }
  static std::vector<char> bytes(const std::string& file) { return read_file(file); }
};

TEST_F(SrTrain, SrresnetTrainsScoresAndResumesBitIdentically) {
  recipes::SuperResolutionRecipe r = recipe(false);
  r.lr_drop_step = 2;  // the last two steps at lr / 10: a rebuilt plan, in the loop and on resume
  ASSERT_EQ(run_train(options("a", 4), r), 0);
  const std::vector<nlohmann::json> lines = metrics(path("a"));
  ASSERT_EQ(lines.size(), 4u);
  for (const nlohmann::json& j : lines) EXPECT_TRUE(j.contains("loss_pixel")) << j.dump();
  for (int k : {1, 3}) {
    for (const char* key : {"psnr", "ssim", "psnr_bicubic", "ssim_bicubic"})
      EXPECT_TRUE(lines[size_t(k)].contains(key) && lines[size_t(k)][key].is_number()) << key << " " << lines[size_t(k)];
    EXPECT_GT(lines[size_t(k)]["psnr_bicubic"].get<double>(), 20.0);
  }
  for (const char* file : {"samples.png", "checkpoint.safetensors", "best.safetensors", "generator.safetensors"})
    EXPECT_TRUE(fs::exists(path("a/" + std::string(file)))) << file;
  EXPECT_FALSE(fs::exists(path("a/discriminator.safetensors")));
  const Image grid = read_png(path("a/samples.png"));
  EXPECT_EQ(grid.width, 3 * 32 + 4 * 2);   // bicubic | SR | HR
  EXPECT_EQ(grid.height, 2 * 32 + 3 * 2);  // both validation crops

  // Two steps, then resumed to four: the same crops, the same weights.
  ASSERT_EQ(run_train(options("b", 2), r), 0);
  TrainOptions resumed = options("b", 4);
  resumed.resume = path("b");
  ASSERT_EQ(run_train(resumed, r), 0);
  EXPECT_EQ(bytes(path("a/generator.safetensors")), bytes(path("b/generator.safetensors")));
  // Without the drop the weights differ: the rebuilt plan did change the learning rate.
  recipes::SuperResolutionRecipe no_drop = recipe(false);
  ASSERT_EQ(run_train(options("c", 4), no_drop), 0);
  EXPECT_NE(bytes(path("a/generator.safetensors")), bytes(path("c/generator.safetensors")));
}

TEST_F(SrTrain, SrganStartsFromTheSrresnetGeneratorAndUpscalesTileByTile) {
  recipes::SuperResolutionRecipe phase1 = recipe(false);
  ASSERT_EQ(run_train(options("a", 2), phase1), 0);
  recipes::SuperResolutionRecipe phase2 = recipe(true);
  phase2.generator_init = path("a/generator.safetensors");
  ASSERT_EQ(run_train(options("gan", 2), phase2), 0);
  const std::vector<nlohmann::json> lines = metrics(path("gan"));
  ASSERT_EQ(lines.size(), 2u);
  for (const char* key : {"loss_d", "loss_pixel", "loss_adversarial", "d_x", "psnr"})
    EXPECT_TRUE(lines[1].contains(key)) << key;
  EXPECT_TRUE(fs::exists(path("gan/discriminator.safetensors")));

  // Tiles of 28 LR pixels with the exact halo (10 for one residual block) against one window over the whole image.
  const Image photo = smooth_photo(41, 30, 99);
  LoadedUpscaler tiled(path("gan"), "cpu", 28), whole(path("gan"), "cpu", 64);
  EXPECT_EQ(tiled.halo(), 10);
  const Image a = tiled.upscale(photo), b = whole.upscale(photo);
  ASSERT_EQ(a.width, 41 * 4);
  ASSERT_EQ(a.height, 30 * 4);
  ASSERT_EQ(a.pixels.size(), b.pixels.size());
  size_t differ = 0;
  int worst = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    const int d = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    differ += d != 0;
    worst = std::max(worst, d);
  }
  EXPECT_LE(worst, 1);  // float rounding at most flips a byte's rounding
  EXPECT_LT(double(differ) / double(a.pixels.size()), 1e-3);
  try {
    LoadedUpscaler(path("gan"), "cpu", 20);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("must exceed twice the halo"), std::string::npos) << e.what();
  }

  // gan upscale on a file, and sr-eval of the checkpoint on the validation photos.
  write_png(path("in.png"), photo);
  UpscaleOptions uo;
  uo.checkpoint = path("gan/generator.safetensors");
  uo.in = path("in.png");
  uo.out = path("out.png");
  uo.tile = 28;
  ASSERT_EQ(run_upscale(uo), 0);
  EXPECT_EQ(read_png(path("out.png")).pixels, a.pixels);
  SrEvalOptions so;
  so.data = path("val");
  so.crop = 32;
  so.json = path("scores.json");
  ASSERT_EQ(run_sr_eval(so, [&](const Image& lr) { return tiled.upscale(lr); }, "gancu"), 0);
  EXPECT_TRUE(fs::exists(path("scores.json")));
}

}  // namespace
}  // namespace gancu::app
