#include "tools/io/png.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "core/files.h"

namespace gancu {
namespace {

// libpng reports errors through a callback that must not return. It records the message and longjmps back to the
// setjmp in decode/encode; the functions holding that setjmp keep only trivially destructible locals, so the jump
// skips no destructor.
struct PngContext {
  const unsigned char* input = nullptr;  // decode: the file bytes
  size_t input_size = 0;
  size_t input_pos = 0;
  std::string* output = nullptr;  // encode: the growing file
  char error[200] = {};
};

void on_error(png_structp png, png_const_charp message) {
  auto* ctx = static_cast<PngContext*>(png_get_error_ptr(png));
  std::snprintf(ctx->error, sizeof ctx->error, "%s", message);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}  // warnings (e.g. bad CRC in ancillary chunks) are not fatal

void read_bytes(png_structp png, png_bytep out, png_size_t length) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  if (ctx->input_size - ctx->input_pos < length) png_error(png, "truncated file");
  std::memcpy(out, ctx->input + ctx->input_pos, length);
  ctx->input_pos += length;
}

void write_bytes(png_structp png, png_bytep data, png_size_t length) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  ctx->output->append(reinterpret_cast<const char*>(data), length);
}

void flush_nothing(png_structp) {}

// A header may declare up to libpng's own limit of 1,000,000 x 1,000,000 pixels, terabytes decoded. Refuses, before
// anything is sized by the header, an image over kMaxPngPixels or one whose scanlines the rest of the file cannot
// hold: deflate expands at most 1032:1 (a 258-byte match costs at least 2 bits), so `remaining` bytes inflate to
// at most 1032 x remaining, and the scanlines (interlaced or not) take at least width x height x bits per pixel / 8
// bytes.
void refuse_impossible_size(png_structp png, png_infop info, size_t remaining) {
  constexpr uint64_t kMaxDeflateRatio = 1032;
  const uint64_t width = png_get_image_width(png, info), height = png_get_image_height(png, info);
  const uint64_t bits_per_pixel = uint64_t{png_get_bit_depth(png, info)} * png_get_channels(png, info);
  char problem[160];
  if (width * height > kMaxPngPixels) {
    std::snprintf(problem, sizeof problem, "%llux%llu pixels, over the limit of %llu",
                  static_cast<unsigned long long>(width), static_cast<unsigned long long>(height),
                  static_cast<unsigned long long>(kMaxPngPixels));
    png_error(png, problem);
  }
  if (width * height * bits_per_pixel / 8 > kMaxDeflateRatio * remaining) {
    std::snprintf(problem, sizeof problem, "%llux%llu pixels, more than the %llu bytes after the header can hold",
                  static_cast<unsigned long long>(width), static_cast<unsigned long long>(height),
                  static_cast<unsigned long long>(remaining));
    png_error(png, problem);
  }
}

// The caller owns `img` and `rows`; they are sized through the callbacks below, never by locals of this function.
struct DecodeTarget {
  Image* img;
  std::vector<png_bytep>* rows;
};

