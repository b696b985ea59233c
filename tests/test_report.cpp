// The run report (tools/gan/report.h) and what its plots share with losses.png (tools/io/plot.h): the page is
// self-contained, escapes what it reads, survives hostile files and stays bounded; the smoothing, ticks and thinning
// are checked against hand-worked values. tests/report_in_chromium.py opens real reports in a browser.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "core/files.h"
#include "tests/temp_dir.h"
#include "tests/train_test.h"
#include "tools/gan/report.h"
#include "tools/io/plot.h"
#include "tools/io/png.h"
#include "tools/io/svg_plot.h"

namespace gancu::app {
namespace {
namespace fs = std::filesystem;

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// The points of each curve path of the plot with this id: one per "M" or "L".
std::vector<size_t> curve_points(const std::string& page, const std::string& plot_id) {
  const size_t begin = page.find("<svg id=\"" + plot_id + "\"");
  if (begin == std::string::npos) return {};
  const std::string svg = page.substr(begin, page.find("</svg>", begin) - begin);
  std::vector<size_t> points;
  for (size_t at = svg.find("<path class=\"curve"); at != std::string::npos; at = svg.find("<path class=\"curve", at + 1)) {
    const size_t d = svg.find(" d=\"", at) + 4;
    const std::string path = svg.substr(d, svg.find('"', d) - d);
    points.push_back(count(path, "M") + count(path, "L"));
  }
  return points;
}

class ReportTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    fs::create_directories(dir_ / "samples");
  }
  // A small real PNG grid, different for each step.
  void write_grid(int64_t step) {
    Image img;
    img.width = 18, img.height = 10, img.channels = 3;
    for (int i = 0; i < img.width * img.height * 3; ++i) img.pixels.push_back(static_cast<uint8_t>((i * 7 + step) & 255));
    char name[64];
    std::snprintf(name, sizeof name, "samples/step_%06lld.png", static_cast<long long>(step));
    write_png(path(name), img);
  }
  // DCGAN's metrics lines for steps 1..n, with a note of any extra text appended.
  void write_metrics(int64_t n, const std::string& extra = "") {
    std::string text;
    for (int64_t s = 1; s <= n; ++s) {
      char line[256];
      std::snprintf(line, sizeof line,
                    "{\"step\":%lld,\"epoch\":%g,\"loss_d\":%g,\"loss_d_real\":%g,\"loss_d_fake\":%g,\"loss_g\":%g,"
                    "\"d_x\":%g,\"d_g_z1\":%g,\"d_g_z2\":%g,\"step_ms\":%g,\"images_per_s\":%g}\n",
                    static_cast<long long>(s), s / 100.0, 1.0 + std::sin(s * 0.3), 0.5, 0.5, 2.0 + std::cos(s * 0.7),
                    0.7, 0.3, 0.25, 10.0 + s % 3, 6400.0 / (10.0 + s % 3));
      text += line;
    }
    write_file_atomic(path("metrics.jsonl"), text + extra);
  }
  ReportInfo info() const {
    ReportInfo i;
    i.recipe = "dcgan";
    i.config_json = R"({"model":"dcgan","ngf":8,"note":"<script>alert(1)</script>"})";
    i.run_json = R"({"data":"/data/<b>&fashion","batch-size":8,"seed":1})";
    i.device = "cpu";
    i.step = 40, i.total_steps = 40, i.status = "finished";
    return i;
  }
  std::string render() { return render_run_report(dir_.string(), info()); }
};

