// write_loss_plot: a small raster line plot, drawn pixel by pixel so no plotting or font library is needed; and the
// smoothing, ticks and thinning that it shares with the run report's SVG plots (plot.h).
#include "tools/io/plot.h"

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
    {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}}, {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
};
constexpr int kGlyphAdvance = 6;  // 5 pixels plus one of spacing

const Glyph& glyph_for(char c) {
  const char upper = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const Glyph& g : kFont)
    if (g.ch == upper) return g;
  return kFont[std::size(kFont) - 1];  // '?'
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
  // Bresenham, `thickness` pixels tall at each point.
  void line(int x0, int y0, int x1, int y1, Rgb c, int thickness) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    while (true) {
      for (int t = 0; t < thickness; ++t) set(x0, y0 + t - thickness / 2, c);
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
  // Text read bottom to top (a y axis label), starting at (x, y) and going up.
  void text_up(int x, int y, const std::string& s, Rgb c) {
    for (char ch : s) {
      const Glyph& g = glyph_for(ch);
      for (int row = 0; row < 7; ++row)
        for (int col = 0; col < 5; ++col)
          if (g.rows[row] & (0x10 >> col)) set(x + row, y - col, c);
      y -= kGlyphAdvance;
    }
  }
  Image& image() { return img_; }

 private:
  Image img_;
};


int text_width(const std::string& s) { return kGlyphAdvance * static_cast<int>(s.size()) - 1; }

// A faint version of a series' colour, for its raw values behind the smoothed line.
Rgb faint(Rgb c) {
  auto mix = [](uint8_t v) { return static_cast<uint8_t>(255 - (255 - v) * 30 / 100); };
  return {mix(c.r), mix(c.g), mix(c.b)};
}

}  // namespace

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

double smoothing_weight(size_t points) {
  return std::clamp(1.0 - 20.0 / static_cast<double>(std::max<size_t>(points, 1)), 0.6, 0.99);
}

std::vector<double> smooth_ema(const std::vector<double>& values, double weight) {
  std::vector<double> smoothed(values.size());
  double last = 0;
  int64_t finite = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      smoothed[i] = values[i];
      continue;
    }
    last = last * weight + (1 - weight) * values[i];
    ++finite;
    const double debias = weight == 1.0 ? 1.0 : 1.0 - std::pow(weight, static_cast<double>(finite));
    smoothed[i] = last / debias;
  }
  return smoothed;
}

std::pair<double, double> outlier_free_range(std::vector<double> raw, const std::vector<double>& smoothed) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : smoothed)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  raw.erase(std::remove_if(raw.begin(), raw.end(), [](double v) { return !std::isfinite(v); }), raw.end());
  if (raw.empty()) return {lo, hi};
  std::sort(raw.begin(), raw.end());
  const size_t cut = raw.size() / 100;
  return {std::min(lo, raw[cut]), std::max(hi, raw[raw.size() - 1 - cut])};
}

AxisTicks nice_ticks(double lo, double hi, int target, bool expand) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (lo > hi) std::swap(lo, hi);
  if (!expand && lo > 0 && lo <= 0.1 * hi) lo = 0;  // a step axis that starts near 0 starts at 0
  if (hi - lo <= 1e-12 * std::max(1.0, std::max(std::fabs(lo), std::fabs(hi)))) {  // one value: a range around it
    const double half = std::max(0.5, std::fabs(lo) * 0.1);
    lo -= half, hi += half;
  }
  // The step of 1, 2, 5 or 10 times the power of ten below the exact step whose tick count is nearest the target.
  const double raw = (hi - lo) / std::max(target, 1);
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power;
  for (double m : {2.0, 5.0, 10.0})
    if (std::fabs((hi - lo) / (m * power) - target) < std::fabs((hi - lo) / step - target)) step = m * power;
  AxisTicks t;
  t.step = step;
  // Tick k is k·step (not lo + k·step), so ticks are exact multiples; a little slack absorbs rounding in lo/step.
  const double first = std::ceil(lo / step - 1e-9), last = std::floor(hi / step + 1e-9);
  if (expand) {
    t.lo = std::floor(lo / step + 1e-9) * step;
    t.hi = std::ceil(hi / step - 1e-9) * step;
  } else {
    t.lo = lo, t.hi = hi;
  }
  const double from = expand ? std::round(t.lo / step) : first, to = expand ? std::round(t.hi / step) : last;
  for (double k = from; k <= to && t.values.size() < 1000; ++k) t.values.push_back(k * step == 0 ? 0.0 : k * step);
  return t;
}

