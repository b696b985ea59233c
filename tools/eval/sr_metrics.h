// PSNR and SSIM of super-resolved photos by the protocol of the SR papers (SRGAN, Ledig et al. 2017, and those it
// compares with): both images as 8-bit RGB, converted to luma Y as MATLAB's rgb2ycbcr does (ITU-R BT.601,
// Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 with R, G, B the bytes in [0, 255], so Y in [16, 235]; kept in
// double, not rounded), `scale`
// pixels cut from every edge, then
//   PSNR = 10 log10(255² / MSE) on Y in [0, 255];
//   SSIM (Wang et al. 2004) with an 11x11 Gaussian window of sigma 1.5 (weights normalised to sum 1), K1 0.01,
//     K2 0.03, data range 255, population (not sample) variances, averaged over every window that lies wholly inside
//     the cut image: skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
//     use_sample_covariance=False, data_range=255), which tests/sr_metrics_against_skimage.py checks.
// Identical images have PSNR +inf and SSIM 1.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tools/io/photos.h"
#include "tools/io/png.h"

namespace gancu::eval {

struct SrScore {
  double psnr = 0, ssim = 0;
};

// Y of an RGB image (HWC bytes) as above, [height × width] doubles.
std::vector<double> luma_bt601(const Image& rgb);
// Both on Y planes of equal size (h × w), `border` pixels cut from each edge first. SSIM needs at least 11x11 left.
double psnr_y(const std::vector<double>& a, const std::vector<double>& b, int h, int w, int border);
double ssim_y(const std::vector<double>& a, const std::vector<double>& b, int h, int w, int border);

// An HR photo against its upscaled estimate (both RGB, the same size), scored on Y with `scale` pixels of border cut.
// Throws std::invalid_argument for images of different sizes, not RGB, or too small to score.
SrScore score_sr(const Image& hr, const Image& upscaled, int scale);

// The baseline every SR number is read against: the LR image upscaled x`scale` by bicubic interpolation
// (kernels/cpu/resize.h: Keys a = −0.5, PyTorch's interpolate(mode="bicubic", antialias=True) and PIL's BICUBIC;
// computed on [0, 1] in double), rounded to bytes.
Image bicubic_upscale(const Image& lr, int scale);

// Scores of a set of validation pairs: each image and the mean (of the per-image PSNRs and SSIMs, as the papers
// average), for a method given as a function from the LR image to its upscaled estimate, with bicubic alongside.
struct SrImageScore {
  std::string name;
  int width = 0, height = 0;  // of the HR image
  SrScore method, bicubic;
};
struct SrSetScore {
  std::vector<SrImageScore> images;
  SrScore method_mean, bicubic_mean;
};
// upscale(lr) returns an image `scale` times the LR's size (a generator's output made bytes by byte_from_unit).
// Empty: the method is bicubic itself (its columns then equal the baseline's).
using Upscaler = std::function<Image(const Image& lr)>;
SrSetScore score_sr_set(const std::vector<SrPair>& pairs, int scale, const Upscaler& upscale = {});

}  // namespace gancu::eval
