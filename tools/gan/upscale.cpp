#include "tools/gan/upscale.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "recipes/super_resolution.h"
#include "tools/gan/tiling.h"
#include "tools/io/jpeg.h"
#include "tools/io/safetensors.h"

namespace gancu::app {

LoadedUpscaler::LoadedUpscaler(const std::string& file, const std::string& device, int tile, int halo)
    : file_(file), device_(device), tile_(tile) {
  namespace fs = std::filesystem;
  const std::string path = fs::is_directory(file) ? (fs::path(file) / "checkpoint.safetensors").string() : file;
  const RecordedRecipe recorded = recorded_recipe(load_safetensors_metadata(path), path);
  const auto* sr = dynamic_cast<const recipes::SuperResolutionRecipe*>(recorded.recipe.get());
  if (!sr) throw std::runtime_error(path + ": a " + recorded.recipe->name() + " generator, not a super-resolution one");
  scale_ = sr->scale;
  halo_ = halo >= 0 ? halo : sr->receptive_radius();
  if (tile_ <= 2 * halo_)
    throw std::invalid_argument("--tile " + std::to_string(tile_) + ": must exceed twice the halo (" +
                                std::to_string(halo_) + " LR pixels, the generator's receptive radius)");
}

Image LoadedUpscaler::upscale(const Image& lr) {
  if (lr.channels != 3) throw std::invalid_argument("upscale: RGB images only");
  const int h = lr.height, w = lr.width;
  const uint64_t out_pixels = uint64_t(h) * scale_ * uint64_t(w) * scale_;
  if (out_pixels > kMaxPngPixels)
    throw std::invalid_argument("upscale: a " + std::to_string(w) + "x" + std::to_string(h) + " image becomes " +
                                std::to_string(out_pixels / 1000000) + " megapixels, above PNG's limit here");
  std::vector<float> planar(size_t(3) * h * w);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        planar[(size_t(c) * h + y) * w + x] = lr.pixels[(size_t(y) * w + x) * 3 + size_t(c)] / 127.5f - 1.0f;
  Image out;
  out.channels = 3;
  out.height = h * scale_;
  out.width = w * scale_;
  out.pixels.resize(size_t(out_pixels) * 3);
  const TileNetwork network = [&](const float* in, int th, int tw, float* result) {
    std::unique_ptr<LoadedGenerator>& g = generators_[{th, tw}];
    if (!g) {
      const recipes::DataShape shape{3, th * scale_, tw * scale_, 0};
      g = std::make_unique<LoadedGenerator>(file_, device_, 1, &shape);
    }
    Tensor z(Shape{1, 3, th, tw});
    std::copy(in, in + z.numel(), z.data());
    const Tensor y = g->generate(z);
    std::copy(y.data(), y.data() + y.numel(), result);
  };
  run_tiled(planar.data(), 3, h, w, scale_, tile_, halo_, network, [&](const TileBlock& b) {
    for (int c = 0; c < 3; ++c)
      for (int64_t i = 0; i < b.rows; ++i)
        for (int64_t j = 0; j < b.cols; ++j)
          out.pixels[(size_t(b.y + i) * out.width + size_t(b.x + j)) * 3 + size_t(c)] =
              byte_from_unit(b.block[c * b.channel_stride + i * b.row_stride + j]);
  });
  return out;
}

CLI::App* add_upscale_command(CLI::App& app, UpscaleOptions& o) {
  CLI::App* c = app.add_subcommand("upscale", "Make a photo 4x larger with a trained srresnet or srgan generator");
  c->add_option("--checkpoint", o.checkpoint, "checkpoint.safetensors, generator.safetensors or a run folder")->required();
  c->add_option("--in", o.in, "The photo (PNG or JPEG, any size)")->required();
  c->add_option("--out", o.out, "The result (PNG)")->required();
  c->add_option("--device", o.device, "cpu | cuda | reference")->capture_default_str()
      ->check(CLI::IsMember({"cpu", "reference", "cuda"}));
  c->add_option("--tile", o.tile, "LR pixels per tile side: memory is that of one tile (larger: less overlap work)")
      ->capture_default_str()->check(CLI::Range(8, 4096));
  c->add_option("--halo", o.halo, "Overlap on each side of a tile, in LR pixels (default: the generator's receptive "
                                  "radius, which makes the tiled result equal the whole-image one)")
      ->check(CLI::Range(0, 4096));
  return c;
}

int run_upscale(const UpscaleOptions& o) {
  LoadedUpscaler upscaler(o.checkpoint, o.device, o.tile, o.halo);
  Image in = load_image(o.in);
  if (in.channels == 1) {  // grey: the generator takes RGB
    Image rgb{in.width, in.height, 3, std::vector<uint8_t>(in.pixels.size() * 3)};
    for (size_t i = 0; i < in.pixels.size(); ++i) rgb.pixels[3 * i] = rgb.pixels[3 * i + 1] = rgb.pixels[3 * i + 2] = in.pixels[i];
    in = std::move(rgb);
  }
  const Image out = upscaler.upscale(in);
  write_png(o.out, out);
  std::fprintf(stderr, "gan upscale: %s %dx%d -> %s %dx%d (x%d, tiles of %d LR pixels, halo %d)\n", o.in.c_str(),
               in.width, in.height, o.out.c_str(), out.width, out.height, upscaler.scale(), o.tile, upscaler.halo());
  return 0;
}

}  // namespace gancu::app
