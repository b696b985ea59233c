// PNG images through libpng: reading any common PNG as 8-bit grey or RGB, writing atomically, tiling a batch of
// generated images into one grid, and a dependency-free loss plot.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gancu {

struct Image {
  int width = 0, height = 0, channels = 0;  // channels: 1 grey, 3 RGB (4 RGBA accepted by write_png)
  std::vector<uint8_t> pixels;              // HWC, row-major, tightly packed
};

// The most pixels a PNG may have (16384 x 16384), checked against the header before anything is allocated.
inline constexpr uint64_t kMaxPngPixels = uint64_t{1} << 28;

// Grey, grey+alpha, RGB, RGBA, palette and 16-bit files all come back as 8-bit grey (1 channel) or RGB (3);
// alpha is dropped, not composited. Throws std::runtime_error("<path>: <problem>") on unreadable or corrupt files,
// and on a header declaring more than kMaxPngPixels pixels, or more than the rest of the file could inflate to, which
// are refused before the image is allocated.
Image read_png(const std::string& path);
// Encodes in memory, then write_file_atomic.
void write_png(const std::string& path, const Image& img);
// Decodes/encodes PNG bytes; `name` only labels error messages.
Image decode_png(const std::string& name, const void* data, size_t size);
std::string encode_png(const std::string& name, const Image& img);

// A generated value in [-1, 1] as a byte: round((x + 1) · 127.5), clamped to [0, 255]; NaN maps to 0 rather than to an
// undefined conversion. Sample grids and the images FID compares (tools/eval/images.h) both round this way.
uint8_t byte_from_unit(float v);

// n images [n, channels, h, w] with values in [-1, 1] → one image with min(nrow, n) columns, `padding` black pixels
// between and around the tiles (torchvision.utils.make_grid with value_range (-1, 1)). Values map to bytes by
// byte_from_unit.
Image make_grid(const float* images, int n, int channels, int h, int w, int nrow, int padding = 2);

// A line plot of each series (one value per entry of `steps`, the x axis) in distinct colours: the raw values faint,
// smoothed by smooth_ema (tools/io/plot.h) in bold, the y axis over their outlier_free_range (rarer spikes are cut at
// the frame); axes with round-number ticks and labels ("step", "loss") and a legend (colour swatch + name in a
// built-in 5x7 bitmap font). Non-finite values leave gaps. Throws std::invalid_argument for a series whose length is
// not that of `steps`, or a size too small to draw in.
void write_loss_plot(const std::string& path, const std::vector<double>& steps,
                     const std::vector<std::pair<std::string, std::vector<double>>>& series, int width = 800,
                     int height = 400);

}  // namespace gancu
