// Fast single-precision CPU convolutions and linear layers: im2col/col2im around OpenBLAS sgemm.
//
// Both convolution types reduce to one "window geometry": a k×k window with stride s and padding p slid over an image
// [channels, height, width] on a grid of grid_h × grid_w positions. Its column matrix col[channels·k·k, grid_h·grid_w]
// holds, in row (c, kh, kw) and column (gh, gw), the image value at (c, gh·s − p + kh, gw·s − p + kw) or 0 outside.
//   conv2d:           the image is x (grid = y's spatial size);   y = W[Cout, Cin·k·k] · col
//   conv_transpose2d: the image is y (grid = x's spatial size);   col = W[Cin, Cout·k·k]ᵀ · x, y = col2im(col)
//
// Images are processed in chunks that share one GEMM (DCGAN's small maps, 4×4 and 8×8, give a per-image GEMM only 16
// or 64 columns, far too few for OpenBLAS to run efficiently; a chunk gives it thousands). Inside a chunk every
// tensor is held "images innermost": an NCHW block [images, C, H, W] becomes [C, H, W, images], and the chunk's
// column matrix is col[channels·k·k, grid_h·grid_w·images] with column (gh, gw, n). Then im2col and col2im move runs
// of `images` contiguous floats (instead of rows of 4 or 8 strided ones), the grid-shaped tensor (y for conv2d, x for
// conv_transpose2d) is directly the GEMM's [C, grid_h·grid_w·images] operand, and only one transpose per tensor
// converts to and from NCHW. Chunks are sized so the column matrix stays under kMaxColumnFloats. The scratch holds
// one chunk's column matrix followed by one images-innermost tensor (the image or the grid-shaped one, in turn).
//
// Dense windows (the window covers the whole unpadded image once, e.g. DCGAN's 1×1 → 4×4 first generator layer and
// 4×4 → 1×1 last discriminator layer) skip the column buffer: each image is one column, so the whole batch is a single
// GEMM on the NCHW tensors as they are, with no scratch.
#include "kernels/cpu/blas.h"

