// `gan sample`: regenerate images from a checkpoint, optionally from given latent vectors, for exact comparison;
// latent walks (interpolation, arithmetic) on top.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gancu::app {

struct SampleOptions {
  std::string checkpoint;  // checkpoint.safetensors, generator.safetensors, or a run folder
  int n = 0;               // 0: 64, or for a conditional generator one row of --nrow per class
  std::string out = "samples.png";
  std::string z;           // .npy latent vectors [n, nz] or [n, nz, 1, 1]; overrides --n
  std::string raw;         // .npy of the generator's float output [n, C, S, S]
  uint64_t seed = 1;
  std::string device = "cpu";
  int nrow = 8;
  // Latent walks (at most one of the two). Latent points come from --z when given, else from --seed.
  int interpolate = 0;                   // pairs: one row per pair, the slerp from its first to its second point
  int steps = 8;                         // points per row, endpoints included (≥ 2)
  std::vector<std::string> arithmetic;   // three .npy files a, b, c: the grid shows G(a), G(b), G(c), G(a − b + c)
  std::string save_z;                    // .npy of the latent vectors fed to the generator, in its latent shape
  // Conditional generators: the class of each image (default: one class per grid row).
  std::string labels;                    // .npy of n class indices
  std::string class_name;                // every image of this class (a name the checkpoint records, or an index)
};

int run_sample(const SampleOptions& options);

}  // namespace gancu::app
