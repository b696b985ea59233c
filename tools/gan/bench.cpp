#include "tools/gan/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "kernels/cpu/blas.h"
#include "tools/gan/train.h"

namespace gancu::app {

int run_bench(const BenchOptions& b, const recipes::Recipe& recipe) {
  // Synthetic images (and labels, ten classes): the step's cost does not depend on their values.
  const int size = recipe.data_request().image_size;
  ImageSet data;
  data.count = int64_t(b.batch_size) * 4;
  data.channels = b.channels;
  data.height = data.width = size;
  data.pixels.resize(size_t(data.count) * b.channels * size * size);
  Rng rng(1, 0);
  for (auto& p : data.pixels) p = static_cast<uint8_t>(rng.below(256));
  if (recipe.data_request().labels) {
    for (int c = 0; c < 10; ++c) data.class_names.push_back(std::to_string(c));
    for (int64_t i = 0; i < data.count; ++i) data.labels.push_back(static_cast<int32_t>(rng.below(10)));
  }
  data.source = "synthetic";
  // Super-resolution draws its crops from photos: four synthetic ones, each twice the crop's side.
  PhotoSet photos;
  if (recipe.data_request().sr_scale > 0) {
    photos.source = "synthetic";
    for (int i = 0; i < 4; ++i) {
      Photo& p = photos.photos.emplace_back();
      p.path = "synthetic-" + std::to_string(i);
      p.image.width = p.image.height = 2 * size;
      p.image.channels = 3;
      p.image.pixels.resize(size_t(12) * size * size);
      for (auto& v : p.image.pixels) v = static_cast<uint8_t>(rng.below(256));
    }
    data = sr_crop_shape(photos, size);
  }

  TrainOptions o;
  o.device = b.device;
  o.kernels = b.kernels;
  o.kernel_choice_file = b.kernel_choice_file;
  o.math = b.math;
  o.cuda_graph = b.cuda_graph;
  o.batch_size = b.batch_size;
  Trainer trainer(o, recipe, data, photos.photos.empty() ? nullptr : &photos);
  trainer.enable_step_timing();
  for (int i = 0; i < b.warmup; ++i) trainer.run_step();
  trainer.read_metrics();  // waits for the warm-up
  // Each step alone, timed where it runs (waiting for each, as the PyTorch script does)...
  std::vector<double> ms;
  for (int i = 0; i < b.steps; ++i) {
    trainer.run_step();
    ms.push_back(trainer.last_step_ms());
  }
  // ...then the same number of steps as training runs them, queued without waiting, data loading overlapped.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < b.steps; ++i) trainer.run_step();
  trainer.read_metrics();
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::sort(ms.begin(), ms.end());
  const double median = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  const std::string mode = b.device == "cuda" ? b.kernels + "/" + b.math + (b.cuda_graph ? "/graph" : "/launches") : "plan";
  nlohmann::ordered_json j{{"framework", "gancu"},
                           {"model", recipe.name()},
                           {"mode", mode},
                           {"device", b.device},
                           {"image_size", size},
                           {"channels", data.channels},
                           {"batch_size", b.batch_size},
                           {"steps", b.steps},
                           {"median_step_ms", median},
                           {"images_per_s", 1e3 * trainer.images_per_step() / median},
                           {"wall_images_per_s", 1e3 * trainer.images_per_step() * b.steps / wall_ms}};
  if (b.device == "cpu") j["blas"] = std::string("OpenBLAS ") + blas::openblas_core();  // which GEMM kernels ran
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
  if (b.profile) {
    trainer.enable_profiling();
    for (int i = 0; i < std::min(b.steps, 20); ++i) trainer.run_step();
    trainer.read_metrics();
    std::fprintf(stderr, "%s", trainer.profile_report().c_str());
  }
  return 0;
}

}  // namespace gancu::app
