// `gan upscale`: a photo of any size through a trained super-resolution generator (srresnet or srgan), tile by tile
// (tools/gan/tiling.h) so that memory stays that of one tile, with a halo of the generator's receptive radius so that
// the result equals one pass over the whole photo. PNG or JPEG in, PNG out.
#pragma once
#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "tools/gan/generator.h"
#include "tools/io/png.h"

namespace gancu::app {

// A super-resolution generator read from a checkpoint, run on RGB images of any size.
class LoadedUpscaler {
 public:
  // `file`: a srresnet/srgan checkpoint, its generator.safetensors or its run folder. `tile`: LR pixels per tile side
  // (one inference plan per tile shape); `halo` < 0: the generator's receptive radius (exact). Throws one line naming
  // the file for one that holds no super-resolution generator.
  LoadedUpscaler(const std::string& file, const std::string& device, int tile, int halo = -1);
  int scale() const { return scale_; }
  int halo() const { return halo_; }
  int tile() const { return tile_; }
  // RGB bytes → RGB bytes, scale times larger.
  Image upscale(const Image& lr);

 private:
  std::string file_, device_;
  int tile_ = 0, halo_ = 0, scale_ = 0;
  std::map<std::pair<int, int>, std::unique_ptr<LoadedGenerator>> generators_;  // by tile shape
};

struct UpscaleOptions {
  std::string checkpoint, in, out;
  std::string device = "cpu";
  int tile = 256;
  int halo = -1;
};

CLI::App* add_upscale_command(CLI::App& app, UpscaleOptions& options);
int run_upscale(const UpscaleOptions& options);

}  // namespace gancu::app
