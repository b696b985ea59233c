// The run report: <run>/report.html, one self-contained page (inline CSS, inline SVG plots, sample grids as data:
// URIs; nothing fetched) showing a run's configuration, throughput, sample grids over time and its curves (losses,
// D's outputs, FID/KID and PSNR/SSIM when the metrics have them). `gan train` refreshes it at each checkpoint, at the
// end and when stopped by a signal; `gan report RUN` rebuilds it from the folder alone.
#pragma once
#include <cstdint>
#include <string>
#include <utility>

namespace gancu::app {

// What the trainer knows beyond the folder's files. Empty strings and negative numbers are "unknown" and left out.
struct ReportInfo {
  std::string recipe;       // "dcgan"
  std::string config_json;  // the recipe's configuration, a JSON object (Trainer::config_json, checkpoint "config")
  std::string run_json;     // the recorded run options, a JSON object (data, class, channels, batch-size, seed)
  std::string data;         // the images as loaded: source, count and shape
  std::string device;       // "cpu", "cuda (custom kernels, tf32, CUDA graph)", ...
  std::string plan;         // the training plan's summary (Plan::summary)
  int64_t step = -1;        // steps done when the report was written
  int64_t total_steps = -1; // steps the run was asked for
  std::string status;       // "training", "finished", "stopped by SIGINT", ...
};

// Bounds that keep the page small and quick to open, whatever the run folder holds.
inline constexpr size_t kReportMaxGrids = 16;                // sample grids over time, evenly spaced, the last included
inline constexpr size_t kReportMaxCurvePoints = 2000;        // per curve
inline constexpr uint64_t kReportMaxGridBytes = 4u << 20;    // a larger PNG in samples/ is left out
inline constexpr int kReportMaxGridSide = 4096;              // so is one wider or taller than this

// The page for `run_dir` (its metrics.jsonl, samples/step_*.png and samples.png) as HTML text. Never throws for bad
// files in the folder: metrics lines that are not JSON objects with a numeric step, non-finite or non-numeric values,
// and unreadable, corrupt or oversized PNGs are skipped, and the page lists what was skipped. Every string from a
// file is HTML-escaped.
std::string render_run_report(const std::string& run_dir, const ReportInfo& info);
// render_run_report written to <run_dir>/report.html with write_file_atomic; throws on a failed write.
void write_run_report(const std::string& run_dir, const ReportInfo& info);

// What the folder itself records of the run: recipe, configuration, run options and step from its
// checkpoint.safetensors metadata (the whole file is validated first), and the data, device, plan and steps asked for
// from the report.html the trainer wrote, when that was of the same recipe and configuration. Throws "<file>:
// <problem>" for a checkpoint that is there but unreadable; without one, only the folder's metrics and samples can be
// shown (status says so).
ReportInfo report_info_from_checkpoint(const std::string& run_dir);

// `gan report RUN_DIR`: rebuilds RUN_DIR/report.html from the folder alone and prints where it went.
int run_report(const std::string& run_dir);

// The trainer's handle on its report: refresh() rewrites the page and never throws; the first failure is reported on
// stderr as one warning line (training goes on), later ones silently.
class RunReport {
 public:
  RunReport(std::string run_dir, ReportInfo info) : run_dir_(std::move(run_dir)), info_(std::move(info)) {}
  void refresh(int64_t step, const std::string& status) noexcept;

 private:
  std::string run_dir_;
  ReportInfo info_;
  bool warned_ = false;
};

}  // namespace gancu::app
