// Reference elementwise and data-movement ops.
#include "kernels/cpu/elementwise.h"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/philox.h"

namespace gancu::ref {

template <class T> void add_forward(int64_t n, const T* a, const T* b, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = T(double(a[i]) + double(b[i]));
}

template <class T> void copy(int64_t n, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i];
}

template <class T> void scale(int64_t n, T alpha, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = T(double(alpha) * double(x[i]));
}

// PyTorch PixelShuffle: y[b, c, h·r + i, w·r + j] = x[b, c·r² + i·r + j, h, w]. Both directions walk the same index
// map; backward is its inverse permutation (a gather from dy).
template <class T> void pixel_shuffle_forward(int batch, int channels, int h, int w, int r, const T* x, T* y) {
  const int out_h = h * r, out_w = w * r;
  for (int b = 0; b < batch; ++b)
    for (int c = 0; c < channels; ++c)
      for (int i = 0; i < r; ++i)
        for (int j = 0; j < r; ++j) {
          const T* src = x + ((int64_t(b) * channels + c) * r * r + i * r + j) * h * w;
          T* dst = y + (int64_t(b) * channels + c) * out_h * out_w;
          for (int hh = 0; hh < h; ++hh)
            for (int ww = 0; ww < w; ++ww) dst[int64_t(hh * r + i) * out_w + ww * r + j] = src[int64_t(hh) * w + ww];
        }
}

template <class T> void pixel_shuffle_backward(int batch, int channels, int h, int w, int r, const T* dy, T* dx) {
  const int out_h = h * r, out_w = w * r;
  for (int b = 0; b < batch; ++b)
    for (int c = 0; c < channels; ++c)
      for (int i = 0; i < r; ++i)
        for (int j = 0; j < r; ++j) {
          T* dst = dx + ((int64_t(b) * channels + c) * r * r + i * r + j) * h * w;
          const T* src = dy + (int64_t(b) * channels + c) * out_h * out_w;
          for (int hh = 0; hh < h; ++hh)
            for (int ww = 0; ww < w; ++ww) dst[int64_t(hh) * w + ww] = src[int64_t(hh * r + i) * out_w + ww * r + j];
        }
}

// Concat and slice copy whole runs: one example's channels·inner values of a tensor are contiguous.
template <class T>
void concat_channels(int batch, int inner, int num_inputs, const T* const* xs, const int* channels, T* y) {
  int64_t row = 0;  // values of one example of y
  for (int i = 0; i < num_inputs; ++i) row += int64_t(channels[i]) * inner;
  int64_t column = 0;  // where input i's values start within an example of y
  for (int i = 0; i < num_inputs; ++i) {
    const int64_t width = int64_t(channels[i]) * inner;
    for (int b = 0; b < batch; ++b)
      for (int64_t k = 0; k < width; ++k) y[b * row + column + k] = xs[i][b * width + k];
    column += width;
  }
}

template <class T>
void channel_slice(int batch, int channels_x, int begin, int channels_y, int inner, const T* x, T* y) {
  if (begin < 0 || channels_y < 0 || begin + channels_y > channels_x)
    throw std::invalid_argument("channel_slice: channels [" + std::to_string(begin) + ", " +
                                std::to_string(begin + channels_y) + ") outside [0, " + std::to_string(channels_x) + ")");
  const int64_t width_x = int64_t(channels_x) * inner, width_y = int64_t(channels_y) * inner;
  for (int b = 0; b < batch; ++b)
    for (int64_t k = 0; k < width_y; ++k) y[b * width_y + k] = x[b * width_x + int64_t(begin) * inner + k];
}

template <class T> void one_hot(int batch, int classes, int spatial, const T* labels, T* y) {
  for (int b = 0; b < batch; ++b) {
    const T label = labels[b];
    if (!(label >= 0 && label < T(classes) && label == std::floor(label))) {
      std::ostringstream message;
      message << "one_hot: label " << double(label) << " of example " << b << " is not a class index in [0, "
              << classes << ")";
      throw std::invalid_argument(message.str());
    }
  }
  for (int b = 0; b < batch; ++b)
    for (int k = 0; k < classes; ++k) {
      const T value = int(labels[b]) == k ? T(1) : T(0);
      T* plane = y + (int64_t(b) * classes + k) * spatial;
      for (int s = 0; s < spatial; ++s) plane[s] = value;
    }
}

// The keep test compares the float uniform, widened to double, against p in double; other backends must do the same
// so that masks agree bit for bit. p = 1 drops everything (the uniform is at most 1), with a zero mask, not 0·∞.
template <class T>
void dropout_forward(int64_t n, double p, uint64_t seed, uint64_t stream, const T* x, T* y, T* mask) {
  if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument("dropout probability must be in [0, 1]");
  const T keep_scale = p < 1.0 ? T(1.0 / (1.0 - p)) : T(0);
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = double(philox_uniform_at(seed, stream, uint64_t(i))) > p;
    mask[i] = keep ? keep_scale : T(0);
    y[i] = T(double(x[i]) * double(mask[i]));
  }
}

template <class T> void dropout_backward(int64_t n, const T* mask, const T* dy, T* dx) {
  for (int64_t i = 0; i < n; ++i) dx[i] = T(double(dy[i]) * double(mask[i]));
}

#define GANCU_INSTANTIATE_ELEMENTWISE(T)                                                                    \
  template void add_forward<T>(int64_t, const T*, const T*, T*);                                           \
  template void copy<T>(int64_t, const T*, T*);                                                            \
  template void scale<T>(int64_t, T, const T*, T*);                                                        \
  template void pixel_shuffle_forward<T>(int, int, int, int, int, const T*, T*);                           \
  template void pixel_shuffle_backward<T>(int, int, int, int, int, const T*, T*);                          \
  template void concat_channels<T>(int, int, int, const T* const*, const int*, T*);                        \
  template void channel_slice<T>(int, int, int, int, int, const T*, T*);                                   \
  template void one_hot<T>(int, int, int, const T*, T*);                                                   \
  template void dropout_forward<T>(int64_t, double, uint64_t, uint64_t, const T*, T*, T*);                 \
  template void dropout_backward<T>(int64_t, const T*, const T*, T*);
GANCU_INSTANTIATE_ELEMENTWISE(float)
GANCU_INSTANTIATE_ELEMENTWISE(double)
#undef GANCU_INSTANTIATE_ELEMENTWISE

}  // namespace gancu::ref