TEST_F(ReportTest, SelfContainedAndEscaped) {
  for (int64_t s = 10; s <= 40; s += 10) write_grid(s);
  write_metrics(40);
  const std::string page = render();
  // Nothing is fetched: no URL, no script, no stylesheet link, every image a data: URI of a PNG.
  EXPECT_EQ(count(page, "http"), 0u);
  EXPECT_EQ(count(page, "<script"), 0u);
  EXPECT_EQ(count(page, "<link"), 0u);
  EXPECT_EQ(count(page, "url("), 0u);
  EXPECT_EQ(count(page, "@import"), 0u);
  EXPECT_EQ(count(page, "src=\""), count(page, "src=\"data:image/png;base64,"));
  EXPECT_EQ(count(page, "<img "), 5u) << "4 grids over time and the latest";
  // Strings from the configuration and the run options are escaped.
  EXPECT_EQ(count(page, "<script>alert"), 0u);
  EXPECT_EQ(count(page, "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"), 1u);
  EXPECT_EQ(count(page, "<td>/data/&lt;b&gt;&amp;fashion</td>"), 1u);
  // The plots DCGAN's metrics call for, one point per step on every curve (raw and smoothed).
  EXPECT_EQ(curve_points(page, "plot-losses"), (std::vector<size_t>{40, 40, 40, 40}));
  EXPECT_EQ(curve_points(page, "plot-loss-d-terms"), (std::vector<size_t>{40, 40, 40, 40}));
  EXPECT_EQ(curve_points(page, "plot-discriminator"), std::vector<size_t>(6, 40));
  EXPECT_TRUE(curve_points(page, "plot-fid").empty()) << "no FID plot without fid values";
  // Throughput: the medians of step_ms (10, 11, 12 cycling: 11) and images_per_s.
  EXPECT_NE(page.find("<th>step time (median)</th><td>11.00 ms</td>"), std::string::npos);
  EXPECT_EQ(page.find("Left out of this page"), std::string::npos);
}

TEST_F(ReportTest, EvaluationPlotsWhenTheMetricsHaveThem) {
  write_metrics(20, "{\"step\":10,\"fid\":120.5,\"kid\":0.11}\n{\"step\":20,\"fid\":90.25,\"kid\":0.08}\n"
                    "{\"step\":10,\"psnr\":24.1,\"psnr_bicubic\":23.0,\"ssim\":0.71,\"ssim_bicubic\":0.69}\n"
                    "{\"step\":20,\"psnr\":25.3,\"psnr_bicubic\":23.0,\"ssim\":0.74,\"ssim_bicubic\":0.69}\n"
                    "{\"step\":20,\"d_other\":3.5}\n");
  const std::string page = render();
  EXPECT_EQ(curve_points(page, "plot-fid"), (std::vector<size_t>{2}));
  EXPECT_EQ(curve_points(page, "plot-kid"), (std::vector<size_t>{2}));
  EXPECT_EQ(curve_points(page, "plot-psnr"), (std::vector<size_t>{2, 2}));
  EXPECT_EQ(curve_points(page, "plot-ssim"), (std::vector<size_t>{2, 2}));
  EXPECT_EQ(count(page, "class=\"curve line dashed\""), 2u) << "the bicubic baselines";
  EXPECT_EQ(curve_points(page, "plot-losses"), (std::vector<size_t>{20, 20, 20, 20}))
      << "lines without a loss leave the loss curves alone";
  EXPECT_EQ(curve_points(page, "plot-discriminator"), std::vector<size_t>(6, 20)) << "d_other is not a probability";
  EXPECT_NE(page.find("<h3>d_other</h3>"), std::string::npos) << "so it has its own plot";
}

TEST_F(ReportTest, HostileMetricsLinesAreSkippedAndListed) {
  write_metrics(10, "not json at all\n"
                    "[1, 2, 3]\n"
                    "{\"loss_d\": 1.0}\n"
                    "{\"step\": \"eleven\", \"loss_d\": 1.0}\n"
                    "{\"step\": -4, \"loss_d\": 1.0}\n"
                    "{\"step\": 11, \"loss_d\": NaN}\n"
                    "{\"step\": 12, \"loss_d\": null, \"loss_g\": \"<i>x</i>\", \"<b>key</b>\": true}\n"
                    "{\"step\": 13, \"loss_d\": 1.5, \"loss_g\": 2.5, \"<em>odd</em>\": 0.5}\n"
                    "{\"step\": 14, \"loss_d\": 1.5\n" +
                    std::string(100000, '{') + "\n" +
                    "{\"step\": 15, \"loss_d\": 1e999}\n");  // out of range: not JSON
  std::string page;
  ASSERT_NO_THROW(page = render());
  EXPECT_NE(page.find("9 × metrics.jsonl lines that are not JSON objects with a step: line 11, line 12, line 13, "
                      "line 14, line 15, line 16, line 19, line 20, …"),
            std::string::npos)
      << page.substr(page.find("<section id=\"skipped\">"));
  EXPECT_NE(page.find("3 × metrics.jsonl values that are not finite numbers: loss_d on line 17, loss_g on line 17, "
                      "&lt;b&gt;key&lt;/b&gt; on line 17"),
            std::string::npos);
  EXPECT_EQ(count(page, "<i>"), 0u);
  EXPECT_EQ(count(page, "<b>key"), 0u);
  EXPECT_EQ(count(page, "<em>"), 0u);
  EXPECT_NE(page.find("&lt;em&gt;odd&lt;/em&gt;"), std::string::npos) << "a numeric unknown key gets its own plot";
  EXPECT_EQ(curve_points(page, "plot-losses"), (std::vector<size_t>{11, 11, 11, 11})) << "steps 1..10 and 13";
}

