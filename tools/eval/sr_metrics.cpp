#include "tools/eval/sr_metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "kernels/cpu/resize.h"

namespace gancu::eval {
namespace {

constexpr int kSsimRadius = 5;  // scipy's gaussian_filter radius for sigma 1.5, truncate 3.5: int(3.5 · 1.5 + 0.5)
constexpr int kSsimWindow = 2 * kSsimRadius + 1;

std::array<double, kSsimWindow> gaussian_window() {
  std::array<double, kSsimWindow> w{};
  double sum = 0;
  for (int i = 0; i < kSsimWindow; ++i)
    sum += w[i] = std::exp(-0.5 * (i - kSsimRadius) * (i - kSsimRadius) / (1.5 * 1.5));
  for (double& v : w) v /= sum;
  return w;
}

void check_plane(const std::vector<double>& a, const std::vector<double>& b, int h, int w, int border, int min_side,
                 const char* what) {
  if (h <= 0 || w <= 0 || border < 0 || a.size() != size_t(h) * w || b.size() != a.size())
    throw std::invalid_argument(std::string(what) + ": planes do not match their size");
  if (h - 2 * border < min_side || w - 2 * border < min_side)
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(w) + "x" + std::to_string(h) +
                                " with a border of " + std::to_string(border) + " leaves less than " +
                                std::to_string(min_side) + "x" + std::to_string(min_side));
}

// The plane with `border` pixels cut from each edge.
std::vector<double> inner(const std::vector<double>& p, int h, int w, int border) {
  const int ih = h - 2 * border, iw = w - 2 * border;
  std::vector<double> out(size_t(ih) * iw);
  for (int y = 0; y < ih; ++y)
    std::copy_n(p.begin() + (size_t(y + border) * w + border), iw, out.begin() + size_t(y) * iw);
  return out;
}

// The Gaussian-weighted mean of `x` over every window wholly inside the h × w plane: [(h − 10) × (w − 10)].
std::vector<double> filter_valid(const std::vector<double>& x, int h, int w) {
  static const std::array<double, kSsimWindow> g = gaussian_window();
  const int oh = h - 2 * kSsimRadius, ow = w - 2 * kSsimRadius;
  std::vector<double> rows(size_t(h) * ow);
  for (int y = 0; y < h; ++y)
    for (int x0 = 0; x0 < ow; ++x0) {
      double s = 0;
      for (int k = 0; k < kSsimWindow; ++k) s += g[k] * x[size_t(y) * w + x0 + k];
      rows[size_t(y) * ow + x0] = s;
    }
  std::vector<double> out(size_t(oh) * ow);
  for (int y0 = 0; y0 < oh; ++y0)
    for (int x0 = 0; x0 < ow; ++x0) {
      double s = 0;
      for (int k = 0; k < kSsimWindow; ++k) s += g[k] * rows[size_t(y0 + k) * ow + x0];
      out[size_t(y0) * ow + x0] = s;
    }
  return out;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

}  // namespace

std::vector<double> luma_bt601(const Image& rgb) {
  if (rgb.channels != 3 || rgb.pixels.size() != size_t(rgb.width) * rgb.height * 3)
    throw std::invalid_argument("luma_bt601: not an RGB image");
  std::vector<double> y(size_t(rgb.width) * rgb.height);
  for (size_t i = 0; i < y.size(); ++i)
    y[i] =
        16.0 + (65.481 * rgb.pixels[3 * i] + 128.553 * rgb.pixels[3 * i + 1] + 24.966 * rgb.pixels[3 * i + 2]) / 255.0;
  return y;
}

double psnr_y(const std::vector<double>& a, const std::vector<double>& b, int h, int w, int border) {
  check_plane(a, b, h, w, border, 1, "psnr_y");
  double sum = 0;
  for (int y = border; y < h - border; ++y)
    for (int x = border; x < w - border; ++x) {
      const double d = a[size_t(y) * w + x] - b[size_t(y) * w + x];
      sum += d * d;
    }
  const double mse = sum / (double(h - 2 * border) * (w - 2 * border));
  return mse == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(255.0 * 255.0 / mse);
}

double ssim_y(const std::vector<double>& a, const std::vector<double>& b, int h, int w, int border) {
  check_plane(a, b, h, w, border, kSsimWindow, "ssim_y");
  const int ih = h - 2 * border, iw = w - 2 * border;
  const std::vector<double> x = inner(a, h, w, border), y = inner(b, h, w, border);
  std::vector<double> xx(x.size()), yy(x.size()), xy(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    xx[i] = x[i] * x[i];
    yy[i] = y[i] * y[i];
    xy[i] = x[i] * y[i];
  }
  const std::vector<double> ux = filter_valid(x, ih, iw), uy = filter_valid(y, ih, iw), uxx = filter_valid(xx, ih, iw),
                            uyy = filter_valid(yy, ih, iw), uxy = filter_valid(xy, ih, iw);
  const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
  std::vector<double> s(ux.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const double vx = uxx[i] - ux[i] * ux[i], vy = uyy[i] - uy[i] * uy[i], vxy = uxy[i] - ux[i] * uy[i];
    s[i] = ((2 * ux[i] * uy[i] + c1) * (2 * vxy + c2)) / ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2));
  }
  return mean_of(s);
}

