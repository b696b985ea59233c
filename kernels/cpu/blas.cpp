// Fast single-precision CPU convolutions and linear layers: im2col/col2im around OpenBLAS sgemm.
//
// Both convolution types reduce to one "window geometry": a k×k window with stride s and padding p slid over an image
// [channels, height, width] on a grid of grid_h × grid_w positions. Its column matrix col[channels·k·k, grid_h·grid_w]
// holds, in row (c, kh, kw) and column (gh, gw), the image value at (c, gh·s − p + kh, gw·s − p + kw) or 0 outside.
//   conv2d:           the image is x (grid = y's spatial size);   y = W[Cout, Cin·k·k] · col
//   conv_transpose2d: the image is y (grid = x's spatial size);   col = W[Cin, Cout·k·k]ᵀ · x, y = col2im(col)
// Each pass then is one GEMM per image plus an im2col or a col2im; backward_weight sums the images' GEMMs (beta = 1).
//
// Two shapes skip the column buffer entirely:
//   identity windows (1×1 kernel, stride 1, no padding): col is the image itself;
//   dense windows (the window covers the whole unpadded image once, e.g. DCGAN's 1×1 → 4×4 first generator layer and
//   4×4 → 1×1 last discriminator layer): each image is one column, so the whole batch is a single GEMM.
#include "kernels/cpu/blas.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

namespace gancu::blas {
namespace {

struct WindowGeometry {
  int channels, height, width;  // the image the window slides over
  int kernel, stride, pad;
  int grid_h, grid_w;  // window positions
  int64_t col_rows() const { return int64_t(channels) * kernel * kernel; }
  int64_t col_cols() const { return int64_t(grid_h) * grid_w; }
  int64_t image_size() const { return int64_t(channels) * height * width; }
  bool is_identity() const {
    return kernel == 1 && stride == 1 && pad == 0 && grid_h == height && grid_w == width;
  }
  bool is_dense() const { return grid_h == 1 && grid_w == 1 && pad == 0 && height == kernel && width == kernel; }
};

WindowGeometry window_of(const Conv2dParams& p) {
  return {p.in_channels, p.in_h, p.in_w, p.kernel, p.stride, p.pad, p.out_h(), p.out_w()};
}
WindowGeometry window_of(const ConvTranspose2dParams& p) {
  return {p.out_channels, p.out_h(), p.out_w(), p.kernel, p.stride, p.pad, p.in_h, p.in_w};
}

// The window positions g in [begin, end) of a grid of `grid` whose image coordinate g·stride + offset lies in
// [0, size). Computing the range once keeps the inner copy loops free of bounds checks.
struct Range {
  int begin, end;
};
Range inside_positions(int offset, int stride, int size, int grid) {
  const int begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int end = size - 1 - offset < 0 ? 0 : (size - 1 - offset) / stride + 1;
  return {std::min(begin, grid), std::clamp(end, std::min(begin, grid), grid)};
}

void im2col(const WindowGeometry& g, const float* image, float* col) {
  const int k = g.kernel;
  for (int c = 0; c < g.channels; ++c) {
    const float* plane = image + int64_t(c) * g.height * g.width;
    for (int kh = 0; kh < k; ++kh) {
      const Range rows = inside_positions(kh - g.pad, g.stride, g.height, g.grid_h);
      for (int kw = 0; kw < k; ++kw) {
        const Range cols = inside_positions(kw - g.pad, g.stride, g.width, g.grid_w);
        float* row = col + ((int64_t(c) * k + kh) * k + kw) * g.col_cols();
        std::fill(row, row + int64_t(rows.begin) * g.grid_w, 0.0f);
        for (int gh = rows.begin; gh < rows.end; ++gh) {
          float* out = row + int64_t(gh) * g.grid_w;
          const float* in = plane + int64_t(gh * g.stride - g.pad + kh) * g.width + (kw - g.pad);
          std::fill(out, out + cols.begin, 0.0f);
          if (g.stride == 1) {
            std::copy(in + cols.begin, in + cols.end, out + cols.begin);
          } else {
            for (int gw = cols.begin; gw < cols.end; ++gw) out[gw] = in[gw * g.stride];
          }
          std::fill(out + cols.end, out + g.grid_w, 0.0f);
        }
        std::fill(row + int64_t(rows.end) * g.grid_w, row + g.col_cols(), 0.0f);
      }
    }
  }
}

// The adjoint of im2col: every column entry is added back onto the image pixel it was read from (image overwritten).
void col2im(const WindowGeometry& g, const float* col, float* image) {
  std::fill(image, image + g.image_size(), 0.0f);
  const int k = g.kernel;
  for (int c = 0; c < g.channels; ++c) {
    float* plane = image + int64_t(c) * g.height * g.width;
    for (int kh = 0; kh < k; ++kh) {
      const Range rows = inside_positions(kh - g.pad, g.stride, g.height, g.grid_h);
      for (int kw = 0; kw < k; ++kw) {
        const Range cols = inside_positions(kw - g.pad, g.stride, g.width, g.grid_w);
        const float* row = col + ((int64_t(c) * k + kh) * k + kw) * g.col_cols();
        for (int gh = rows.begin; gh < rows.end; ++gh) {
          const float* in = row + int64_t(gh) * g.grid_w;
          float* out = plane + int64_t(gh * g.stride - g.pad + kh) * g.width + (kw - g.pad);
          for (int gw = cols.begin; gw < cols.end; ++gw) out[gw * g.stride] += in[gw];
        }
      }
    }
  }
}

// Row-major C[m, n] = alpha·op(A)·op(B) + beta·C with A [m, k] (or [k, m] when transposed) and B likewise.
void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, const float* a, const float* b,
          float beta, float* c) {
  const auto lda = static_cast<int>(transpose_a ? m : k);
  const auto ldb = static_cast<int>(transpose_b ? k : n);
  cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.0f, a, lda, b, ldb, beta, c,
              static_cast<int>(n));
}

