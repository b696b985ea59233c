// write_loss_plot: a small raster line plot, drawn pixel by pixel so no plotting or font library is needed.
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include "tools/io/png.h"

namespace gancu {
namespace {

struct Rgb {
  uint8_t r, g, b;
};

// A 5x7 bitmap font: seven rows per glyph, bit 4 is the leftmost pixel. Lower case renders as upper case.
struct Glyph {
  char ch;
  std::array<uint8_t, 7> rows;
};
constexpr Glyph kFont[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}}, {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}}, {'/', {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}}, {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}}, {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
};
constexpr int kGlyphAdvance = 6;  // 5 pixels plus one of spacing

const Glyph& glyph_for(char c) {
  const char upper = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const Glyph& g : kFont)
    if (g.ch == upper) return g;
  return kFont[std::size(kFont) - 1];  // '?'
}

// Ten well-separated colours first; after that, hues spaced by the golden angle stay distinct from their neighbours.
Rgb series_colour(size_t i) {
  static constexpr Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                     {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                     {188, 189, 34},  {23, 190, 207}};
  if (i < std::size(kPalette)) return kPalette[i];
  const double hue = std::fmod(static_cast<double>(i) * 137.508, 360.0) / 60.0;
  const double x = 1.0 - std::fabs(std::fmod(hue, 2.0) - 1.0);
  double r = 0, g = 0, b = 0;
  switch (static_cast<int>(hue)) {
    case 0: r = 1, g = x; break;
    case 1: r = x, g = 1; break;
    case 2: g = 1, b = x; break;
    case 3: g = x, b = 1; break;
    case 4: r = x, b = 1; break;
    default: r = 1, b = x; break;
  }
  auto level = [](double v) { return static_cast<uint8_t>(40 + v * 180); };
  return {level(r), level(g), level(b)};
}

class Canvas {
 public:
  Canvas(int width, int height) {
    img_.width = width;
    img_.height = height;
    img_.channels = 3;
    img_.pixels.assign(static_cast<size_t>(width) * height * 3, 255);
  }
  void set(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= img_.width || y >= img_.height) return;
    uint8_t* p = &img_.pixels[(static_cast<size_t>(y) * img_.width + x) * 3];
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
  void fill_rect(int x0, int y0, int w, int h, Rgb c) {
    for (int y = y0; y < y0 + h; ++y)
      for (int x = x0; x < x0 + w; ++x) set(x, y, c);
  }
  // Bresenham, two pixels thick so thin lines stay visible.
  void line(int x0, int y0, int x1, int y1, Rgb c) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    while (true) {
      set(x0, y0, c);
      set(x0, y0 + 1, c);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }
  void text(int x, int y, const std::string& s, Rgb c) {
    for (char ch : s) {
      const Glyph& g = glyph_for(ch);
      for (int row = 0; row < 7; ++row)
        for (int col = 0; col < 5; ++col)
          if (g.rows[row] & (0x10 >> col)) set(x + col, y + row, c);
      x += kGlyphAdvance;
    }
  }
  Image& image() { return img_; }

 private:
  Image img_;
};

std::string format_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

void write_loss_plot(const std::string& path, const std::vector<std::pair<std::string, std::vector<double>>>& series,
                     int width, int height) {
  constexpr int kLeft = 64, kRight = 16, kTop = 16, kBottom = 28;
  if (width < kLeft + kRight + 32 || height < kTop + kBottom + 32)
    throw std::invalid_argument(path + ": plot size " + std::to_string(width) + "x" + std::to_string(height) +
                                " is too small");
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  size_t steps = 0;
  for (const auto& [name, values] : series) {
    steps = std::max(steps, values.size());
    for (double v : values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (!(lo <= hi)) lo = 0, hi = 1;  // nothing finite to show
  if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) lo -= 0.5, hi += 0.5;
  const double pad = 0.05 * (hi - lo);
  lo -= pad, hi += pad;

  Canvas canvas(width, height);
  const int plot_w = width - kLeft - kRight, plot_h = height - kTop - kBottom;
  const int x_axis = kTop + plot_h, y_axis = kLeft;
  auto px = [&](size_t step) {
    return steps <= 1 ? kLeft : kLeft + static_cast<int>(std::lround(double(step) * plot_w / double(steps - 1)));
  };
  auto py = [&](double v) { return kTop + static_cast<int>(std::lround((hi - v) / (hi - lo) * plot_h)); };

  const Rgb black{0, 0, 0}, grey{225, 225, 225};
  for (int i = 1; i < 4; ++i) canvas.fill_rect(kLeft, kTop + i * plot_h / 4, plot_w, 1, grey);  // guide lines
  canvas.fill_rect(y_axis, kTop, 1, plot_h + 1, black);
  canvas.fill_rect(y_axis, x_axis, plot_w + 1, 1, black);
  const std::string top_label = format_value(hi), bottom_label = format_value(lo);
  canvas.text(kLeft - 4 - kGlyphAdvance * static_cast<int>(top_label.size()), kTop, top_label, black);
  canvas.text(kLeft - 4 - kGlyphAdvance * static_cast<int>(bottom_label.size()), x_axis - 7, bottom_label, black);
  canvas.text(kLeft, x_axis + 6, "0", black);
  const std::string last_step = std::to_string(steps ? steps - 1 : 0);
  canvas.text(kLeft + plot_w - kGlyphAdvance * static_cast<int>(last_step.size()), x_axis + 6, last_step, black);
  canvas.text(kLeft + plot_w / 2 - 2 * kGlyphAdvance, x_axis + 6, "STEP", black);

  for (size_t s = 0; s < series.size(); ++s) {
    const Rgb colour = series_colour(s);
    const std::vector<double>& values = series[s].second;
    bool have_previous = false;
    int prev_x = 0, prev_y = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) {
        have_previous = false;  // a gap, not a line through garbage
        continue;
      }
      const int x = px(i), y = py(values[i]);
      if (have_previous) canvas.line(prev_x, prev_y, x, y, colour);
      else canvas.fill_rect(x - 1, y - 1, 3, 3, colour);
      prev_x = x, prev_y = y, have_previous = true;
    }
  }

  // Legend in the top-right corner: a swatch and the name per series, on a white box so lines do not obscure it.
  size_t longest = 0;
  for (const auto& [name, values] : series) longest = std::max(longest, name.size());
  const int legend_w = 12 + 6 + kGlyphAdvance * static_cast<int>(longest) + 8;
  const int legend_x = kLeft + plot_w - legend_w - 4, legend_y = kTop + 4;
  if (!series.empty()) {
    canvas.fill_rect(legend_x, legend_y, legend_w, 12 * static_cast<int>(series.size()) + 4, {255, 255, 255});
    for (size_t s = 0; s < series.size(); ++s) {
      const int y = legend_y + 4 + 12 * static_cast<int>(s);
      canvas.fill_rect(legend_x + 4, y, 12, 7, series_colour(s));
      canvas.text(legend_x + 4 + 12 + 6, y, series[s].first, black);
    }
  }
  write_png(path, canvas.image());
}

}  // namespace gancu