#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace gancu::blas {
namespace {

// Upper bound on one chunk's column matrix (32 MB): large enough for thousands of GEMM columns at DCGAN's shapes.
constexpr int64_t kMaxColumnFloats = int64_t(1) << 23;

struct WindowGeometry {
  int channels, height, width;  // the image the window slides over
  int kernel, stride, pad;
  int grid_h, grid_w;  // window positions
  int64_t col_rows() const { return int64_t(channels) * kernel * kernel; }
  int64_t col_cols() const { return int64_t(grid_h) * grid_w; }
  int64_t image_size() const { return int64_t(channels) * height * width; }
  bool is_dense() const { return grid_h == 1 && grid_w == 1 && pad == 0 && height == kernel && width == kernel; }
};

WindowGeometry window_of(const Conv2dParams& p) {
  return {p.in_channels, p.in_h, p.in_w, p.kernel, p.stride, p.pad, p.out_h(), p.out_w()};
}
WindowGeometry window_of(const ConvTranspose2dParams& p) {
  return {p.out_channels, p.out_h(), p.out_w(), p.kernel, p.stride, p.pad, p.in_h, p.in_w};
}

// How a batch is cut into chunks of images that share one GEMM, and the scratch a chunk needs.
struct Chunking {
  int images;                  // images per chunk (the last chunk may hold fewer)
  int64_t col_floats;          // a full chunk's column matrix
  int64_t tensor_floats;       // a full chunk's larger images-innermost tensor: the image or the grid-shaped one
  int64_t scratch_floats() const { return col_floats + tensor_floats; }
};

Chunking chunking_of(const WindowGeometry& g, int batch, int grid_channels) {
  const int64_t per_image = std::max<int64_t>(1, g.col_rows() * g.col_cols());
  const int images = int(std::clamp<int64_t>(kMaxColumnFloats / per_image, 1, std::max(batch, 1)));
  return {images, per_image * images, std::max(g.image_size(), grid_channels * g.col_cols()) * images};
}
Chunking chunking_of(const Conv2dParams& p) { return chunking_of(window_of(p), p.batch, p.out_channels); }
Chunking chunking_of(const ConvTranspose2dParams& p) { return chunking_of(window_of(p), p.batch, p.in_channels); }

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

// NCHW block [images, channels, spatial] → images innermost [channels, spatial, images].
void to_images_innermost(int images, int64_t channels, int64_t spatial, const float* nchw, float* out) {
  for (int64_t c = 0; c < channels; ++c) {
    float* plane = out + c * spatial * images;
    for (int n = 0; n < images; ++n) {
      const float* in = nchw + (n * channels + c) * spatial;
      for (int64_t i = 0; i < spatial; ++i) plane[i * images + n] = in[i];
    }
  }
}

// Images innermost [channels, spatial, images] → NCHW block [images, channels, spatial], plus bias[c] if given.
void from_images_innermost(int images, int64_t channels, int64_t spatial, const float* in, const float* bias,
                           float* nchw) {
  for (int64_t c = 0; c < channels; ++c) {
    const float* plane = in + c * spatial * images;
    const float b = bias ? bias[c] : 0.0f;
    for (int n = 0; n < images; ++n) {
      float* out = nchw + (n * channels + c) * spatial;
      for (int64_t i = 0; i < spatial; ++i) out[i] = plane[i * images + n] + b;
    }
  }
}

// The chunk's column matrix col[(c, kh, kw), (gh, gw, n)] of an images-innermost image [C, H, W, images].
void im2col(const WindowGeometry& g, int images, const float* image, float* col) {
  const int k = g.kernel;
  const int64_t run = images;                    // one pixel of every image
  const int64_t grid_row = g.grid_w * run;       // one grid row of col
  for (int c = 0; c < g.channels; ++c) {
    const float* plane = image + int64_t(c) * g.height * g.width * run;
    for (int kh = 0; kh < k; ++kh) {
      const Range rows = inside_positions(kh - g.pad, g.stride, g.height, g.grid_h);
      for (int kw = 0; kw < k; ++kw) {
        const Range cols = inside_positions(kw - g.pad, g.stride, g.width, g.grid_w);
        float* row = col + ((int64_t(c) * k + kh) * k + kw) * g.col_cols() * run;
        std::fill(row, row + rows.begin * grid_row, 0.0f);
        for (int gh = rows.begin; gh < rows.end; ++gh) {
          float* out = row + gh * grid_row;
          const float* in = plane + (int64_t(gh * g.stride - g.pad + kh) * g.width + (kw - g.pad)) * run;
          std::fill(out, out + cols.begin * run, 0.0f);
          if (g.stride == 1) {  // the inside positions are one contiguous run of pixels
            std::copy(in + cols.begin * run, in + cols.end * run, out + cols.begin * run);
          } else {
            for (int gw = cols.begin; gw < cols.end; ++gw)
              std::copy(in + gw * g.stride * run, in + (gw * g.stride + 1) * run, out + gw * run);
          }
          std::fill(out + cols.end * run, out + grid_row, 0.0f);
        }
        std::fill(row + rows.end * grid_row, row + g.col_cols() * run, 0.0f);
      }
    }
  }
}

// The adjoint of im2col: every column entry is added back onto the pixel it was read from, giving an
// images-innermost image [C, H, W, images] (overwritten).
void col2im(const WindowGeometry& g, int images, const float* col, float* image) {
  const int64_t run = images;
  std::fill(image, image + g.image_size() * run, 0.0f);
  const int k = g.kernel;
  const int64_t grid_row = g.grid_w * run;
  for (int c = 0; c < g.channels; ++c) {
    float* plane = image + int64_t(c) * g.height * g.width * run;
    for (int kh = 0; kh < k; ++kh) {
      const Range rows = inside_positions(kh - g.pad, g.stride, g.height, g.grid_h);
      for (int kw = 0; kw < k; ++kw) {
        const Range cols = inside_positions(kw - g.pad, g.stride, g.width, g.grid_w);
        const float* row = col + ((int64_t(c) * k + kh) * k + kw) * g.col_cols() * run;
        for (int gh = rows.begin; gh < rows.end; ++gh) {
          const float* in = row + gh * grid_row;
          float* out = plane + (int64_t(gh * g.stride - g.pad + kh) * g.width + (kw - g.pad)) * run;
          if (g.stride == 1) {  // one contiguous run of pixels
            float* __restrict dst = out + cols.begin * run;
            const float* __restrict src = in + cols.begin * run;
            for (int64_t i = 0, n = (cols.end - cols.begin) * run; i < n; ++i) dst[i] += src[i];
            continue;
          }
          for (int gw = cols.begin; gw < cols.end; ++gw) {
            float* __restrict dst = out + gw * g.stride * run;
            const float* __restrict src = in + gw * run;
            for (int64_t i = 0; i < run; ++i) dst[i] += src[i];
          }
        }
      }
    }
  }
}

// Row-major C[m, n] = op(A)·op(B) + beta·C with A [m, k] (or [k, m] when transposed) and B likewise, all contiguous.
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

// Calls body(first_image, images) for each chunk of the batch.
template <typename Body>
void for_each_chunk(int batch, const Chunking& chunking, Body body) {
  for (int first = 0; first < batch; first += chunking.images) body(first, std::min(chunking.images, batch - first));
}

// A stride-1 convolution with fewer output than input channels is cheaper with its window slid over the output: it
// equals the transposed convolution of x by the flipped weight W̃[ci, co, kh, kw] = W[co, ci, k−1−kh, k−1−kw] with
// pad k−1−p, whose column matrix has Cout·k² rows instead of Cin·k². SRResNet's closing 9×9 convolution to RGB has
// 243 instead of 5184, and its GEMMs are no longer three rows tall.
bool window_on_output(const Conv2dParams& p) {
  return p.stride == 1 && p.out_channels < p.in_channels && p.pad <= p.kernel - 1 && !window_of(p).is_dense();
}

ConvTranspose2dParams as_transposed(const Conv2dParams& p) {
  return {.batch = p.batch, .in_channels = p.in_channels, .in_h = p.in_h, .in_w = p.in_w,
          .out_channels = p.out_channels, .kernel = p.kernel, .stride = 1, .pad = p.kernel - 1 - p.pad};
}

// W[co, ci, kh, kw] ↔ W̃[ci, co, k−1−kh, k−1−kw]; to_transposed picks the direction.
void flip_weight(const Conv2dParams& p, bool to_transposed, const float* in, float* out) {
  const int k = p.kernel;
  const int64_t window = int64_t(k) * k;
  for (int co = 0; co < p.out_channels; ++co)
    for (int ci = 0; ci < p.in_channels; ++ci) {
      const int64_t conv_at = (int64_t(co) * p.in_channels + ci) * window;
      const int64_t transposed_at = (int64_t(ci) * p.out_channels + co) * window;
      const float* src = in + (to_transposed ? conv_at : transposed_at);
      float* dst = out + (to_transposed ? transposed_at : conv_at);
      for (int64_t i = 0; i < window; ++i) dst[window - 1 - i] = src[i];
    }
}

}  // namespace