// y[n, c, :] += bias[c] over `spatial` elements per channel.
void add_channel_bias(int batch, int channels, int64_t spatial, const float* bias, float* y) {
  for (int n = 0; n < batch; ++n)
    for (int c = 0; c < channels; ++c) {
      float* plane = y + (int64_t(n) * channels + c) * spatial;
      for (int64_t i = 0; i < spatial; ++i) plane[i] += bias[c];
    }
}

}  // namespace

int64_t conv_scratch_floats(const Conv2dParams& p) { return window_of(p).col_rows() * window_of(p).col_cols(); }
int64_t conv_scratch_floats(const ConvTranspose2dParams& p) {
  return window_of(p).col_rows() * window_of(p).col_cols();
}

// ---- conv2d: image = x, y_n[Cout, OH·OW] = W[Cout, Cin·k·k] · col(x_n) ---------------------------------------------

void conv2d_forward(const Conv2dParams& p, const float* x, const float* weight, const float* bias, float* y,
                    float* scratch) {
  const WindowGeometry g = window_of(p);
  if (g.is_dense()) {  // y[N, Cout] = x[N, Cin·k·k] · Wᵀ
    gemm(false, true, p.batch, p.out_channels, g.col_rows(), x, weight, 0.0f, y);
  } else {
    for (int n = 0; n < p.batch; ++n) {
      const float* x_n = x + n * g.image_size();
      float* y_n = y + int64_t(n) * p.out_channels * g.col_cols();
      const float* col = x_n;
      if (!g.is_identity()) {
        im2col(g, x_n, scratch);
        col = scratch;
      }
      gemm(false, false, p.out_channels, g.col_cols(), g.col_rows(), weight, col, 0.0f, y_n);
    }
  }
  if (bias) add_channel_bias(p.batch, p.out_channels, g.col_cols(), bias, y);
}

void conv2d_backward_input(const Conv2dParams& p, const float* dy, const float* weight, float* dx, float* scratch) {
  const WindowGeometry g = window_of(p);
  if (g.is_dense()) {  // dx[N, Cin·k·k] = dy[N, Cout] · W
    gemm(false, false, p.batch, g.col_rows(), p.out_channels, dy, weight, 0.0f, dx);
    return;
  }
  for (int n = 0; n < p.batch; ++n) {
    const float* dy_n = dy + int64_t(n) * p.out_channels * g.col_cols();
    float* dx_n = dx + n * g.image_size();
    // dcol = Wᵀ · dy_n, then folded back onto the image.
    float* dcol = g.is_identity() ? dx_n : scratch;
    gemm(true, false, g.col_rows(), g.col_cols(), p.out_channels, weight, dy_n, 0.0f, dcol);
    if (!g.is_identity()) col2im(g, dcol, dx_n);
  }
}

