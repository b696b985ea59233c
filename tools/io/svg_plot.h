// Line plots as inline SVG for HTML pages (the run report): axes with round-number ticks, axis labels, a legend, and
// curves thinned to a bounded number of points. The SVG is meant to sit inside an HTML5 page (no XML namespace, no
// external fonts or styles: text takes the page's font).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace gancu {

// `text` with &, <, >, " and ' replaced by their HTML entities; safe in element content and in quoted attributes.
std::string html_escape(std::string_view text);

struct SvgSeries {
  enum Style {
    kSmoothed,  // the raw values faint and their smooth_ema (plot.h) bold: noisy per-step curves. A plot of only
                // these scales its y axis by outlier_free_range (plot.h)
    kLine,      // a plain line
    kMarkers,   // a line with a dot at each value: sparse evaluations (FID)
    kDashed,    // a dashed line with dots: a baseline to compare with (bicubic PSNR)
  };
  std::string name;          // legend text (escaped when written)
  std::vector<double> x, y;  // the same length; a non-finite x or y leaves a gap
  Style style = kLine;
  int colour = -1;           // palette index (tools/io/plot.cpp's ten colours); -1: the series' index in the plot
};

struct SvgPlot {
  std::string id;                // the <svg> element's id (plain characters only; the caller chooses it)
  std::string x_label = "step", y_label;
  std::vector<SvgSeries> series;
  bool fixed_y = false;          // y axis exactly [y_lo, y_hi] (probabilities: 0..1)
  double y_lo = 0, y_hi = 1;
  int width = 560, height = 300; // the viewBox; the page scales it to its column
  size_t max_points = 2000;      // per curve (thin_curve in plot.h keeps the envelope of longer ones)
};

// The plot as one <svg> element. Each drawn curve is a <path class="curve ..."> with its points as "M x y L x y ..."
// (one "M" per unbroken run), so a test can count them; a plot with no finite point says so in its middle.
std::string svg_line_plot(const SvgPlot& plot);

}  // namespace gancu