const char* openblas_core() { return openblas_get_corename(); }

bool openblas_runs_fallback_kernels() {
  // The pre-AVX cores OpenBLAS falls back to when it does not know the CPU.
  static constexpr std::string_view kFallbacks[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom"};
  return std::find(std::begin(kFallbacks), std::end(kFallbacks), std::string_view(openblas_core())) !=
         std::end(kFallbacks);
}

void reexec_with_best_openblas_core(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the user's choice, or already re-executed
  if (!openblas_runs_fallback_kernels()) return;
  __builtin_cpu_init();
  const char* best = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd"))
    best = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    best = "Haswell";
  // The binary's real path rather than /proc/self/exe, which would make the process's name "exe" (ps, pkill).
  char self[4096];
  const ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
  if (best == nullptr || length <= 0 || setenv("OPENBLAS_CORETYPE", best, 1) != 0) return;
  self[length] = '\0';
  execv(self, argv);
  unsetenv("OPENBLAS_CORETYPE");  // the exec failed: carry on with the fallback kernels, and say nothing
}

int64_t conv_scratch_floats(const Conv2dParams& p) {
  if (window_on_output(p)) return p.w_size() + conv_scratch_floats(as_transposed(p));  // W̃, then its scratch
  return window_of(p).is_dense() ? 0 : chunking_of(p).scratch_floats();
}
int64_t conv_scratch_floats(const ConvTranspose2dParams& p) {
  return window_of(p).is_dense() ? 0 : chunking_of(p).scratch_floats();
}

// ---- conv2d: image = x, y[Cout, OH·OW·chunk] = W[Cout, Cin·k·k] · col(x chunk) ---------------------------------------
// Scratch: col, then one images-innermost tensor (x, then y or dy; dx after the GEMM).

void conv2d_forward(const Conv2dParams& p, const float* x, const float* weight, const float* bias, float* y,
                    float* scratch) {
  if (window_on_output(p)) {
    flip_weight(p, true, weight, scratch);
    conv_transpose2d_forward(as_transposed(p), x, scratch, bias, y, scratch + p.w_size());
    return;
  }
  const WindowGeometry g = window_of(p);
  if (g.is_dense()) {  // y[N, Cout] = x[N, Cin·k·k] · Wᵀ
    gemm(false, true, p.batch, p.out_channels, g.col_rows(), x, weight, 0.0f, y);
    if (bias) add_channel_bias(p.batch, p.out_channels, 1, bias, y);
    return;
  }
  const Chunking chunking = chunking_of(p);
  float* col = scratch;
  float* tensor = scratch + chunking.col_floats;
  const int64_t x_spatial = int64_t(p.in_h) * p.in_w, y_spatial = g.col_cols();
  for_each_chunk(p.batch, chunking, [&](int first, int images) {
    to_images_innermost(images, p.in_channels, x_spatial, x + first * g.image_size(), tensor);
    im2col(g, images, tensor, col);
    gemm(false, false, p.out_channels, y_spatial * images, g.col_rows(), weight, col, 0.0f, tensor);
    from_images_innermost(images, p.out_channels, y_spatial, tensor, bias,
                          y + int64_t(first) * p.out_channels * y_spatial);
  });
}

void conv2d_backward_input(const Conv2dParams& p, const float* dy, const float* weight, float* dx, float* scratch) {
  if (window_on_output(p)) {
    flip_weight(p, true, weight, scratch);
    conv_transpose2d_backward_input(as_transposed(p), dy, scratch, dx, scratch + p.w_size());
    return;
  }
  const WindowGeometry g = window_of(p);
  if (g.is_dense()) {  // dx[N, Cin·k·k] = dy[N, Cout] · W
    gemm(false, false, p.batch, g.col_rows(), p.out_channels, dy, weight, 0.0f, dx);
    return;
  }
  const Chunking chunking = chunking_of(p);
  float* dcol = scratch;
  float* tensor = scratch + chunking.col_floats;
  const int64_t x_spatial = int64_t(p.in_h) * p.in_w, y_spatial = g.col_cols();
  for_each_chunk(p.batch, chunking, [&](int first, int images) {
    // dcol = Wᵀ · dy, then folded back onto the images.
    to_images_innermost(images, p.out_channels, y_spatial, dy + int64_t(first) * p.out_channels * y_spatial, tensor);
    gemm(true, false, g.col_rows(), y_spatial * images, p.out_channels, weight, tensor, 0.0f, dcol);
    col2im(g, images, dcol, tensor);
    from_images_innermost(images, p.in_channels, x_spatial, tensor, nullptr, dx + first * g.image_size());
  });
}

void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dweight, float* scratch) {
  if (window_on_output(p)) {
    conv_transpose2d_backward_weight(as_transposed(p), x, dy, scratch, scratch + p.w_size());
    flip_weight(p, false, scratch, dweight);
    return;
  }
  const WindowGeometry g = window_of(p);
  if (g.is_dense()) {  // dW[Cout, Cin·k·k] = dyᵀ · x
    gemm(true, false, p.out_channels, g.col_rows(), p.batch, dy, x, 0.0f, dweight);
    return;
  }
  const Chunking chunking = chunking_of(p);
  float* col = scratch;
  float* tensor = scratch + chunking.col_floats;
  const int64_t x_spatial = int64_t(p.in_h) * p.in_w, y_spatial = g.col_cols();
  for_each_chunk(p.batch, chunking, [&](int first, int images) {
    to_images_innermost(images, p.in_channels, x_spatial, x + first * g.image_size(), tensor);
    im2col(g, images, tensor, col);
    to_images_innermost(images, p.out_channels, y_spatial, dy + int64_t(first) * p.out_channels * y_spatial, tensor);
    // dW (+)= dy · colᵀ with the chunk's images in the reduction dimension; the first chunk overwrites dW.
    gemm(false, true, p.out_channels, g.col_rows(), y_spatial * images, tensor, col, first == 0 ? 0.0f : 1.0f,
         dweight);
  });
}