void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dweight, float* scratch) {
  const WindowGeometry g = window_of(p);
  if (g.is_dense()) {  // dW[Cout, Cin·k·k] = dyᵀ · x
    gemm(true, false, p.out_channels, g.col_rows(), p.batch, dy, x, 0.0f, dweight);
    return;
  }
  for (int n = 0; n < p.batch; ++n) {
    const float* x_n = x + n * g.image_size();
    const float* dy_n = dy + int64_t(n) * p.out_channels * g.col_cols();
    const float* col = x_n;
    if (!g.is_identity()) {
      im2col(g, x_n, scratch);
      col = scratch;
    }
    // dW (+)= dy_n · colᵀ; the first image overwrites dW, the rest add to it.
    gemm(false, true, p.out_channels, g.col_rows(), g.col_cols(), dy_n, col, n == 0 ? 0.0f : 1.0f, dweight);
  }
}

// ---- conv_transpose2d: image = y, col = W[Cin, Cout·k·k]ᵀ · x_n, y_n = col2im(col) ----------------------------------

void conv_transpose2d_forward(const ConvTranspose2dParams& p, const float* x, const float* weight, const float* bias,
                              float* y, float* scratch) {
  const WindowGeometry g = window_of(p);
  if (g.is_dense()) {  // y[N, Cout·k·k] = x[N, Cin] · W
    gemm(false, false, p.batch, g.col_rows(), p.in_channels, x, weight, 0.0f, y);
  } else {
    for (int n = 0; n < p.batch; ++n) {
      const float* x_n = x + int64_t(n) * p.in_channels * g.col_cols();
      float* y_n = y + n * g.image_size();
      float* col = g.is_identity() ? y_n : scratch;
      gemm(true, false, g.col_rows(), g.col_cols(), p.in_channels, weight, x_n, 0.0f, col);
      if (!g.is_identity()) col2im(g, col, y_n);
    }
  }
  if (bias) add_channel_bias(p.batch, p.out_channels, int64_t(g.height) * g.width, bias, y);
}

void conv_transpose2d_backward_input(const ConvTranspose2dParams& p, const float* dy, const float* weight, float* dx,
                                     float* scratch) {
  const WindowGeometry g = window_of(p);
  if (g.is_dense()) {  // dx[N, Cin] = dy[N, Cout·k·k] · Wᵀ
    gemm(false, true, p.batch, p.in_channels, g.col_rows(), dy, weight, 0.0f, dx);
    return;
  }
  for (int n = 0; n < p.batch; ++n) {
    const float* dy_n = dy + n * g.image_size();
    float* dx_n = dx + int64_t(n) * p.in_channels * g.col_cols();
    const float* col = dy_n;
    if (!g.is_identity()) {
      im2col(g, dy_n, scratch);
      col = scratch;
    }
    gemm(false, false, p.in_channels, g.col_cols(), g.col_rows(), weight, col, 0.0f, dx_n);
  }
}

void conv_transpose2d_backward_weight(const ConvTranspose2dParams& p, const float* x, const float* dy, float* dweight,
                                      float* scratch) {
  const WindowGeometry g = window_of(p);
  if (g.is_dense()) {  // dW[Cin, Cout·k·k] = xᵀ · dy
    gemm(true, false, p.in_channels, g.col_rows(), p.batch, x, dy, 0.0f, dweight);
    return;
  }
  for (int n = 0; n < p.batch; ++n) {
    const float* x_n = x + int64_t(n) * p.in_channels * g.col_cols();
    const float* dy_n = dy + n * g.image_size();
    const float* col = dy_n;
    if (!g.is_identity()) {
      im2col(g, dy_n, scratch);
      col = scratch;
    }
    // dW (+)= x_n · colᵀ; the first image overwrites dW, the rest add to it.
    gemm(false, true, p.in_channels, g.col_rows(), g.col_cols(), x_n, col, n == 0 ? 0.0f : 1.0f, dweight);
  }
}

// ---- linear: y[N, out] = x[N, in] · W[out, in]ᵀ + b ---------------------------------------------------------------

void linear_forward(const LinearParams& p, const float* x, const float* weight, const float* bias, float* y) {
  gemm(false, true, p.batch, p.out_features, p.in_features, x, weight, 0.0f, y);
  if (bias) add_channel_bias(p.batch, p.out_features, 1, bias, y);
}

void linear_backward_input(const LinearParams& p, const float* dy, const float* weight, float* dx) {
  gemm(false, false, p.batch, p.in_features, p.out_features, dy, weight, 0.0f, dx);
}

void linear_backward_weight(const LinearParams& p, const float* x, const float* dy, float* dweight) {
  gemm(true, false, p.out_features, p.in_features, p.batch, dy, x, 0.0f, dweight);
}

}  // namespace gancu::blas