TEST_F(ReportTest, HostilePngsAreSkippedAndListed) {
  write_grid(10);
  write_grid(20);
  write_metrics(5);
  const std::string signature = "\x89PNG\r\n\x1a\n";
  write_bytes("samples/step_000030.png", signature + std::string(200, 'x'));  // corrupt
  write_bytes("samples/step_000040.png", signature + std::string("\0\0\0\x0dIHDR\x7f\xff\xff\xff\x7f\xff\xff\xff\x08\x02\0\0\0", 21));
  write_bytes("samples/step_000050.png", std::string(kReportMaxGridBytes + 1, '\0'));  // too large to read at all
  fs::create_directories(dir_ / "samples" / "step_000060.png");                         // not a file
  for (const char* name : {"samples/notes.txt", "samples/step_.png", "samples/step_12a.png", "samples/step_-3.png",
                           "samples/step_99999999999999999999.png"})
    write_bytes(name, "ignored: not a grid's name");
  write_bytes("samples.png", "truncated");
  std::string page;
  ASSERT_NO_THROW(page = render());
  EXPECT_EQ(count(page, "<img "), 3u) << "steps 10 and 20, and the latest (step 20)";
  EXPECT_NE(page.find("not valid PNG files: samples/step_000030.png, samples.png"), std::string::npos);
  EXPECT_NE(page.find("larger than 4096 pixels a side: samples/step_000040.png"), std::string::npos);
  EXPECT_NE(page.find("over 4 MiB: samples/step_000050.png"), std::string::npos);
  EXPECT_NE(page.find("cannot be read: samples/step_000060.png"), std::string::npos);
  EXPECT_EQ(page.find("notes.txt"), std::string::npos);
  EXPECT_EQ(page.find("step_.png"), std::string::npos);
  EXPECT_EQ(page.find("step_12a"), std::string::npos);
  EXPECT_EQ(page.find("step_-3"), std::string::npos);
  EXPECT_EQ(page.find("step_9999"), std::string::npos);
}

TEST_F(ReportTest, BoundedGridsAndCurves) {
  for (int64_t s = 100; s <= 4000; s += 100) write_grid(s);  // 40 grids
  write_metrics(100000);
  const std::string page = render();
  // 16 grids over time, evenly spaced, first and last included, and the latest again at the top.
  EXPECT_EQ(count(page, "<img "), kReportMaxGrids + 1);
  EXPECT_NE(page.find("<figcaption>step 100</figcaption>"), std::string::npos);
  EXPECT_NE(page.find("<figcaption>step 4000</figcaption>"), std::string::npos);
  EXPECT_NE(page.find("latest samples, step 4000"), std::string::npos);
  for (const char* id : {"plot-losses", "plot-loss-d-terms", "plot-discriminator", "plot-throughput"}) {
    const std::vector<size_t> points = curve_points(page, id);
    EXPECT_FALSE(points.empty()) << id;
    for (size_t n : points) EXPECT_LE(n, kReportMaxCurvePoints) << id;
  }
  for (size_t n : curve_points(page, "plot-losses")) EXPECT_GE(n, kReportMaxCurvePoints - 2) << "noisy curves use the budget";
  EXPECT_LT(page.size(), 1500000u) << "100,000 steps of 9 metrics";
}