// ---- conv_transpose2d: image = y, col = W[Cin, Cout·k·k]ᵀ · x[Cin, IH·IW·chunk], y = col2im(col) ----------------------
// Scratch: col, then one images-innermost tensor (x or dx, and y or dy, in turn).

void conv_transpose2d_forward(const ConvTranspose2dParams& p, const float* x, const float* weight, const float* bias,
                              float* y, float* scratch) {
  const WindowGeometry g = window_of(p);
  if (g.is_dense()) {  // y[N, Cout·k·k] = x[N, Cin] · W
    gemm(false, false, p.batch, g.col_rows(), p.in_channels, x, weight, 0.0f, y);
    if (bias) add_channel_bias(p.batch, p.out_channels, int64_t(g.height) * g.width, bias, y);
    return;
  }
  const Chunking chunking = chunking_of(p);
  float* col = scratch;
  float* tensor = scratch + chunking.col_floats;
  const int64_t x_spatial = g.col_cols(), y_spatial = int64_t(g.height) * g.width;
  for_each_chunk(p.batch, chunking, [&](int first, int images) {
    to_images_innermost(images, p.in_channels, x_spatial, x + int64_t(first) * p.in_channels * x_spatial, tensor);
    gemm(true, false, g.col_rows(), x_spatial * images, p.in_channels, weight, tensor, 0.0f, col);
    col2im(g, images, col, tensor);
    from_images_innermost(images, p.out_channels, y_spatial, tensor, bias, y + first * g.image_size());
  });
}

