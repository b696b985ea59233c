// svg_line_plot: line plots as inline SVG, with the ticks, smoothing and thinning of tools/io/plot.h.
#include "tools/io/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <tuple>

#include "tools/io/plot.h"

namespace gancu {
namespace {

std::string hex_colour(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

std::string number(double v) {  // SVG coordinates: a tenth of a pixel is plenty
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// About how wide a label is at the page's 11 px sans-serif font: enough to lay out legends and tick labels.
double text_width(const std::string& s) { return 6.2 * static_cast<double>(s.size()); }

struct Frame {
  double left, top, width, height;
  AxisTicks x, y;
  double px(double v) const { return left + (v - x.lo) / (x.hi - x.lo) * width; }
  double py(double v) const { return top + (y.hi - v) / (y.hi - y.lo) * height; }
};

// "M x y L x y ..." over the kept points, starting a new run after each non-finite point.
std::string path_data(const Frame& f, const std::vector<double>& x, const std::vector<double>& y, size_t max_points,
                      std::vector<std::pair<double, double>>* dots) {
  std::string d;
  bool pen_down = false;
  for (size_t i : thin_curve(y, max_points)) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) {
      pen_down = false;
      continue;
    }
    const double px = f.px(x[i]), py = f.py(std::clamp(y[i], f.y.lo, f.y.hi));
    d += (pen_down ? " L" : d.empty() ? "M" : " M") + number(px) + " " + number(py);
    pen_down = true;
    if (dots) dots->emplace_back(px, py);
  }
  return d;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string svg_line_plot(const SvgPlot& plot) {
  // Ranges over the finite points.
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (const SvgSeries& s : plot.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        x_lo = std::min(x_lo, s.x[i]), x_hi = std::max(x_hi, s.x[i]);
        y_lo = std::min(y_lo, s.y[i]), y_hi = std::max(y_hi, s.y[i]);
      }
  // A plot of smoothed curves only ignores the rarest raw spikes in its scaling (they are cut at the frame).
  if (!plot.fixed_y && std::all_of(plot.series.begin(), plot.series.end(),
                                   [](const SvgSeries& s) { return s.style == SvgSeries::kSmoothed; })) {
    std::vector<double> raw, smoothed;
    for (const SvgSeries& s : plot.series) {
      const std::vector<double> smooth = smooth_ema(s.y, smoothing_weight(s.y.size()));
      for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) raw.push_back(s.y[i]), smoothed.push_back(smooth[i]);
    }
    std::tie(y_lo, y_hi) = outlier_free_range(std::move(raw), smoothed);
  }
  const bool empty = !(x_lo <= x_hi);
  if (empty) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  if (x_lo == x_hi) x_lo -= 1, x_hi += 1;
  if (plot.fixed_y) y_lo = plot.y_lo, y_hi = plot.y_hi;

  // The legend's rows above the plot area, wrapped to the width.
  struct Entry {
    std::string name;
    std::string colour;
    bool dashed;
    double x;
    int row;
  };
  std::vector<Entry> legend;
  const double kLeft = 58, kRight = 14, kBottom = 42;
  double cursor = kLeft;
  int row = 0;
  for (size_t k = 0; k < plot.series.size(); ++k) {
    const SvgSeries& s = plot.series[k];
    const double w = 22 + text_width(s.name) + 16;
    if (cursor + w > plot.width - kRight && cursor > kLeft) cursor = kLeft, ++row;
    legend.push_back({s.name, hex_colour(series_colour(s.colour >= 0 ? size_t(s.colour) : k)), s.style == SvgSeries::kDashed,
                      cursor, row});
    cursor += w;
  }
  const double top = 14 + 16.0 * (legend.empty() ? 0 : row + 1);

  Frame f;
  f.left = kLeft, f.top = top, f.width = plot.width - kLeft - kRight, f.height = plot.height - top - kBottom;
  f.y = plot.fixed_y ? nice_ticks(y_lo, y_hi, 5, false) : nice_ticks(y_lo, y_hi, std::max(3, int(f.height / 45)), true);
  f.x = nice_ticks(x_lo, x_hi, std::max(3, int(f.width / 90)), false);

  std::string svg = "<svg id=\"" + html_escape(plot.id) + "\" class=\"plot\" viewBox=\"0 0 " + std::to_string(plot.width) +
                    " " + std::to_string(plot.height) + "\" role=\"img\" aria-label=\"" + html_escape(plot.y_label) +
                    " against " + html_escape(plot.x_label) + "\">\n";
  // Grid lines and ticks.
  for (double v : f.y.values) {
    const std::string y = number(f.py(v));
    svg += "<line class=\"grid\" x1=\"" + number(f.left) + "\" x2=\"" + number(f.left + f.width) + "\" y1=\"" + y +
           "\" y2=\"" + y + "\"/><text class=\"tick\" x=\"" + number(f.left - 6) + "\" y=\"" + y +
           "\" text-anchor=\"end\" dominant-baseline=\"middle\">" + tick_label(v, f.y.step) + "</text>\n";
  }
  for (double v : f.x.values) {
    const std::string x = number(f.px(v));
    svg += "<line class=\"grid\" x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + number(f.top) + "\" y2=\"" +
           number(f.top + f.height) + "\"/><text class=\"tick\" x=\"" + x + "\" y=\"" + number(f.top + f.height + 16) +
           "\" text-anchor=\"middle\">" + tick_label(v, f.x.step) + "</text>\n";
  }
  svg += "<rect class=\"frame\" x=\"" + number(f.left) + "\" y=\"" + number(f.top) + "\" width=\"" + number(f.width) +
         "\" height=\"" + number(f.height) + "\"/>\n";
  svg += "<text class=\"axis-label\" x=\"" + number(f.left + f.width / 2) + "\" y=\"" + number(plot.height - 6) +
         "\" text-anchor=\"middle\">" + html_escape(plot.x_label) + "</text>\n";
  svg += "<text class=\"axis-label\" transform=\"translate(14 " + number(f.top + f.height / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + html_escape(plot.y_label) + "</text>\n";
  if (empty)
    svg += "<text class=\"empty\" x=\"" + number(f.left + f.width / 2) + "\" y=\"" + number(f.top + f.height / 2) +
           "\" text-anchor=\"middle\">no finite values</text>\n";

  // Curves: every faint raw curve first, so the bold ones stay on top.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t k = 0; k < plot.series.size(); ++k) {
      const SvgSeries& s = plot.series[k];
      const size_t n = std::min(s.x.size(), s.y.size());
      const std::vector<double> x(s.x.begin(), s.x.begin() + long(n)), y(s.y.begin(), s.y.begin() + long(n));
      const std::string& colour = legend[k].colour;
      const std::string title = "<title>" + html_escape(s.name) + "</title>";
      if (pass == 0) {
        if (s.style == SvgSeries::kSmoothed) {
          const std::string d = path_data(f, x, y, plot.max_points, nullptr);
          if (!d.empty())
            svg += "<path class=\"curve raw\" stroke=\"" + colour + "\" d=\"" + d + "\">" + title + "</path>\n";
        }
        continue;
      }
      const bool dotted = s.style == SvgSeries::kMarkers || s.style == SvgSeries::kDashed;
      std::vector<std::pair<double, double>> dots;
      const std::vector<double> drawn = s.style == SvgSeries::kSmoothed ? smooth_ema(y, smoothing_weight(y.size())) : y;
      const std::string d = path_data(f, x, drawn, plot.max_points, dotted ? &dots : nullptr);
      if (d.empty()) continue;
      const char* kind = s.style == SvgSeries::kSmoothed ? "smoothed" : s.style == SvgSeries::kDashed ? "line dashed" : "line";
      svg += std::string("<path class=\"curve ") + kind + "\" stroke=\"" + colour + "\" d=\"" + d + "\">" + title + "</path>\n";
      if (dots.size() <= 200)  // dots only where they can be told apart
        for (const auto& [px, py] : dots)
          svg += "<circle class=\"dot\" fill=\"" + colour + "\" cx=\"" + number(px) + "\" cy=\"" + number(py) + "\" r=\"2.5\"/>";
      if (!dots.empty() && dots.size() <= 200) svg += "\n";
    }
  }

  for (const Entry& e : legend) {
    const std::string y = number(12 + 16.0 * e.row);
    svg += "<line class=\"swatch" + std::string(e.dashed ? " dashed" : "") + "\" stroke=\"" + e.colour + "\" x1=\"" +
           number(e.x) + "\" x2=\"" + number(e.x + 18) + "\" y1=\"" + y + "\" y2=\"" + y + "\"/><text class=\"legend\" x=\"" +
           number(e.x + 22) + "\" y=\"" + y + "\" dominant-baseline=\"middle\">" + html_escape(e.name) + "</text>\n";
  }
  svg += "</svg>";
  return svg;
}

}  // namespace gancu
