// `gan bench`: a recipe's training step (DCGAN by default) timed on synthetic data (warm-up, then the median of many steps), printed as
// one JSON line in the same form as bench/pytorch/dcgan_step.py so the two can be put side by side. Each step is
// timed where it runs (CUDA events around it on the GPU, as the PyTorch script does) for the median; then as many
// steps run back to back as in training (queued without waiting, data loading included) for wall_images_per_s.
#pragma once
#include <cstdint>
#include <string>

#include "recipes/recipe.h"

namespace gancu::app {

struct BenchOptions {
  std::string device = "cpu";
  std::string kernels = "custom", math = "tf32";
  std::string kernel_choice_file;  // cuda, auto: keep (and reuse) the per-shape choices here; "" measures afresh
  bool cuda_graph = true;
  int channels = 1, batch_size = 64;  // the image size is the recipe's (--image-size)
  int warmup = 3, steps = 20;
  bool profile = false;  // after the timed steps, profile this many more (at most 20) op by op
};

int run_bench(const BenchOptions& options, const recipes::Recipe& recipe);

}  // namespace gancu::app