void conv_transpose2d_backward_input(const ConvTranspose2dParams& p, const float* dy, const float* weight, float* dx,
                                     float* scratch) {
  const WindowGeometry g = window_of(p);
  if (g.is_dense()) {  // dx[N, Cin] = dy[N, Cout·k·k] · Wᵀ
    gemm(false, true, p.batch, p.in_channels, g.col_rows(), dy, weight, 0.0f, dx);
    return;
  }
  const Chunking chunking = chunking_of(p);
  float* col = scratch;
  float* tensor = scratch + chunking.col_floats;
  const int64_t x_spatial = g.col_cols(), y_spatial = int64_t(g.height) * g.width;
  for_each_chunk(p.batch, chunking, [&](int first, int images) {
    to_images_innermost(images, p.out_channels, y_spatial, dy + first * g.image_size(), tensor);
    im2col(g, images, tensor, col);
    gemm(false, false, p.in_channels, x_spatial * images, g.col_rows(), weight, col, 0.0f, tensor);
    from_images_innermost(images, p.in_channels, x_spatial, tensor, nullptr,
                          dx + int64_t(first) * p.in_channels * x_spatial);
  });
}

void conv_transpose2d_backward_weight(const ConvTranspose2dParams& p, const float* x, const float* dy, float* dweight,
                                      float* scratch) {
  const WindowGeometry g = window_of(p);
  if (g.is_dense()) {  // dW[Cin, Cout·k·k] = xᵀ · dy
    gemm(true, false, p.in_channels, g.col_rows(), p.batch, x, dy, 0.0f, dweight);
    return;
  }
  const Chunking chunking = chunking_of(p);
  float* col = scratch;
  float* tensor = scratch + chunking.col_floats;
  const int64_t x_spatial = g.col_cols(), y_spatial = int64_t(g.height) * g.width;
  for_each_chunk(p.batch, chunking, [&](int first, int images) {
    to_images_innermost(images, p.out_channels, y_spatial, dy + first * g.image_size(), tensor);
    im2col(g, images, tensor, col);
    to_images_innermost(images, p.in_channels, x_spatial, x + int64_t(first) * p.in_channels * x_spatial, tensor);
    // dW (+)= x · colᵀ with the chunk's images in the reduction dimension; the first chunk overwrites dW.
    gemm(false, true, p.in_channels, g.col_rows(), x_spatial * images, tensor, col, first == 0 ? 0.0f : 1.0f,
         dweight);
  });
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
