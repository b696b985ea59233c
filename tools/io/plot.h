// What every plot of a run shares (losses.png drawn pixel by pixel, the report's SVG plots): the smoothing of noisy
// curves, round-number axis ticks and their labels, and the thinning of long curves to a bounded number of points.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gancu {

struct Rgb {
  uint8_t r, g, b;
};
// The colour of a plot's series i: ten well-separated colours first (matplotlib's tab10), then hues spaced by the
// golden angle, which stay distinct from their neighbours.
Rgb series_colour(size_t i);

// The smoothing weight for a curve of `points` values: 1 − 20/points, within [0.6, 0.99], so that the moving average
// spans about a twentieth of the run whatever its length (0.6 is TensorBoard's default weight).
double smoothing_weight(size_t points);

// TensorBoard's debiased exponential moving average: s_i = w·s_{i−1} + (1 − w)·v_i from s = 0, reported as
// s_i / (1 − w^k) after k finite values, so that early values are not pulled towards 0. Non-finite values are passed
// through unchanged and do not enter the average.
std::vector<double> smooth_ema(const std::vector<double>& values, double weight);

// The value range of a plot of smoothed curves, ignoring outliers as TensorBoard's "ignore outliers in chart scaling"
// does: every finite value of `smoothed`, and those of `raw` between its 1st and 99th percentiles (all of them when
// there are fewer than 100). {+inf, -inf} when nothing is finite.
std::pair<double, double> outlier_free_range(std::vector<double> raw, const std::vector<double>& smoothed);

// Round-number ticks for an axis over [lo, hi]: the step of 1, 2 or 5 times a power of ten giving nearest `target`
// intervals.
// With `expand`, the axis range grows to the nearest ticks outside [lo, hi] (for value axes); otherwise the range is
// [lo, hi] and only the ticks inside it are listed (for step axes; one whose lo is within a tenth of hi of 0 starts at
// 0). A degenerate or non-finite range is widened first.
struct AxisTicks {
  double lo = 0, hi = 1;       // the axis range
  double step = 0.2;           // between ticks
  std::vector<double> values;  // the ticks, ascending, within [lo, hi]
};
AxisTicks nice_ticks(double lo, double hi, int target, bool expand);

// A tick's label with as many decimals as the tick step needs ("0.25", "1500", "-2"), and "20k" / "1.5M" for large
// multiples of a thousand.
std::string tick_label(double value, double step);

// The indices of the points to draw of a curve of `n` points, at most `max_points` (≥ 4) of them: all when they fit,
// otherwise, in each of max_points/2 equal runs of indices, the lowest and highest finite value in their order (so
// the thinned curve keeps the envelope of the noise), and always the first and last point.
std::vector<size_t> thin_curve(const std::vector<double>& values, size_t max_points);

}  // namespace gancu