SrScore score_sr(const Image& hr, const Image& upscaled, int scale) {
  if (hr.channels != 3 || upscaled.channels != 3 || hr.width != upscaled.width || hr.height != upscaled.height)
    throw std::invalid_argument("score_sr: the images must be RGB of the same size (HR " + std::to_string(hr.width) +
                                "x" + std::to_string(hr.height) + ", upscaled " + std::to_string(upscaled.width) + "x" +
                                std::to_string(upscaled.height) + ")");
  const std::vector<double> a = luma_bt601(hr), b = luma_bt601(upscaled);
  return {psnr_y(a, b, hr.height, hr.width, scale), ssim_y(a, b, hr.height, hr.width, scale)};
}

Image bicubic_upscale(const Image& lr, int scale) {
  if (lr.channels != 3 || scale < 1) throw std::invalid_argument("bicubic_upscale: an RGB image and a scale >= 1");
  const std::vector<uint8_t> planar = planar_from_image(lr);
  std::vector<double> x(planar.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = planar[i] / 255.0;
  const int h = lr.height * scale, w = lr.width * scale;
  std::vector<double> y(size_t(3) * h * w);
  ref::resize_bicubic<double>(1, 3, lr.height, lr.width, h, w, x.data(), y.data());
  std::vector<uint8_t> bytes(y.size());
  for (size_t i = 0; i < y.size(); ++i)
    bytes[i] = static_cast<uint8_t>(std::lround(std::clamp(y[i] * 255.0, 0.0, 255.0)));
  return image_from_planar(bytes.data(), h, w);
}

SrSetScore score_sr_set(const std::vector<SrPair>& pairs, int scale, const Upscaler& upscale) {
  if (pairs.empty()) throw std::invalid_argument("score_sr_set: no images");
  SrSetScore set;
  for (const SrPair& pair : pairs) {
    SrImageScore s;
    s.name = pair.name;
    s.width = pair.hr.width;
    s.height = pair.hr.height;
    s.bicubic = score_sr(pair.hr, bicubic_upscale(pair.lr, scale), scale);
    s.method = upscale ? score_sr(pair.hr, upscale(pair.lr), scale) : s.bicubic;
    set.method_mean.psnr += s.method.psnr / double(pairs.size());
    set.method_mean.ssim += s.method.ssim / double(pairs.size());
    set.bicubic_mean.psnr += s.bicubic.psnr / double(pairs.size());
    set.bicubic_mean.ssim += s.bicubic.ssim / double(pairs.size());
    set.images.push_back(std::move(s));
  }
  return set;
}

}  // namespace gancu::eval
