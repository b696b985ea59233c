// Reference antialiased bicubic resize. Separable: each axis gets a table of (first input index, normalised weights)
// per output index, built as PIL's ImagingResample and PyTorch's _compute_indices_weights_aa do; then a horizontal
// pass into a double buffer and a vertical pass into y.
#include "kernels/cpu/resize.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace gancu::ref {
namespace {

// Keys cubic convolution kernel with a = −0.5 (PIL and PyTorch antialias use −0.5; plain bicubic uses −0.75).
double keys_cubic(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// Output o reads input[first + k]·weights[k] for k < weights.size().
struct AxisTap {
  int first = 0;
  std::vector<double> weights;
};

// When shrinking, the kernel is stretched by the scale (in/out) so it low-pass filters; the support (2 for cubic)
// widens accordingly. Taps that fall outside the image are dropped and the rest renormalised to sum to 1.
std::vector<AxisTap> axis_taps(int in_size, int out_size) {
  const double scale = double(in_size) / double(out_size);
  const double stretch = std::max(scale, 1.0);
  const double support = 2.0 * stretch;
  std::vector<AxisTap> taps(static_cast<size_t>(out_size));
  for (int o = 0; o < out_size; ++o) {
    const double center = scale * (o + 0.5);
    // Truncation toward zero, as in PIL and PyTorch; the clamp makes it agree with floor for negative values.
    const int first = std::max(int(center - support + 0.5), 0);
    const int last = std::min(int(center + support + 0.5), in_size);
    AxisTap& tap = taps[size_t(o)];
    tap.first = first;
    double total = 0;
    for (int i = first; i < last; ++i) {
      const double w = keys_cubic((i - center + 0.5) / stretch);
      tap.weights.push_back(w);
      total += w;
    }
    if (total != 0)
      for (double& w : tap.weights) w /= total;
  }
  return taps;
}

}  // namespace

template <class T>
void resize_bicubic(int batch, int channels, int in_h, int in_w, int out_h, int out_w, const T* x, T* y) {
  if (in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1) throw std::invalid_argument("resize_bicubic: empty image");
  const std::vector<AxisTap> rows = axis_taps(in_h, out_h);
  const std::vector<AxisTap> cols = axis_taps(in_w, out_w);
  std::vector<double> horizontal(size_t(in_h) * out_w);
  for (int64_t plane = 0; plane < int64_t(batch) * channels; ++plane) {
    const T* src = x + plane * in_h * in_w;
    T* dst = y + plane * out_h * out_w;
    for (int r = 0; r < in_h; ++r)
      for (int c = 0; c < out_w; ++c) {
        const AxisTap& tap = cols[size_t(c)];
        double sum = 0;
        for (size_t k = 0; k < tap.weights.size(); ++k)
          sum += tap.weights[k] * double(src[int64_t(r) * in_w + tap.first + int64_t(k)]);
        horizontal[size_t(r) * out_w + c] = sum;
      }
    for (int r = 0; r < out_h; ++r) {
      const AxisTap& tap = rows[size_t(r)];
      for (int c = 0; c < out_w; ++c) {
        double sum = 0;
        for (size_t k = 0; k < tap.weights.size(); ++k)
          sum += tap.weights[k] * horizontal[(size_t(tap.first) + k) * out_w + c];
        dst[int64_t(r) * out_w + c] = T(sum);
      }
    }
  }
}

template <class T> void bicubic_downsample(int batch, int channels, int h, int w, int factor, const T* x, T* y) {
  if (factor < 1 || h % factor != 0 || w % factor != 0)
    throw std::invalid_argument("bicubic_downsample: the image size must be divisible by the factor");
  resize_bicubic(batch, channels, h, w, h / factor, w / factor, x, y);
}

template void resize_bicubic<float>(int, int, int, int, int, int, const float*, float*);
template void resize_bicubic<double>(int, int, int, int, int, int, const double*, double*);
template void bicubic_downsample<float>(int, int, int, int, int, const float*, float*);
template void bicubic_downsample<double>(int, int, int, int, int, const double*, double*);

}  // namespace gancu::ref
