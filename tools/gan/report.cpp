// report.html: a run folder's files rendered as one self-contained page (see report.h).
#include "tools/gan/report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "tools/io/plot.h"
#include "tools/io/png.h"
#include "tools/io/safetensors.h"
#include "tools/io/svg_plot.h"

namespace gancu::app {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

constexpr size_t kMaxNotedItems = 8;  // examples listed per kind of skipped input
// What only the trainer knows (data as loaded, device, plan, steps asked for) is kept in the page, so that `gan report`
// can show it again for the same recipe and configuration.
constexpr const char* kInfoMeta = "<meta name=\"gancu-run\" content=\"";

std::string base64(const std::vector<char>& bytes) {
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k) v = v << 8 | (k < n ? static_cast<uint8_t>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? kDigits[(v >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// What was skipped, by kind, with the first few examples: "3 × metrics.jsonl lines that are not JSON objects with a
// step: line 4, line 9, line 12".
class Skipped {
 public:
  void add(const std::string& kind, const std::string& example) {
    Kind& k = kinds_[kind];
    if (k.count++ < kMaxNotedItems) k.examples.push_back(example);
    if (std::find(order_.begin(), order_.end(), kind) == order_.end()) order_.push_back(kind);
  }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    for (const std::string& kind : order_) {
      const Kind& k = kinds_.at(kind);
      std::string line = std::to_string(k.count) + " × " + kind + ": ";
      for (size_t i = 0; i < k.examples.size(); ++i) line += (i ? ", " : "") + k.examples[i];
      if (k.count > k.examples.size()) line += ", …";
      out.push_back(line);
    }
    return out;
  }

 private:
  struct Kind {
    size_t count = 0;
    std::vector<std::string> examples;
  };
  std::map<std::string, Kind> kinds_;
  std::vector<std::string> order_;
};

// metrics.jsonl as columns: for each key (first-seen order) its (step, value) pairs, sorted by step.
struct Metrics {
  std::vector<std::string> keys;
  std::vector<std::vector<std::pair<double, double>>> columns;
  size_t lines = 0;  // kept lines

  const std::vector<std::pair<double, double>>* column(const std::string& key) const {
    const auto it = std::find(keys.begin(), keys.end(), key);
    return it == keys.end() ? nullptr : &columns[size_t(it - keys.begin())];
  }
};

Metrics read_metrics_file(const std::string& path, Skipped& skipped) {
  Metrics m;
  std::ifstream in(path);
  if (!in) return m;
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json j = json::parse(line, nullptr, false);
    const json* step = j.is_object() && j.contains("step") ? &j["step"] : nullptr;
    if (!step || !step->is_number() || !std::isfinite(step->get<double>()) || step->get<double>() < 0) {
      skipped.add("metrics.jsonl lines that are not JSON objects with a step", "line " + std::to_string(number));
      continue;
    }
    ++m.lines;
    for (const auto& [key, value] : j.items()) {
      if (key == "step") continue;
      if (!value.is_number() || !std::isfinite(value.get<double>())) {
        skipped.add("metrics.jsonl values that are not finite numbers",
                    html_escape(key) + " on line " + std::to_string(number));
        continue;
      }
      auto it = std::find(m.keys.begin(), m.keys.end(), key);
      if (it == m.keys.end()) {
        m.keys.push_back(key);
        m.columns.emplace_back();
        it = m.keys.end() - 1;
      }
      m.columns[size_t(it - m.keys.begin())].emplace_back(step->get<double>(), value.get<double>());
    }
  }
  for (auto& column : m.columns)
    std::stable_sort(column.begin(), column.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return m;
}

struct Grid {
  int64_t step = -1;  // -1: samples.png, of an unrecorded step
  std::string file;   // relative to the run folder
  int width = 0, height = 0;
  std::string data_uri;
};

// The PNG `file` as a data: URI, or "" with the reason added to `skipped`. Its size and header are checked before it
// is read and decoded, so a huge or hostile file costs nothing.
bool embed_png(const fs::path& run_dir, Grid& grid, Skipped& skipped) {
  const std::string name = html_escape(grid.file);
  const fs::path path = run_dir / grid.file;
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return skipped.add("sample grids that cannot be read", name), false;
  if (size > kReportMaxGridBytes)
    return skipped.add("sample grids over " + std::to_string(kReportMaxGridBytes >> 20) + " MiB", name), false;
  try {
    const std::vector<char> bytes = read_file(path.string());
    // Signature (8), IHDR length (4) and type (4), then the big-endian width and height.
    auto be32 = [&](size_t at) {
      uint32_t v = 0;
      for (size_t k = 0; k < 4; ++k) v = v << 8 | static_cast<uint8_t>(bytes[at + k]);
      return v;
    };
    if (bytes.size() < 24 || std::string(bytes.data() + 12, 4) != "IHDR") throw std::runtime_error("not a PNG");
    if (be32(16) > uint32_t(kReportMaxGridSide) || be32(20) > uint32_t(kReportMaxGridSide))
      return skipped.add("sample grids larger than " + std::to_string(kReportMaxGridSide) + " pixels a side", name), false;
    const Image image = decode_png(grid.file, bytes.data(), bytes.size());  // corrupt data shows here, not in a browser
    grid.width = image.width, grid.height = image.height;
    grid.data_uri = "data:image/png;base64," + base64(bytes);
    return true;
  } catch (const std::exception&) {
    return skipped.add("sample grids that are not valid PNG files", name), false;
  }
}

// N for a file named step_N.png as the trainer names its grids (N of up to 15 digits, so it fits), else -1.
int64_t step_of_grid(const std::string& name) {
  if (name.size() <= 9 || name.rfind("step_", 0) != 0 || name.compare(name.size() - 4, 4, ".png") != 0) return -1;
  const std::string digits = name.substr(5, name.size() - 9);
  if (digits.size() > 15 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return -1;
  return std::stoll(digits);
}

// The grids over time: samples/step_N.png, at most kReportMaxGrids evenly spaced with the last one always shown;
// samples.png too when it is none of them (a run's final grid has no step file).
std::vector<Grid> load_grids(const fs::path& run_dir, int64_t step, Skipped& skipped) {
  std::vector<Grid> all;
  std::error_code ec;
  for (fs::directory_iterator it(run_dir / "samples", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (const int64_t grid_step = step_of_grid(name); grid_step >= 0) all.push_back({grid_step, "samples/" + name, 0, 0, ""});
  }
  std::sort(all.begin(), all.end(), [](const Grid& a, const Grid& b) { return a.step < b.step; });
  if (fs::is_regular_file(run_dir / "samples.png", ec)) {
    bool known = false;
    try {
      const uint64_t size = fs::file_size(run_dir / "samples.png");
      if (size <= kReportMaxGridBytes) {
        const std::vector<char> latest = read_file((run_dir / "samples.png").string());
        for (auto it = all.rbegin(); it != all.rend() && !known; ++it)  // the newest first: usually the match
          known = fs::file_size(run_dir / it->file, ec) == size && read_file((run_dir / it->file).string()) == latest;
      }
    } catch (const std::exception&) {  // unreadable: embed_png says so below
    }
    if (!known) all.push_back({step, "samples.png", 0, 0, ""});
  }
  // Each chosen grid is embedded, or skipped and the next nearest taken in its place.
  std::vector<Grid> shown;
  while (!all.empty() && shown.size() < kReportMaxGrids) {
    const size_t want = std::min(all.size(), kReportMaxGrids - shown.size());
    std::vector<size_t> pick;
    for (size_t i = 0; i < want; ++i) pick.push_back(want == 1 ? all.size() - 1 : i * (all.size() - 1) / (want - 1));
    std::vector<Grid> rest, good;
    size_t next = 0;
    for (size_t i = 0; i < all.size(); ++i) {
      if (next < pick.size() && pick[next] == i) {
        ++next;
        if (embed_png(run_dir, all[i], skipped)) good.push_back(std::move(all[i]));
      } else {
        rest.push_back(std::move(all[i]));
      }
    }
    if (good.size() == want || rest.empty()) {
      for (Grid& g : good) shown.push_back(std::move(g));
      break;
    }
    // Some were bad: keep the good ones and choose again among the rest for the free places.
    for (Grid& g : good) shown.push_back(std::move(g));
    all = std::move(rest);
  }
  std::stable_sort(shown.begin(), shown.end(), [](const Grid& a, const Grid& b) {
    return (a.step < 0 ? INT64_MAX : a.step) < (b.step < 0 ? INT64_MAX : b.step);
  });
  return shown;
}

double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !(x > 0) || !std::isfinite(x); }), v.end());
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

std::string display_name(const std::string& key) {
  static const std::map<std::string, std::string> kNames = {
      {"d_x", "D(x)"}, {"d_g_z1", "D(G(z)) in D's step"}, {"d_g_z2", "D(G(z)) in G's step"},
      {"images_per_s", "images/s"}, {"psnr_bicubic", "psnr, bicubic"}, {"ssim_bicubic", "ssim, bicubic"}};
  const auto it = kNames.find(key);
  return it == kNames.end() ? key : it->second;
}

struct Figure {
  std::string title, caption;
  SvgPlot plot;
};

SvgSeries series_of(const Metrics& m, const std::string& key, SvgSeries::Style style, int colour = -1) {
  SvgSeries s;
  s.name = display_name(key);
  s.style = style;
  s.colour = colour;
  for (const auto& [step, value] : *m.column(key)) s.x.push_back(step), s.y.push_back(value);
  return s;
}

// The plots the metrics call for, in page order; `used` collects the keys they show.
std::vector<Figure> figures_for(const Metrics& m, std::vector<std::string>& used) {
  std::vector<Figure> figures;
  auto figure = [&](const std::string& id, const std::string& title, const std::string& y_label, const std::string& caption) {
    Figure f;
    f.title = title, f.caption = caption;
    f.plot.id = "plot-" + id, f.plot.y_label = y_label, f.plot.max_points = kReportMaxCurvePoints;
    return f;
  };
  auto add = [&](Figure f, const std::vector<std::string>& keys, SvgSeries::Style style) {
    for (const std::string& key : keys) {
      if (!m.column(key)) continue;
      const bool baseline = key.size() > 8 && key.compare(key.size() - 8, 8, "_bicubic") == 0;
      f.plot.series.push_back(series_of(m, key, baseline ? SvgSeries::kDashed : style, baseline ? 7 : -1));
      used.push_back(key);
    }
    if (!f.plot.series.empty()) figures.push_back(std::move(f));
  };
  auto is_used = [&](const std::string& key) { return std::find(used.begin(), used.end(), key) != used.end(); };
  // Losses; a loss that is a term of another (loss_d_real of loss_d) goes to its parent's own plot.
  std::vector<std::string> losses;
  std::map<std::string, std::vector<std::string>> terms;
  for (const std::string& key : m.keys) {
    if (key.rfind("loss_", 0) != 0) continue;
    std::string parent;
    for (const std::string& other : m.keys)
      if (other != key && other.rfind("loss_", 0) == 0 && key.rfind(other + "_", 0) == 0 && other.size() > parent.size())
        parent = other;
    (parent.empty() ? losses : terms[parent]).push_back(key);
  }
  add(figure("losses", "Losses", "loss", ""), losses, SvgSeries::kSmoothed);
  for (const auto& [parent, keys] : terms)
    add(figure(parent + "-terms", parent + " by term", "loss", ""), keys, SvgSeries::kSmoothed);
  Figure d = figure("discriminator", "Discriminator outputs", "mean probability",
                    "D's mean output probability on real images, D(x), and on generated ones, D(G(z)), in the "
                    "discriminator's step (before its update) and in the generator's step (after it).");
  d.plot.fixed_y = true;
  std::vector<std::string> outputs;
  for (const std::string& key : m.keys) {  // D's outputs: d_* metrics that are probabilities
    const auto* c = m.column(key);
    if (key.rfind("d_", 0) == 0 && std::all_of(c->begin(), c->end(), [](const auto& p) { return p.second >= 0 && p.second <= 1; }))
      outputs.push_back(key);
  }
  add(std::move(d), outputs, SvgSeries::kSmoothed);
  add(figure("fid", "FID", "FID (lower is better)", ""), {"fid"}, SvgSeries::kMarkers);
  add(figure("kid", "KID", "KID (lower is better)", ""), {"kid"}, SvgSeries::kMarkers);
  add(figure("psnr", "PSNR", "PSNR (dB)", "Dashed: bicubic upscaling, the baseline to beat."), {"psnr", "psnr_bicubic"},
      SvgSeries::kMarkers);
  add(figure("ssim", "SSIM", "SSIM", "Dashed: bicubic upscaling, the baseline to beat."), {"ssim", "ssim_bicubic"},
      SvgSeries::kMarkers);
  add(figure("throughput", "Throughput", "images/s", ""), {"images_per_s"}, SvgSeries::kSmoothed);
  used.push_back("epoch"), used.push_back("step_ms");
  for (const std::string& key : m.keys)
    if (!is_used(key)) add(figure("metric-" + std::to_string(figures.size()), key, key, ""), {key}, SvgSeries::kSmoothed);
  for (Figure& f : figures)  // ids from metric names: plain characters only
    std::replace_if(f.plot.id.begin(), f.plot.id.end(),
                    [](char c) { return !std::isalnum(static_cast<unsigned char>(c)) && c != '-'; }, '-');
  return figures;
}

// A JSON object's fields as table rows (strings without their quotes), leaving out empty strings and the keys of
// `shown`; text that is not a JSON object is one row.
std::string rows_of(const std::string& json_text, const json& shown = json::object()) {
  std::string rows;
  const json j = json::parse(json_text, nullptr, false);
  if (!j.is_object()) {
    if (!json_text.empty()) rows += "<tr><th>configuration</th><td>" + html_escape(json_text) + "</td></tr>\n";
    return rows;
  }
  for (const auto& [key, value] : j.items()) {
    if ((value.is_string() && value.get<std::string>().empty()) || (shown.is_object() && shown.contains(key))) continue;
    rows += "<tr><th>" + html_escape(key) + "</th><td>" + html_escape(value.is_string() ? value.get<std::string>() : value.dump()) +
            "</td></tr>\n";
  }
  return rows;
}

std::string row(const std::string& name, const std::string& value) {
  return value.empty() ? "" : "<tr><th>" + html_escape(name) + "</th><td>" + html_escape(value) + "</td></tr>\n";
}

constexpr const char* kStyle = R"(
:root { --ink: #1d2330; --muted: #5b6475; --line: #e3e6eb; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 22px 20px 40px; }
header h1 { font-size: 22px; margin: 0; font-weight: 650; }
header p { margin: 2px 0 0; color: var(--muted); }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px 18px; margin-top: 16px; }
h2 { font-size: 16px; margin: 0 0 10px; font-weight: 650; }
h3 { font-size: 14px; margin: 0 0 2px; font-weight: 600; }
.note { color: var(--muted); margin: -4px 0 12px; font-size: 13px; }
.overview { display: grid; grid-template-columns: minmax(0, 0.8fr) minmax(0, 1.2fr) 300px; gap: 28px; align-items: start; }
table.kv { border-collapse: collapse; width: 100%; font-size: 13px; }
table.kv th { text-align: left; font-weight: 500; color: var(--muted); padding: 3px 12px 3px 0; white-space: nowrap;
              vertical-align: top; width: 1%; }
table.kv td { padding: 3px 0; font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: 12.5px;
              overflow-wrap: anywhere; }
table.kv tr + tr th, table.kv tr + tr td { border-top: 1px solid #f0f1f4; }
.latest img { width: 100%; }
figure { margin: 0; }
.grids { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 14px; }
.grids img, .latest img { display: block; width: 100%; height: auto; image-rendering: pixelated; border-radius: 3px;
                          background: #000; }
figcaption { font-size: 12px; color: var(--muted); text-align: center; margin-top: 4px; }
.plots { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 18px 24px; }
.plots figcaption { text-align: left; }
svg.plot { display: block; width: 100%; height: auto; }
svg .grid { stroke: #eceef2; stroke-width: 1; }
svg .frame { fill: none; stroke: #a3a9b4; stroke-width: 1; }
svg .tick { font-size: 11px; fill: var(--muted); }
svg .axis-label { font-size: 12px; fill: var(--ink); }
svg .legend { font-size: 11.5px; fill: var(--ink); }
svg .empty { font-size: 13px; fill: var(--muted); }
svg .curve { fill: none; stroke-linejoin: round; stroke-linecap: round; }
svg .curve.raw { stroke-width: 1; opacity: 0.3; }
svg .curve.smoothed { stroke-width: 2; }
svg .curve.line { stroke-width: 1.75; }
svg .dashed { stroke-dasharray: 5 4; }
svg .swatch { stroke-width: 3; }
.skipped li { color: #8a4b00; }
footer { color: var(--muted); font-size: 12px; margin-top: 16px; text-align: center; }
@media (max-width: 820px) { .overview, .plots { grid-template-columns: 1fr; } }
)";

std::string step_label(const Grid& g) { return g.step >= 0 ? "step " + std::to_string(g.step) : "samples.png"; }

}  // namespace

std::string render_run_report(const std::string& run_dir, const ReportInfo& info) {
  Skipped skipped;
  const Metrics metrics = read_metrics_file((fs::path(run_dir) / "metrics.jsonl").string(), skipped);
  const std::vector<Grid> grids = load_grids(run_dir, info.step, skipped);
  std::vector<std::string> used;
  const std::vector<Figure> figures = figures_for(metrics, used);

  const std::string title = (info.recipe.empty() ? std::string("run") : info.recipe) + " · " + run_dir;
  std::string status;
  if (info.step >= 0) status = "step " + std::to_string(info.step);
  if (info.total_steps > 0) status += " of " + std::to_string(info.total_steps);
  if (!info.status.empty()) status += (status.empty() ? "" : " · ") + info.status;

  const json recorded{{"recipe", info.recipe}, {"config", info.config_json}, {"data", info.data},
                      {"device", info.device}, {"plan", info.plan}, {"total_steps", info.total_steps}};
  std::string page = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n" +
                     std::string(kInfoMeta) + html_escape(recorded.dump()) + "\">\n<title>" + html_escape(title) +
                     "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<main>\n";
  page += "<header><h1>" + html_escape(title) + "</h1><p>" + html_escape(status) + "</p></header>\n";

  // Overview: the configuration and throughput, and the latest grid.
  std::vector<double> step_ms, images_per_s;
  if (const auto* c = metrics.column("step_ms"))
    for (const auto& [s, v] : *c) step_ms.push_back(v);
  if (const auto* c = metrics.column("images_per_s"))
    for (const auto& [s, v] : *c) images_per_s.push_back(v);
  const double median_ms = median(step_ms), median_rate = median(images_per_s);
  // The recipe's configuration, then the run's options (those the configuration already shows left out).
  json config = json::parse(info.config_json, nullptr, false);
  if (config.is_object() && config.value("model", info.recipe) == info.recipe) config.erase("model");
  page += "<section class=\"overview\" id=\"overview\">\n<div>\n<h2>Model</h2>\n<table class=\"kv\">\n";
  page += row("recipe", info.recipe) + rows_of(config.is_object() ? config.dump() : info.config_json);
  page += "</table>\n</div>\n<div>\n<h2>Run</h2>\n<table class=\"kv\">\n";
  page += rows_of(info.run_json, config) + row("images", info.data) + row("device", info.device) + row("plan", info.plan);
  page += row("images/s (median)", std::isfinite(median_rate) ? format("%.1f", median_rate) : "");
  page += row("step time (median)", std::isfinite(median_ms) ? format("%.2f ms", median_ms) : "");
  page += row("metrics lines", std::to_string(metrics.lines));
  page += "</table>\n</div>\n";
  if (!grids.empty()) {
    const Grid& latest = grids.back();
    page += "<figure class=\"latest\"><img alt=\"latest samples\" width=\"" + std::to_string(latest.width) + "\" height=\"" +
            std::to_string(latest.height) + "\" src=\"" + latest.data_uri + "\"><figcaption>latest samples, " +
            html_escape(step_label(latest)) + "</figcaption></figure>\n";
  }
  page += "</section>\n";

  page += "<section id=\"samples\">\n<h2>Samples over time</h2>\n";
  if (grids.empty()) {
    page += "<p class=\"note\">No sample grids yet.</p>\n";
  } else {
    page += "<p class=\"note\">The same fixed latent vectors at each step" +
            std::string(grids.size() == kReportMaxGrids ? " (at most " + std::to_string(kReportMaxGrids) +
                                                              " grids, evenly spaced, the last always shown)" : "") +
            ".</p>\n<div class=\"grids\">\n";
    for (const Grid& g : grids)
      page += "<figure><img alt=\"" + html_escape(step_label(g)) + "\" width=\"" + std::to_string(g.width) + "\" height=\"" +
              std::to_string(g.height) + "\" src=\"" + g.data_uri + "\"><figcaption>" + html_escape(step_label(g)) +
              "</figcaption></figure>\n";
    page += "</div>\n";
  }
  page += "</section>\n";

  page += "<section id=\"curves\">\n<h2>Curves</h2>\n";
  if (figures.empty()) {
    page += "<p class=\"note\">No metrics yet.</p>\n";
  } else {
    page += "<p class=\"note\">Faint: the value logged at each step. Bold: smoothed by TensorBoard's debiased exponential "
            "moving average, weight w = 1 − 20/points within [0.6, 0.99] (" +
            format("%.3f", smoothing_weight(metrics.lines)) + " for " + std::to_string(metrics.lines) +
            " points). Their y axes cover the smoothed curves and 98% of the raw values (rarer spikes are cut at the "
            "frame). Curves longer than " + std::to_string(kReportMaxCurvePoints) +
            " points show the lowest and highest value of each stretch.</p>\n"
            "<div class=\"plots\">\n";
    for (const Figure& f : figures) {
      page += "<figure id=\"figure-" + f.plot.id.substr(5) + "\"><h3>" + html_escape(f.title) + "</h3>\n" +
              svg_line_plot(f.plot) + "\n";
      if (!f.caption.empty()) page += "<figcaption>" + html_escape(f.caption) + "</figcaption>";
      page += "</figure>\n";
    }
    page += "</div>\n";
  }
  page += "</section>\n";

  if (const std::vector<std::string> lines = skipped.lines(); !lines.empty()) {
    page += "<section id=\"skipped\">\n<h2>Left out of this page</h2>\n<ul class=\"skipped\">\n";
    for (const std::string& line : lines) page += "<li>" + line + "</li>\n";  // examples escaped when added
    page += "</ul>\n</section>\n";
  }
  page += "<footer>Written by gancu (gan train refreshes it at each checkpoint; gan report " + html_escape(run_dir) +
          " rebuilds it).</footer>\n</main>\n</body>\n</html>\n";
  return page;
}

void write_run_report(const std::string& run_dir, const ReportInfo& info) {
  write_file_atomic((fs::path(run_dir) / "report.html").string(), render_run_report(run_dir, info));
}

ReportInfo report_info_from_checkpoint(const std::string& run_dir) {
  ReportInfo info;
  const std::string file = (fs::path(run_dir) / "checkpoint.safetensors").string();
  if (!fs::exists(file)) {
    info.status = "no checkpoint yet: the configuration is unknown";
    return info;
  }
  std::map<std::string, std::string> meta = load_safetensors_metadata(file);
  info.recipe = meta.count("recipe") ? meta["recipe"] : "dcgan";  // checkpoints from before recipes were DCGAN's
  info.config_json = meta["config"];
  info.run_json = meta.count("run") ? meta["run"] : meta["training"];
  try {
    info.step = std::stoll(meta["step"]);
  } catch (const std::exception&) {
  }
  info.status = "from the checkpoint (gan report)";
  // The trainer's part from the report it wrote, if that was of this run's recipe and configuration.
  try {
    const std::vector<char> bytes = read_file((fs::path(run_dir) / "report.html").string());
    const std::string page(bytes.begin(), bytes.end());
    const size_t begin = page.find(kInfoMeta), end = page.find('"', begin + std::string(kInfoMeta).size());
    if (begin == std::string::npos || end == std::string::npos) return info;
    std::string text = page.substr(begin + std::string(kInfoMeta).size(), end - begin - std::string(kInfoMeta).size());
    for (const auto& [entity, ch] : {std::pair{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}})
      for (size_t at = text.find(entity); at != std::string::npos; at = text.find(entity, at + 1))
        text.replace(at, std::string(entity).size(), ch);
    const json recorded = json::parse(text, nullptr, false);
    if (!recorded.is_object() || recorded.value("recipe", "") != info.recipe || recorded.value("config", "") != info.config_json)
      return info;
    info.data = recorded.value("data", "");
    info.device = recorded.value("device", "");
    info.plan = recorded.value("plan", "");
    info.total_steps = recorded.value("total_steps", int64_t{-1});
  } catch (const std::exception&) {  // no earlier report, or not one of ours: the checkpoint's part only
  }
  return info;
}

int run_report(const std::string& run_dir) {
  if (!fs::is_directory(run_dir)) throw std::runtime_error(run_dir + ": no such run folder");
  write_run_report(run_dir, report_info_from_checkpoint(run_dir));
  std::fprintf(stderr, "gan report: wrote %s\n", (fs::path(run_dir) / "report.html").string().c_str());
  return 0;
}

void RunReport::refresh(int64_t step, const std::string& status) noexcept {
  try {
    info_.step = step;
    info_.status = status;
    write_run_report(run_dir_, info_);
  } catch (const std::exception& e) {
    if (!warned_) std::fprintf(stderr, "\ngan train: warning: the run report was not written (%s); training goes on\n", e.what());
    warned_ = true;
  }
}

}  // namespace gancu::app
