// `gan sr-eval`: PSNR and SSIM of x4 super-resolution on a folder of HR photos (or the default validation photos), each
// image and the mean, by the SR papers' protocol (tools/eval/sr_metrics.h), with bicubic alongside: of a trained
// generator (--checkpoint, run on whole photos tile by tile as gan upscale runs it), or of bicubic itself.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "tools/eval/sr_metrics.h"

namespace gancu::app {

struct SrEvalOptions {
  std::string data = kDebianPhotosVal;  // a folder of PNG/JPEG photos, debian-photos or debian-photos-val
  int scale = 4;
  int crop = 0;      // 0: whole photos (modcrop to a multiple of scale); else centre crops of crop x crop
  std::string json;  // also write the results here
  // A srresnet/srgan checkpoint (or its generator.safetensors, or run folder) to score against bicubic; "": bicubic.
  std::string checkpoint;
  std::string device = "cpu";
  int tile = 256;
};

// Adds the subcommand and its flags, bound to `options`.
CLI::App* add_sr_eval_command(CLI::App& app, SrEvalOptions& options);
// Prints a table (one line per image, then the mean) and writes --json; returns the exit code. `method` names the
// upscaler ("bicubic" when it is empty). Errors throw (one line).
int run_sr_eval(const SrEvalOptions& options, const eval::Upscaler& upscale = {},
                const std::string& method = "bicubic");

}  // namespace gancu::app