std::string tick_label(double value, double step) {
  if (std::fabs(value) < 1e-9 * step) value = 0;  // no "-0.00" from rounding
  char buf[48];
  const double magnitude = std::fabs(value);
  if (magnitude >= 1e6 && std::fmod(step, 1e5) == 0) {
    std::snprintf(buf, sizeof buf, "%gM", value / 1e6);
  } else if (magnitude >= 1e4 && std::fmod(step, 1e3) == 0) {
    std::snprintf(buf, sizeof buf, "%gk", value / 1e3);
  } else {
    const int decimals = std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 12);
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  }
  return buf;
}

std::vector<size_t> thin_curve(const std::vector<double>& values, size_t max_points) {
  const size_t n = values.size();
  std::vector<size_t> kept;
  if (n <= max_points) {
    for (size_t i = 0; i < n; ++i) kept.push_back(i);
    return kept;
  }
  const size_t buckets = std::max<size_t>(max_points / 2, 2) - 1;  // two points each, plus the first and the last
  kept.push_back(0);
  for (size_t b = 0; b < buckets; ++b) {
    const size_t begin = 1 + (n - 2) * b / buckets, end = 1 + (n - 2) * (b + 1) / buckets;
    size_t low = end, high = end;
    for (size_t i = begin; i < end; ++i) {
      if (!std::isfinite(values[i])) continue;
      if (low == end || values[i] < values[low]) low = i;
      if (high == end || values[i] > values[high]) high = i;
    }
    if (low == end) {  // nothing finite here: keep one point so the gap stays a gap
      if (begin < end) kept.push_back(begin);
      continue;
    }
    kept.push_back(std::min(low, high));
    if (low != high) kept.push_back(std::max(low, high));
  }
  kept.push_back(n - 1);
  return kept;
}

