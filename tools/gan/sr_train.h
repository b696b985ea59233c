// Super-resolution runs in `gan train` (recipes/super_resolution.h): the held-out photos a run is watched and scored
// on. The progress grid shows validation crops as rows of bicubic | SR | HR; --eval-every scores PSNR and SSIM on Y
// (tools/eval/sr_metrics.h) of every validation crop against bicubic, into metrics.jsonl (psnr, ssim, psnr_bicubic,
// ssim_bicubic), and keeps the best checkpoint by PSNR.
#pragma once
#include <string>
#include <vector>

#include "tools/eval/sr_metrics.h"
#include "tools/gan/train.h"
#include "tools/io/photos.h"

namespace gancu::app {

class SrValidation {
 public:
  // Centre crops of crop × crop pixels (a multiple of scale; 0: whole photos, modcropped) of the photos of `spec` (a
  // folder, debian-photos-val or debian-photos), with their LR made as the training crops' are.
  SrValidation(const std::string& spec, int crop, int scale);
  const std::vector<SrPair>& pairs() const { return pairs_; }
  const std::string& source() const { return source_; }
  // The run's generator on one LR image (RGB bytes) → the SR image (RGB bytes, scale times larger).
  Image upscale(Trainer& trainer, const Image& lr) const;
  // Rows of bicubic | SR | HR for the first `rows` validation crops (all of them if fewer).
  Image progress_grid(Trainer& trainer, int rows) const;
  eval::SrSetScore score(Trainer& trainer) const;

 private:
  std::string source_;
  int scale_;
  std::vector<SrPair> pairs_;
};

// RGB bytes (HWC) ↔ [1, 3, h, w] floats in [-1, 1] (x / 127.5 − 1; back by byte_from_unit).
Tensor unit_tensor_from_image(const Image& image);
Image image_from_unit_tensor(const Tensor& images, int index = 0);

}  // namespace gancu::app