TEST_F(ReportTest, WriteIsAtomicAndRefreshNeverThrows) {
  write_metrics(3);
  write_run_report(dir_.string(), info());
  EXPECT_EQ(read_file(path("report.html")).size(), render().size());
  // A folder that cannot be written: one warning, no exception, later failures silent.
  RunReport report((dir_ / "missing" / "deeper").string(), info());
  ::testing::internal::CaptureStderr();
  report.refresh(1, "training");
  report.refresh(2, "training");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(err, "warning: the run report was not written"), 1u) << err;
}

TEST_F(ReportTest, TrainingWritesItAndGanReportRebuildsIt) {
  TrainOptions o = testing::tiny_train_options();
  o.out = path("run");
  o.out_given = true;
  o.steps = 6;
  o.sample_every = 2;
  o.checkpoint_every = 3;
  o.progress = false;
  recipes::DcganRecipe recipe = testing::tiny_dcgan();
  ASSERT_EQ(run_train(o, recipe), 0);
  const std::vector<char> bytes = read_file(path("run/report.html"));
  const std::string trained(bytes.begin(), bytes.end());
  EXPECT_NE(trained.find("step 6 of 6 · finished"), std::string::npos);
  EXPECT_NE(trained.find("<th>ngf</th><td>8</td>"), std::string::npos);
  EXPECT_EQ(count(trained, "<img "), 4u) << "steps 2, 4, 6 and the latest";
  EXPECT_EQ(curve_points(trained, "plot-losses"), (std::vector<size_t>{6, 6, 6, 6}));
  EXPECT_NE(trained.find("<th>device</th><td>cpu</td>"), std::string::npos);
  // From the folder alone: the same configuration and curves, the step from the checkpoint, and what only the trainer
  // knew (device, steps asked for) from the report it wrote.
  EXPECT_EQ(run_report(path("run")), 0);
  std::vector<char> again_bytes = read_file(path("run/report.html"));
  std::string again(again_bytes.begin(), again_bytes.end());
  EXPECT_NE(again.find("step 6 of 6 · from the checkpoint"), std::string::npos);
  EXPECT_NE(again.find("<th>ngf</th><td>8</td>"), std::string::npos);
  EXPECT_NE(again.find("<th>device</th><td>cpu</td>"), std::string::npos);
  EXPECT_EQ(curve_points(again, "plot-losses"), curve_points(trained, "plot-losses"));
  // Without the trainer's report: the checkpoint's part only.
  fs::remove(path("run/report.html"));
  EXPECT_EQ(run_report(path("run")), 0);
  again_bytes = read_file(path("run/report.html"));
  again.assign(again_bytes.begin(), again_bytes.end());
  EXPECT_NE(again.find("step 6 · from the checkpoint"), std::string::npos);
  EXPECT_NE(again.find("<th>ngf</th><td>8</td>"), std::string::npos);
  EXPECT_EQ(again.find("<th>device</th>"), std::string::npos);
  EXPECT_THROW(run_report(path("no_such_run")), std::runtime_error);
}

TEST(PlotHelpers, SmoothingIsTensorBoardsDebiasedEma) {
  // w = 0.5: s = 0.5, 1.25, 2.125 over 1, 2, 3, divided by 1 − 0.5^k.
  const std::vector<double> got = smooth_ema({1, 2, NAN, 3}, 0.5);
  EXPECT_DOUBLE_EQ(got[0], 1.0);
  EXPECT_DOUBLE_EQ(got[1], 1.25 / 0.75);
  EXPECT_TRUE(std::isnan(got[2])) << "non-finite values pass through";
  EXPECT_DOUBLE_EQ(got[3], 2.125 / 0.875);
  EXPECT_DOUBLE_EQ(smoothing_weight(10), 0.6);
  EXPECT_DOUBLE_EQ(smoothing_weight(400), 0.95);
  EXPECT_DOUBLE_EQ(smoothing_weight(1000000), 0.99);
}

