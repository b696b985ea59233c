#include "tools/gan/sr_eval.h"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "tools/io/photos.h"

namespace gancu::app {

CLI::App* add_sr_eval_command(CLI::App& app, SrEvalOptions& o) {
  CLI::App* c = app.add_subcommand(
      "sr-eval",
      "PSNR and SSIM of x4 super-resolution (Y channel, scale pixels of border cut; SSIM with the Gaussian "
      "11x11 window), per image and as a mean, with bicubic alongside");
  c->add_option("--data", o.data, "A folder of HR photos (PNG/JPEG), debian-photos-val or debian-photos")
      ->capture_default_str();
  c->add_option("--scale", o.scale, "Upscaling factor")->capture_default_str()->check(CLI::Range(2, 8));
  c->add_option("--crop", o.crop, "Score centre crops of N x N pixels (a multiple of --scale; 0: whole photos)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 16));
  c->add_option("--json", o.json, "Also write the results as JSON here");
  c->add_option("--checkpoint", o.checkpoint, "A srresnet/srgan checkpoint, generator.safetensors or run folder to "
                                              "score (default: bicubic alone)");
  c->add_option("--device", o.device, "cpu | cuda | reference")->capture_default_str()
      ->check(CLI::IsMember({"cpu", "reference", "cuda"}));
  c->add_option("--tile", o.tile, "--checkpoint: LR pixels per tile side (as gan upscale)")->capture_default_str()
      ->check(CLI::Range(8, 4096));
  return c;
}

int run_sr_eval(const SrEvalOptions& o, const eval::Upscaler& upscale, const std::string& method) {
  const PhotoSet photos = load_photos(o.data);
  const std::vector<SrPair> pairs = validation_pairs(photos, o.scale, o.crop);
  const eval::SrSetScore scores = eval::score_sr_set(pairs, o.scale, upscale);
  using json = nlohmann::json;
  json images = json::array();
  std::printf("%-44s %11s %8s %8s %8s %8s\n", "image", "size", "PSNR", "SSIM", "bicubic", "SSIM");
  for (const eval::SrImageScore& s : scores.images) {
    const std::string name = std::filesystem::path(s.name).filename().string();
    std::printf("%-44s %5dx%-5d %8.3f %8.4f %8.3f %8.4f\n", name.c_str(), s.width, s.height, s.method.psnr,
                s.method.ssim, s.bicubic.psnr, s.bicubic.ssim);
    images.push_back({{"path", s.name},
                      {"width", s.width},
                      {"height", s.height},
                      {"psnr", s.method.psnr},
                      {"ssim", s.method.ssim},
                      {"bicubic_psnr", s.bicubic.psnr},
                      {"bicubic_ssim", s.bicubic.ssim}});
  }
  std::printf("%-44s %11s %8.3f %8.4f %8.3f %8.4f\n", ("mean of " + std::to_string(pairs.size())).c_str(), "",
              scores.method_mean.psnr, scores.method_mean.ssim, scores.bicubic_mean.psnr, scores.bicubic_mean.ssim);
  std::printf(
      "method: %s; x%d, Y channel (BT.601), %d pixels of border cut; %s\n", method.c_str(), o.scale, o.scale,
      o.crop ? ("centre crops of " + std::to_string(o.crop) + "x" + std::to_string(o.crop)).c_str() : "whole photos");
  if (!o.json.empty()) {
    const json result{{"data", o.data},
                      {"method", method},
                      {"scale", o.scale},
                      {"crop", o.crop},
                      {"psnr", scores.method_mean.psnr},
                      {"ssim", scores.method_mean.ssim},
                      {"bicubic_psnr", scores.bicubic_mean.psnr},
                      {"bicubic_ssim", scores.bicubic_mean.ssim},
                      {"images", images}};
    write_file_atomic(o.json, result.dump(2) + "\n");
  }
  return 0;
}

}  // namespace gancu::app
