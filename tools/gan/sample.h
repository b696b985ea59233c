// `gan sample`: regenerate images from a checkpoint, optionally from given latent vectors, for exact comparison.
#pragma once
#include <cstdint>
#include <string>

namespace gancu::app {

struct SampleOptions {
  std::string checkpoint;  // checkpoint.safetensors, generator.safetensors, or a run folder
  int n = 64;
  std::string out = "samples.png";
  std::string z;           // .npy latent vectors [n, nz] or [n, nz, 1, 1]; overrides --n
  std::string raw;         // .npy of the generator's float output [n, C, S, S]
  uint64_t seed = 1;
  std::string device = "cpu";
  int nrow = 8;
};

int run_sample(const SampleOptions& options);

}  // namespace gancu::app