void write_loss_plot(const std::string& path, const std::vector<double>& steps,
                     const std::vector<std::pair<std::string, std::vector<double>>>& series, int width, int height) {
  constexpr int kLeft = 64, kRight = 16, kTop = 24, kBottom = 34;
  if (width < kLeft + kRight + 32 || height < kTop + kBottom + 32)
    throw std::invalid_argument(path + ": plot size " + std::to_string(width) + "x" + std::to_string(height) +
                                " is too small");
  for (const auto& [name, values] : series)
    if (values.size() != steps.size())
      throw std::invalid_argument(path + ": series " + name + " has " + std::to_string(values.size()) + " values for " +
                                  std::to_string(steps.size()) + " steps");
  // The curves drawn: each series raw (faint) and smoothed (bold), in the same colour.
  std::vector<std::vector<double>> smoothed;
  for (const auto& [name, values] : series) smoothed.push_back(smooth_ema(values, smoothing_weight(values.size())));
  double first = std::numeric_limits<double>::infinity(), last = -first;
  std::vector<double> raw, all_smoothed;
  for (size_t s = 0; s < series.size(); ++s)
    for (size_t i = 0; i < steps.size(); ++i)
      if (std::isfinite(series[s].second[i]) && std::isfinite(steps[i])) {
        raw.push_back(series[s].second[i]), all_smoothed.push_back(smoothed[s][i]);
        first = std::min(first, steps[i]), last = std::max(last, steps[i]);
      }
  auto [lo, hi] = outlier_free_range(std::move(raw), all_smoothed);
  if (!(lo <= hi)) lo = 0, hi = 1, first = 0, last = 1;  // nothing finite to show
  if (first == last) last = first + 1;
  const AxisTicks y_ticks = nice_ticks(lo, hi, std::max(2, (height - kTop - kBottom) / 60), true);
  const AxisTicks x_ticks = nice_ticks(first, last, std::max(2, (width - kLeft - kRight) / 110), false);

  Canvas canvas(width, height);
  const int plot_w = width - kLeft - kRight, plot_h = height - kTop - kBottom;
  const int x_axis = kTop + plot_h;
  auto px = [&](double step) {
    return kLeft + static_cast<int>(std::lround((step - x_ticks.lo) / (x_ticks.hi - x_ticks.lo) * plot_w));
  };
  auto py = [&](double v) {  // the rare spikes outside the range are cut at the frame
    const double clamped = std::clamp(v, y_ticks.lo, y_ticks.hi);
    return kTop + static_cast<int>(std::lround((y_ticks.hi - clamped) / (y_ticks.hi - y_ticks.lo) * plot_h));
  };

  const Rgb black{0, 0, 0}, grey{232, 232, 232}, dark_grey{96, 96, 96};
  for (double v : y_ticks.values) {
    const int y = py(v);
    if (y > kTop && y < x_axis) canvas.fill_rect(kLeft + 1, y, plot_w, 1, grey);
    canvas.fill_rect(kLeft - 4, y, 4, 1, black);
    const std::string label = tick_label(v, y_ticks.step);
    canvas.text(kLeft - 7 - text_width(label), y - 3, label, black);
  }
  for (double v : x_ticks.values) {
    const int x = px(v);
    if (x > kLeft) canvas.fill_rect(x, kTop, 1, plot_h, grey);
    canvas.fill_rect(x, x_axis + 1, 1, 4, black);
    const std::string label = tick_label(v, x_ticks.step);
    canvas.text(std::clamp(x - text_width(label) / 2, 0, width - text_width(label)), x_axis + 8, label, black);
  }
  canvas.fill_rect(kLeft, kTop, 1, plot_h + 1, black);
  canvas.fill_rect(kLeft, x_axis, plot_w + 1, 1, black);
  canvas.text(kLeft + plot_w / 2 - text_width("step") / 2, x_axis + 22, "step", black);
  canvas.text_up(6, kTop + plot_h / 2 + text_width("loss") / 2, "loss", black);

  auto draw = [&](const std::vector<double>& values, Rgb colour, int thickness) {
    bool have_previous = false;
    int prev_x = 0, prev_y = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i]) || !std::isfinite(steps[i])) {
        have_previous = false;  // a gap, not a line through garbage
        continue;
      }
      const int x = px(steps[i]), y = py(values[i]);
      if (have_previous) canvas.line(prev_x, prev_y, x, y, colour, thickness);
      else canvas.fill_rect(x - 1, y - 1, 3, 3, colour);
      prev_x = x, prev_y = y, have_previous = true;
    }
  };
  for (size_t s = 0; s < series.size(); ++s) draw(series[s].second, faint(series_colour(s)), 1);
  for (size_t s = 0; s < series.size(); ++s) draw(smoothed[s], series_colour(s), 3);

  // The legend above the plot, so it hides no line: a swatch and the name per series (wrapping to more rows would
  // need a taller margin; names that do not fit are cut at the edge), and how the curves were drawn, on the right.
  char note[64];
  std::snprintf(note, sizeof note, "faint: raw, bold: ema %.2f", smoothing_weight(steps.size()));
  if (!series.empty()) canvas.text(kLeft + plot_w - text_width(note), 6, note, dark_grey);
  int legend_x = kLeft;
  for (size_t s = 0; s < series.size(); ++s) {
    canvas.fill_rect(legend_x, 8, 14, 3, series_colour(s));
    canvas.text(legend_x + 14 + 5, 6, series[s].first, black);
    legend_x += 14 + 5 + text_width(series[s].first) + 14;
  }
  write_png(path, canvas.image());
}

}  // namespace gancu