bool decode_into(PngContext& ctx, DecodeTarget target) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
  if (!png) {
    std::snprintf(ctx.error, sizeof ctx.error, "out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    if (!ctx.error[0]) std::snprintf(ctx.error, sizeof ctx.error, "out of memory");
    return false;
  }
  png_set_read_fn(png, &ctx, read_bytes);
  png_read_info(png, info);
  refuse_impossible_size(png, info, ctx.input_size - ctx.input_pos);

  // Normalise every layout to 8-bit grey or RGB.
  const int color_type = png_get_color_type(png, info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  png_set_scale_16(png);
  png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  Image& img = *target.img;
  img.width = static_cast<int>(png_get_image_width(png, info));
  img.height = static_cast<int>(png_get_image_height(png, info));
  img.channels = png_get_channels(png, info);
  if (img.channels != 1 && img.channels != 3) png_error(png, "unexpected channel count after conversion");
  const size_t row_bytes = png_get_rowbytes(png, info);
  if (row_bytes != static_cast<size_t>(img.width) * img.channels) png_error(png, "unexpected row size");
  img.pixels.resize(row_bytes * img.height);
  target.rows->resize(img.height);
  for (int y = 0; y < img.height; ++y) (*target.rows)[y] = img.pixels.data() + row_bytes * y;
  png_read_image(png, target.rows->data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

bool encode_into(PngContext& ctx, const Image& img, std::vector<png_bytep>& rows) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
  if (!png) {
    std::snprintf(ctx.error, sizeof ctx.error, "out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, info ? &info : nullptr);
    if (!ctx.error[0]) std::snprintf(ctx.error, sizeof ctx.error, "out of memory");
    return false;
  }
  png_set_write_fn(png, &ctx, write_bytes, flush_nothing);
  const int color_type = img.channels == 1 ? PNG_COLOR_TYPE_GRAY
                         : img.channels == 3 ? PNG_COLOR_TYPE_RGB
                                             : PNG_COLOR_TYPE_RGB_ALPHA;
  png_set_IHDR(png, info, img.width, img.height, 8, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

Image decode_png(const std::string& name, const void* data, size_t size) {
  if (size < 8 || png_sig_cmp(static_cast<png_const_bytep>(data), 0, 8) != 0)
    throw std::runtime_error(name + ": not a PNG file (bad signature)");
  PngContext ctx;
  ctx.input = static_cast<const unsigned char*>(data);
  ctx.input_size = size;
  Image img;
  std::vector<png_bytep> rows;
  if (!decode_into(ctx, {&img, &rows})) throw std::runtime_error(name + ": corrupt PNG (" + ctx.error + ")");
  return img;
}

Image read_png(const std::string& path) {
  const std::vector<char> bytes = read_file(path);
  return decode_png(path, bytes.data(), bytes.size());
}

std::string encode_png(const std::string& name, const Image& img) {
  if (img.channels != 1 && img.channels != 3 && img.channels != 4)
    throw std::runtime_error(name + ": cannot write a PNG with " + std::to_string(img.channels) + " channels");
  if (img.width <= 0 || img.height <= 0 ||
      img.pixels.size() != static_cast<size_t>(img.width) * img.height * img.channels)
    throw std::runtime_error(name + ": image size " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                             "x" + std::to_string(img.channels) + " does not match its " +
                             std::to_string(img.pixels.size()) + " pixel bytes");
  std::string out;
  PngContext ctx;
  ctx.output = &out;
  std::vector<png_bytep> rows(img.height);
  const size_t row_bytes = static_cast<size_t>(img.width) * img.channels;
  // libpng's API is not const-correct; it only reads the rows.
  auto* base = const_cast<uint8_t*>(img.pixels.data());
  for (int y = 0; y < img.height; ++y) rows[y] = base + row_bytes * y;
  if (!encode_into(ctx, img, rows)) throw std::runtime_error(name + ": PNG encoding failed (" + ctx.error + ")");
  return out;
}

void write_png(const std::string& path, const Image& img) { write_file_atomic(path, encode_png(path, img)); }

uint8_t byte_from_unit(float v) {
  return std::isnan(v) ? uint8_t{0} : static_cast<uint8_t>(std::clamp(std::round((v + 1.0f) * 127.5f), 0.0f, 255.0f));
}

Image make_grid(const float* images, int n, int channels, int h, int w, int nrow, int padding) {
  if (n <= 0 || channels <= 0 || h <= 0 || w <= 0 || nrow <= 0 || padding < 0)
    throw std::invalid_argument("make_grid: n, channels, h, w and nrow must be positive, padding non-negative");
  const int cols = std::min(nrow, n);
  const int rows = (n + cols - 1) / cols;
  Image grid;
  grid.channels = channels;
  grid.width = cols * (w + padding) + padding;
  grid.height = rows * (h + padding) + padding;
  grid.pixels.assign(static_cast<size_t>(grid.width) * grid.height * channels, 0);
  for (int i = 0; i < n; ++i) {
    const int top = (i / cols) * (h + padding) + padding;
    const int left = (i % cols) * (w + padding) + padding;
    const float* image = images + static_cast<size_t>(i) * channels * h * w;
    for (int c = 0; c < channels; ++c)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          grid.pixels[(static_cast<size_t>(top + y) * grid.width + left + x) * channels + c] =
              byte_from_unit(image[(static_cast<size_t>(c) * h + y) * w + x]);
        }
  }
  return grid;
}

}  // namespace gancu