TEST(PlotHelpers, OutlierFreeRangeIgnoresTheRarestSpikes) {
  std::vector<double> raw(200, 1.0);
  raw[7] = 50, raw[8] = -40, raw[9] = NAN;  // one spike each way: under 1% of the values
  raw[10] = 0.5;
  EXPECT_EQ(outlier_free_range(raw, {0.8, 1.2}), (std::pair<double, double>{0.5, 1.2}));
  EXPECT_EQ(outlier_free_range({3, 50}, {}), (std::pair<double, double>{3, 50})) << "under 100 values: all of them";
  EXPECT_EQ(outlier_free_range({1, 2}, {-5}), (std::pair<double, double>{-5, 2})) << "every smoothed value";
  EXPECT_FALSE(outlier_free_range({NAN}, {INFINITY}).first <= outlier_free_range({NAN}, {INFINITY}).second);
}

TEST(PlotHelpers, TicksAreRoundNumbers) {
  const AxisTicks y = nice_ticks(0.37, 1.52, 5, true);
  EXPECT_DOUBLE_EQ(y.step, 0.2);
  EXPECT_DOUBLE_EQ(y.lo, 0.2);
  EXPECT_DOUBLE_EQ(y.hi, 1.6);
  ASSERT_EQ(y.values.size(), 8u);
  EXPECT_EQ(tick_label(y.values[1], y.step), "0.4");
  const AxisTicks x = nice_ticks(1, 1500, 5, false);  // 3 intervals of 500 are nearer 5 than 7.5 of 200
  EXPECT_DOUBLE_EQ(x.step, 500);
  EXPECT_EQ(x.lo, 0) << "a step axis starting near 0 starts at 0";
  EXPECT_EQ(x.hi, 1500);
  EXPECT_EQ(x.values, (std::vector<double>{0, 500, 1000, 1500}));
  EXPECT_EQ(nice_ticks(1000, 1500, 5, false).values, (std::vector<double>{1000, 1100, 1200, 1300, 1400, 1500}));
  EXPECT_EQ(nice_ticks(0, 300, 6, false).values, (std::vector<double>{0, 50, 100, 150, 200, 250, 300}));
  EXPECT_EQ(tick_label(1500, 300), "1500");
  EXPECT_EQ(tick_label(20000, 5000), "20k");
  EXPECT_EQ(tick_label(2500000, 500000), "2.5M");
  EXPECT_EQ(tick_label(-1e-17, 0.05), "0.00") << "no negative zero";
  EXPECT_EQ(nice_ticks(3, 3, 5, true).values.empty(), false) << "one value still gets an axis";
  EXPECT_EQ(nice_ticks(NAN, INFINITY, 5, true).lo, 0);
}

TEST(PlotHelpers, ThinningKeepsEndsAndExtremes) {
  std::vector<double> v(100000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(i * 0.01);
  v[54321] = 50, v[12345] = -50;
  const std::vector<size_t> kept = thin_curve(v, 2000);
  EXPECT_LE(kept.size(), 2000u);
  EXPECT_EQ(kept.front(), 0u);
  EXPECT_EQ(kept.back(), v.size() - 1);
  EXPECT_TRUE(std::is_sorted(kept.begin(), kept.end()));
  EXPECT_NE(std::find(kept.begin(), kept.end(), 54321u), kept.end());
  EXPECT_NE(std::find(kept.begin(), kept.end(), 12345u), kept.end());
  EXPECT_EQ(thin_curve({1, 2, 3}, 2000), (std::vector<size_t>{0, 1, 2}));
}

TEST(PlotHelpers, SvgPlotWithoutFinitePointsSaysSo) {
  SvgPlot plot;
  plot.id = "p";
  plot.y_label = "loss";
  plot.series.push_back({"<nan>", {1, 2}, {NAN, INFINITY}, SvgSeries::kSmoothed, -1});
  const std::string svg = svg_line_plot(plot);
  EXPECT_NE(svg.find("no finite values"), std::string::npos);
  EXPECT_NE(svg.find("&lt;nan&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("class=\"curve"), std::string::npos);
  EXPECT_EQ(html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
}

}  // namespace
}  // namespace gancu::app
