#include "tools/gan/train.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "core/files.h"
#include "engine/cuda_backend.h"
#include "tools/gan/evaluate.h"
#include "tools/gan/report.h"
#include "tools/gan/sr_train.h"
#include "tools/io/png.h"
#include "tools/io/safetensors.h"

namespace gancu::app {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;  // metrics lines keep their field order

namespace {

constexpr uint64_t kFixedNoiseStream = 0xF1ED;  // the fixed latent batch of the progress grids

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
  else std::snprintf(buf, sizeof buf, "%llds", (long long)s);
  return buf;
}

// The fixed latent batch of the progress grids: n vectors of the sampler's latent shape, the same every grid.
Tensor fixed_noise(uint64_t seed, const Shape& shape) {
  Tensor z(shape);
  Rng rng(seed, kFixedNoiseStream);
  z.fill_normal(rng);
  return z;
}

// Keeps the metrics lines of steps ≤ `upto` (a resumed run continues the file where its checkpoint was taken).
std::vector<json> read_metrics(const std::string& path, int64_t upto) {
  std::vector<json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step")) continue;
    if (j["step"].get<int64_t>() <= upto) lines.push_back(j);
  }
  return lines;
}

// SIGINT and SIGTERM while training: the handler records the signal and the loop stops at the next step boundary,
// writes a checkpoint and exits with 128 + the signal. A second signal quits at once: every file is written atomically,
// so that loses only the steps since the last checkpoint, and may leave a "<file>.tmp.<pid>" that the next run in the
// folder removes.
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler may only touch a lock-free atomic");
std::atomic<int> g_stop_signal{0};
// Formatted before the handler is installed: the handler may only call async-signal-safe functions (write, _exit).
std::string g_stopping_message, g_quit_message;

extern "C" void on_stop_signal(int signo) {
  if (g_stop_signal.exchange(signo) != 0) {
    [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, g_quit_message.data(), g_quit_message.size());
    ::_exit(128 + signo);
  }
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, g_stopping_message.data(), g_stopping_message.size());
}

// Installs on_stop_signal for SIGINT and SIGTERM while it lives (run_train also runs inside the tests' process).
class StopSignals {
 public:
  StopSignals(const std::string& out, bool on_terminal) {
    const std::string newline = on_terminal ? "\n" : "";  // past the progress line
    g_stopping_message = newline + "gan train: stopping after this step, with a checkpoint (signal again to quit at once)\n";
    g_quit_message = "gan train: quit at once; " + out + " keeps the last checkpoint written, if any\n";
    g_stop_signal.store(0);
    struct sigaction action = {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;  // file writes in progress carry on rather than fail with EINTR
    ::sigaction(SIGINT, &action, &old_int_);
    ::sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  // The signal that asked the run to stop, or 0.
  int received() const { return g_stop_signal.load(); }

 private:
  struct sigaction old_int_ = {}, old_term_ = {};
};

// One writer per run folder: the lock of `dir`, or the one-line error that another run holds it.
std::unique_ptr<FolderLock> lock_run_folder(const std::string& dir) {
  long holder = 0;
  std::unique_ptr<FolderLock> lock = FolderLock::try_acquire(dir, &holder);
  if (!lock)
    throw std::runtime_error(dir + ": another run holds this folder" +
                             (holder > 0 ? " (PID " + std::to_string(holder) + ")" : std::string()) +
                             "; wait for it to end, or choose another --out");
  return lock;
}

// The default folder of a fresh run: `out` unless it holds an earlier run (a checkpoint) or a run in progress holds
// it (it may not have written a checkpoint yet), then <out>-2, <out>-3, ... Sets `out` to the one it locked.
std::unique_ptr<FolderLock> lock_default_run_folder(std::string& out) {
  const std::string base = out;
  std::string why_not_base;
  for (int n = 1;; ++n) {
    const std::string dir = n == 1 ? base : base + "-" + std::to_string(n);
    const fs::path checkpoint = fs::path(dir) / "checkpoint.safetensors";
    if (fs::exists(checkpoint)) {  // checked before locking, so a finished run's folder is not touched
      if (n == 1) why_not_base = "holds an earlier run";
      continue;
    }
    long holder = 0;
    std::unique_ptr<FolderLock> lock = FolderLock::try_acquire(dir, &holder);
    if (!lock) {
      if (n == 1) why_not_base = "is in use by another run" + (holder > 0 ? " (PID " + std::to_string(holder) + ")" : "");
      continue;
    }
    if (fs::exists(checkpoint)) {  // a run that held it has just finished
      if (n == 1) why_not_base = "holds an earlier run";
      continue;
    }
    if (n > 1) std::fprintf(stderr, "gan train: %s %s; writing this one to %s\n", base.c_str(), why_not_base.c_str(), dir.c_str());
    out = dir;
    return lock;
  }
}

// A resumed run continues as it was recorded: the checkpoint's recipe, its configuration and the recorded run
// options (its data unless --data names another place for it). A recipe option given on the command line that
// disagrees with the checkpoint is refused rather than silently ignored.
void restore_recorded(TrainOptions& o, recipes::Recipe& recipe, const std::map<std::string, std::string>& meta,
                      const std::string& file, const TrainOptions& given) {
  const RecordedRecipe recorded = recorded_recipe(meta, file);
  if (recorded.recipe->name() != recipe.name())
    throw std::runtime_error(file + ": a " + recorded.recipe->name() + " run, not " + recipe.name() +
                             " (resume it without --model, or with --model " + recorded.recipe->name() + ")");
  const json asked = recipes::to_json(recipe.options());
  const json kept = recipes::to_json(recorded.recipe->options());
  for (const std::string& name : given.given_recipe_options) {
    std::string key = name;
    std::replace(key.begin(), key.end(), '-', '_');
    if (asked.contains(key) && kept.contains(key) && asked[key] != kept[key])
      throw std::runtime_error("--" + name + " " + asked[key].dump() + ": " + file + " was trained with " + kept[key].dump() +
                               "; a resumed run keeps its configuration (start a new run to change it)");
  }
  recipes::from_json(recipe.options(), kept, file);
  const auto get = [&](const char* key) {
    const auto it = meta.find(key);
    return it == meta.end() ? std::string() : it->second;
  };
  const std::string run_text = get("run").empty() ? get("training") : get("run");  // "training": DCGAN checkpoints before recipes
  const json run = json::parse(run_text, nullptr, false);
  if (run.is_discarded() || !run.is_object()) throw std::runtime_error(file + ": bad run metadata");
  recipes::from_json(o.recorded_options(), run, file);
  if (given.data != TrainOptions{}.data) o.data = given.data;
  o.channels = recorded.shape.channels;
}

}  // namespace

// Data parallel: whether any rank of the group says yes (a collective; every rank asks at the same point), so that
// every rank takes the same branch and none is left waiting in a collective the others skipped.
static bool any_rank(Communicator& group, bool yes) {
  if (group.size() == 1) return yes;
  double votes = yes ? 1.0 : 0.0;
  group.all_reduce_sum(&votes, 1);
  return votes > 0;
}

static int run_train_on_rank(const TrainOptions& given, recipes::Recipe& recipe) {
  TrainOptions o = given;
  // Data parallel (under mpirun): every rank trains; rank 0 alone owns the run folder and writes checkpoints,
  // samples, metrics and the report (the others read only: the data and, on resume, the checkpoint).
  Communicator& group = process_group();
  const bool lead = group.rank() == 0;
  std::unique_ptr<FolderLock> lock;  // held until the run ends (or the process dies)
  std::string resume_file;
  std::map<std::string, std::string> resume_meta;
  if (!o.resume.empty()) {
    resume_file = fs::is_directory(o.resume) ? (fs::path(o.resume) / "checkpoint.safetensors").string() : o.resume;
    // The run goes on in its own folder unless --out names another.
    if (!o.out_given) o.out = fs::path(resume_file).parent_path().empty() ? "." : fs::path(resume_file).parent_path().string();
    // Locked first, so that a run in progress (which may not have written a checkpoint yet) is named as the reason;
    // but a mistyped --resume creates no folder.
    if (lead && (fs::is_directory(o.out) || fs::is_regular_file(resume_file))) lock = lock_run_folder(o.out);
    if (!fs::is_regular_file(resume_file)) throw std::runtime_error(resume_file + ": no such checkpoint");
    resume_meta = load_safetensors_metadata(resume_file);  // validates the whole file before anything is written
    restore_recorded(o, recipe, resume_meta, resume_file, given);
  }
  // One writer per run folder, locked before anything in it is read or written; a fresh run never overwrites an
  // earlier run's checkpoint by surprise.
  if (!lead) {
    // rank 0 owns the folder
  } else if (resume_file.empty() && (o.out_given || o.overwrite)) {
    lock = lock_run_folder(o.out);
    if (!o.overwrite && fs::exists(fs::path(o.out) / "checkpoint.safetensors"))
      throw std::runtime_error(o.out + ": already holds a run (checkpoint.safetensors); continue it with --resume " + o.out +
                               ", or pass --overwrite, or choose another --out");
  } else if (resume_file.empty()) {
    lock = lock_default_run_folder(o.out);
  }
  if (lead) {
    fs::create_directories(fs::path(o.out) / "samples");
    // What a process killed while writing left behind (its targets are intact); no one else writes here now.
    remove_stale_temp_files(o.out);
    remove_stale_temp_files((fs::path(o.out) / "samples").string());
  }

  const recipes::DataRequest request = recipe.data_request();
  // Super-resolution trains on random crops of photos: the default photo set where --data was left at its default.
  const bool super_resolution = request.sr_scale > 0;
  PhotoSet photos;
  ImageSet data;
  std::unique_ptr<SrValidation> validation;
  if (super_resolution) {
    if (o.data == TrainOptions().data) o.data = kDebianPhotos;
    if (!o.data_class.empty()) throw std::invalid_argument("--class: " + recipe.name() + " trains on unlabelled photos");
    if (o.epochs > 0) throw std::invalid_argument("--epochs: " + recipe.name() + " draws random crops; give --steps");
    photos = load_photos(o.data);
    data = sr_crop_shape(photos, request.image_size);
    validation = std::make_unique<SrValidation>(o.val_data, o.val_crop, request.sr_scale);
  } else {
    const int channels = o.channels ? o.channels : request.channels ? request.channels : native_channels(o.data);
    DatasetOptions data_options;
    data_options.require_labels = request.labels || !o.data_class.empty();
    data = load_dataset(o.data, channels, request.image_size, data_options);
    if (!o.data_class.empty()) data = select_class(std::move(data), o.data_class);
    if (data.count < int64_t(o.batch_size) * group.size())
      throw std::runtime_error(data.source + ": " + std::to_string(data.count) + " images, fewer than one batch of " +
                               std::to_string(int64_t(o.batch_size) * group.size()) +
                               (group.size() > 1 ? " (--batch-size per rank x " + std::to_string(group.size()) + " ranks)" : ""));
  }
  // --kernels auto measures each convolution shape once on this device and keeps the choices with the run. A run
  // resumed into another folder takes its choices along, so it continues with the same kernels.
  if (o.kernel_choice_file.empty() && lead) {  // other ranks keep their choices in memory
    o.kernel_choice_file = (fs::path(o.out) / "kernel_choices.json").string();
    const fs::path earlier = fs::path(resume_file).parent_path() / "kernel_choices.json";
    if (!resume_file.empty() && !fs::exists(o.kernel_choice_file) && fs::exists(earlier))
      write_file_atomic(o.kernel_choice_file, [&] {
        const std::vector<char> bytes = read_file(earlier.string());
        return std::string(bytes.begin(), bytes.end());
      }());
  }

  Trainer trainer(o, recipe, data, super_resolution ? &photos : nullptr);
  if (!resume_file.empty()) trainer.load_checkpoint(resume_file);
  else recipe.initialise(trainer.store(), trainer.plan().graph());
  trainer.broadcast_store_from_rank0();
  const std::vector<recipes::Metric>& recipe_metrics = trainer.metrics();
  int64_t total = o.steps;
  if (total == 0 && o.epochs > 0)
    total = static_cast<int64_t>(std::ceil(o.epochs * double(data.count) / double(trainer.images_per_step())));
  if (total == 0) total = TrainOptions::kDefaultSteps;
  const std::string metrics_path = (fs::path(o.out) / "metrics.jsonl").string();
  std::vector<json> history;
  std::unique_ptr<AppendFile> metrics;  // rank 0's; a failed append stops the run with "<path>: write failed (<errno text>)"
  if (lead) {
    history = read_metrics(metrics_path, trainer.steps_done());
    std::string kept;
    for (const json& j : history) kept += j.dump() + "\n";
    write_file_atomic(metrics_path, kept);
    metrics = std::make_unique<AppendFile>(metrics_path);
  }

  const std::string checkpoint_path = (fs::path(o.out) / "checkpoint.safetensors").string();
  const bool on_terminal = lead && o.progress && ::isatty(STDERR_FILENO);
  // From here on SIGINT/SIGTERM stop the run at a step boundary with a checkpoint (before, nothing is lost by dying).
  const StopSignals stop(o.out, on_terminal);
  // mpirun forwards SIGINT/SIGTERM to every rank, but each may see it at another step: the ranks agree before each
  // step (one tiny all-reduce), so they stop together.
  auto stop_requested = [&] { return any_rank(group, stop.received() != 0); };
  if (group.size() > 1 && lead)
    std::fprintf(stderr, "gan train: data parallel over %d ranks (MPI%s): batch %d per rank, %lld per step; %s batch norm\n",
                 group.size(), o.device == "cuda" ? " + NCCL" : "", o.batch_size,
                 (long long)o.batch_size * group.size(), o.sync_bn ? "synchronised" : "per-rank");
  const std::string shape_text = std::to_string(data.channels) + "x" + std::to_string(data.height) + "x" +
                                 std::to_string(data.width);
  const std::string data_text =
      data.source + (super_resolution ? ", random HR crops " + shape_text + " with their x" +
                                            std::to_string(request.sr_scale) + " LR twins"
                                      : ", " + std::to_string(data.count) + " images " + shape_text +
                                            (data.labelled() ? ", " + std::to_string(data.num_classes()) + " classes" : ""));
  if (lead) std::fprintf(stderr, "gan train: %s; %s %s; batch %d; steps %lld..%lld; %s\n", data_text.c_str(),
                         recipe.name().c_str(), trainer.config_json().c_str(), o.batch_size,
                         (long long)trainer.steps_done(), (long long)total, trainer.plan().summary().c_str());

  // The progress grid: 64 images of the fixed latent batch; a conditional generator draws 8 per class, a row each.
  const recipes::SamplerGraph probe = recipe.sampler(trainer.shape(), 1);
  const bool conditional = probe.labels != kNoValue;
  const int grid_n = conditional ? 8 * trainer.shape().classes : 64;
  Shape noise_shape = probe.graph.shape(probe.z);
  noise_shape[0] = grid_n;
  const Tensor noise = fixed_noise(o.seed, noise_shape);
  Tensor grid_labels(Shape{grid_n});
  for (int i = 0; i < grid_n; ++i) grid_labels[i] = static_cast<float>(i / 8);
  auto write_samples = [&](bool final_grid) {
    Image grid;
    if (validation) {
      grid = validation->progress_grid(trainer, 4);
    } else {
      Tensor images = trainer.sample(noise, conditional ? &grid_labels : nullptr);
      const Shape& s = images.shape();
      grid = make_grid(images.data(), int(s[0]), int(s[1]), int(s[2]), int(s[3]), 8);
    }
    char name[64];
    std::snprintf(name, sizeof name, "step_%06lld.png", (long long)trainer.steps_done());
    if (!final_grid) write_png((fs::path(o.out) / "samples" / name).string(), grid);
    write_png((fs::path(o.out) / "samples.png").string(), grid);
  };
  // --eval-every: FID of a fixed set of latent vectors (the same images' generator changes alone move it), scored in
  // batches of the progress grid's size so the sampler plan is shared. The best checkpoint by FID is best.safetensors.
  std::unique_ptr<FidScorer> scorer;
  const std::string best_path = (fs::path(o.out) / "best.safetensors").string();
  double best_score = INFINITY;  // lower is better: FID, or −PSNR for super-resolution
  for (const json& j : history) {
    if (j.contains("fid") && j["fid"].is_number()) best_score = std::min(best_score, j["fid"].get<double>());
    if (j.contains("psnr") && j["psnr"].is_number()) best_score = std::min(best_score, -j["psnr"].get<double>());
  }
  Tensor eval_z, eval_labels;
  if (o.eval_every > 0 && validation && lead) {
    std::fprintf(stderr, "gan train: every %lld steps, PSNR and SSIM (Y, %d-pixel border) on %zu crops of %s, bicubic "
                 "alongside\n", (long long)o.eval_every, request.sr_scale, validation->pairs().size(),
                 validation->source().c_str());
  } else if (o.eval_every > 0 && lead) {
    scorer = std::make_unique<FidScorer>(o.data, o.data_class, o.classifier, o.device == "reference" ? "cpu" : o.device, 20);
    std::fprintf(stderr, "gan train: every %lld steps, FID of %lld images; %s\n", (long long)o.eval_every,
                 (long long)o.eval_samples, scorer->caveat().c_str());
    Shape latent = noise_shape;
    latent[0] = 1;
    eval_z = scoring_latents(o.eval_samples, latent, o.seed);
    if (conditional) eval_labels = balanced_labels(o.eval_samples, trainer.shape().classes);
  }
  auto evaluate = [&]() {
    const int64_t per_latent = eval_z.numel() / o.eval_samples;
    const FidScore s = scorer->score_generated(o.eval_samples, grid_n, [&](int64_t first, int64_t count) {
      // The sampler plan takes grid_n images: a short last batch is padded with zeros and cut.
      Tensor z(noise_shape), labels(Shape{grid_n});
      std::copy(eval_z.data() + first * per_latent, eval_z.data() + (first + count) * per_latent, z.data());
      if (conditional) std::copy(eval_labels.data() + first, eval_labels.data() + first + count, labels.data());
      Tensor images = trainer.sample(z, conditional ? &labels : nullptr);
      if (count == grid_n) return images;
      Shape shape = images.shape();
      shape[0] = count;
      Tensor cut(shape);
      std::copy(images.data(), images.data() + cut.numel(), cut.data());
      return cut;
    });
    return s;
  };
  // report.html, refreshed at each checkpoint; a failure to write it warns once and training goes on.
  std::unique_ptr<RunReport> report;
  if (lead) report = std::make_unique<RunReport>(o.out, ReportInfo{recipe.name(), trainer.config_json(), recipes::to_json(o.recorded_options()).dump(),
                           data_text,
                           o.device == "cuda" ? "cuda (" + o.kernels + " kernels, " + o.math + (o.cuda_graph ? ", CUDA graph)" : ")")
                                              : o.device,
                           trainer.plan().summary(), trainer.steps_done(), total, ""});
  const auto run_start = std::chrono::steady_clock::now();
  const int64_t first = trainer.steps_done();

  // Metrics are read back every log_every steps (on the GPU a read waits for the device; between reads the host
  // only queues work). A non-finite loss is caught at the next read, before any further checkpoint is written.
  const int64_t log_every = o.log_every > 0 ? o.log_every : (o.device == "cuda" ? 10 : 1);
  auto interval_start = std::chrono::steady_clock::now();
  int64_t interval_first = trainer.steps_done(), last_read = trainer.steps_done();
  auto finite_or_report = [&](const StepMetrics& m) {
    std::string bad;
    for (const auto& [name, value] : m.values)
      if (!std::isfinite(value)) bad += (bad.empty() ? "" : ", ") + name + " " + std::to_string(value);
    if (bad.empty()) return true;
    if (!lead) return false;  // the metrics are the group's: every rank stops here, rank 0 says why
    const std::string kept = fs::exists(checkpoint_path) ? "the last good checkpoint is " + checkpoint_path
                                                         : "no checkpoint was written";
    std::fprintf(stderr, "\ngan train: step %lld: not finite: %s; stopping; %s\n", (long long)m.step, bad.c_str(), kept.c_str());
    return false;
  };
  std::vector<bool> shown;  // the recipe's metrics on the progress line
  for (const recipes::Metric& metric : recipe_metrics) shown.push_back(metric.on_progress_line);
  while (trainer.steps_done() < total && !stop_requested()) {
    trainer.run_step();
    const int64_t done = trainer.steps_done();
    const bool check_due = o.check_finite_every > 0 && done % o.check_finite_every == 0;
    const bool eval_due = o.eval_every > 0 && (done % o.eval_every == 0 || done == total);
    const bool due = done % log_every == 0 || done == total || (o.sample_every > 0 && done % o.sample_every == 0) ||
                     (o.checkpoint_every > 0 && done % o.checkpoint_every == 0) || check_due || eval_due;
    if (!due) continue;
    StepMetrics m = trainer.read_metrics();
    last_read = done;
    const auto now = std::chrono::steady_clock::now();
    m.step_ms = std::chrono::duration<double, std::milli>(now - interval_start).count() / double(done - interval_first);
    m.images_per_s = m.step_ms > 0 ? 1000.0 * trainer.images_per_step() / m.step_ms : 0;
    interval_start = now;
    interval_first = done;
    if (!finite_or_report(m)) return 3;
    if (check_due) {
      const std::string bad = trainer.first_non_finite();
      if (any_rank(group, !bad.empty())) {
        const std::string kept = fs::exists(checkpoint_path) ? "the last good checkpoint is " + checkpoint_path
                                                             : "no checkpoint was written";
        std::fprintf(stderr, "\ngan train: step %lld: %s (--check-finite); stopping; %s\n", (long long)done,
                     bad.empty() ? "another rank holds a non-finite value" : bad.c_str(), kept.c_str());
        return 3;
      }
    }
    if (!lead) continue;  // the rest writes rank 0's files
    json line{{"step", m.step}};
    if (data.count > 0) line["epoch"] = double(m.step) * trainer.images_per_step() / double(data.count);
    for (const auto& [name, value] : m.values) line[name] = value;
    line["step_ms"] = m.step_ms;
    line["images_per_s"] = m.images_per_s;
    bool new_best = false;
    if (eval_due && validation) {
      const eval::SrSetScore score = validation->score(trainer);
      line["psnr"] = score.method_mean.psnr;
      line["ssim"] = score.method_mean.ssim;
      line["psnr_bicubic"] = score.bicubic_mean.psnr;
      line["ssim_bicubic"] = score.bicubic_mean.ssim;
      new_best = -score.method_mean.psnr < best_score;  // the best checkpoint by PSNR
      if (new_best) best_score = -score.method_mean.psnr;
      std::fprintf(stderr, "%sgan train: step %lld: PSNR %.2f dB, SSIM %.4f (bicubic %.2f dB, %.4f)%s\n",
                   on_terminal ? "\n" : "", (long long)m.step, score.method_mean.psnr, score.method_mean.ssim,
                   score.bicubic_mean.psnr, score.bicubic_mean.ssim, new_best ? " (best so far: best.safetensors)" : "");
    } else if (eval_due) {
      const FidScore score = evaluate();
      line["fid"] = score.fid;
      line["kid"] = score.kid.mean;
      new_best = score.fid < best_score;
      if (new_best) best_score = score.fid;
      std::fprintf(stderr, "%sgan train: step %lld: FID %.3f, KID %.5f%s\n", on_terminal ? "\n" : "", (long long)m.step,
                   score.fid, score.kid.mean, new_best ? " (best so far: best.safetensors)" : "");
    }
    metrics->append(line.dump() + "\n");
    history.push_back(line);
    if (on_terminal) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
      const double per_step = elapsed / double(m.step - first);
      std::string values;
      for (size_t k = 0; k < m.values.size(); ++k) {
        if (!shown[k]) continue;
        char field[96];
        std::snprintf(field, sizeof field, "  %s %.3f", m.values[k].first.c_str(), m.values[k].second);
        values += field;
      }
      std::fprintf(stderr, "\rstep %lld/%lld%s  %.0f img/s  left %s   ", (long long)m.step, (long long)total, values.c_str(),
                   m.images_per_s, format_duration(per_step * double(total - m.step)).c_str());
      std::fflush(stderr);
    }
    if (o.sample_every > 0 && m.step % o.sample_every == 0) write_samples(false);
    if (o.checkpoint_every > 0 && m.step % o.checkpoint_every == 0) {
      trainer.save_checkpoint(checkpoint_path);
      report->refresh(m.step, "training");
    }
    if (new_best) trainer.save_checkpoint(best_path);
    interval_start = std::chrono::steady_clock::now();  // file writes are not part of the step time
  }
  if (on_terminal) std::fprintf(stderr, "\n");

  // Stopped by a signal between steps (one after the last step lets the run finish): checkpoint and go. The metrics
  // file holds the steps an uninterrupted run would have logged so far (each line is flushed as it is written).
  if (trainer.steps_done() < total && any_rank(group, stop.received() != 0)) {
    const int signo = stop.received() != 0 ? stop.received() : SIGTERM;  // another rank's signal
    if (trainer.steps_done() > last_read) {  // the steps since the last read were not checked yet
      StepMetrics m = trainer.read_metrics();
      if (!finite_or_report(m)) return 3;
    }
    if (!lead) return 128 + signo;
    trainer.save_checkpoint(checkpoint_path);
    report->refresh(trainer.steps_done(), signo == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM");
    const std::string launcher = group.size() > 1 ? "mpirun -np " + std::to_string(group.size()) + " " : "";
    std::fprintf(stderr, "gan train: stopped by %s at step %lld of %lld; wrote %s; continue with: %sgan train --resume %s\n",
                 signo == SIGINT ? "SIGINT" : "SIGTERM", (long long)trainer.steps_done(), (long long)total,
                 checkpoint_path.c_str(), launcher.c_str(), o.out.c_str());
    return 128 + signo;
  }

  if (group.size() > 1) {  // the promise of data parallelism, checked once at the end (tests/data_parallel.py)
    if (const std::string differ = trainer.check_ranks_identical(); !differ.empty()) {
      if (lead) std::fprintf(stderr, "gan train: %s after step %lld\n", differ.c_str(), (long long)trainer.steps_done());
      return 4;
    }
    if (lead)
      std::fprintf(stderr, "gan train: weights and optimiser state identical on all %d ranks (hash %016llx)\n",
                   group.size(), (unsigned long long)trainer.replicated_state_hash());
  }
  if (!lead) return 0;
  write_samples(true);
  trainer.save_checkpoint(checkpoint_path);
  std::string written = "samples.png, losses.png, report.html, metrics.jsonl, checkpoint.safetensors";
  if ((scorer || (validation && o.eval_every > 0)) && std::isfinite(best_score)) written += ", best.safetensors";
  for (const recipes::Network& network : recipe.networks()) {
    trainer.save_state_dict((fs::path(o.out) / network.file).string(), network);
    written += ", " + network.file;
  }
  std::vector<std::pair<std::string, std::vector<double>>> losses;
  std::vector<double> logged_steps;
  for (const json& j : history) logged_steps.push_back(j["step"].get<double>());
  for (const recipes::Metric& metric : recipe_metrics) {
    if (metric.name.rfind("loss_", 0) != 0 || !metric.on_progress_line) continue;
    std::vector<double> series;
    for (const json& j : history) series.push_back(j.value(metric.name, NAN));
    losses.emplace_back(metric.name, std::move(series));
  }
  write_loss_plot((fs::path(o.out) / "losses.png").string(), logged_steps, losses);
  report->refresh(trainer.steps_done(), "finished");
  if (o.profile) std::fprintf(stderr, "%s", trainer.profile_report().c_str());
  if (!history.empty()) {
    const json& last = history.back();
    std::string values;
    for (const recipes::Metric& metric : recipe_metrics) {
      if (!metric.on_progress_line) continue;
      char field[96];
      std::snprintf(field, sizeof field, " %s %.3f", metric.name.c_str(), last.value(metric.name, NAN));
      values += field;
    }
    std::fprintf(stderr, "gan train: done at step %lld:%s; wrote %s/{%s}\n", (long long)last["step"].get<int64_t>(),
                 values.c_str(), o.out.c_str(), written.c_str());
  }
  return 0;
}

int run_train(const TrainOptions& options, recipes::Recipe& recipe) {
  Communicator& group = process_group();
  if (group.size() == 1) return run_train_on_rank(options, recipe);
  // A rank that fails alone would leave the others waiting in a collective: it ends the whole group instead.
  try {
    return run_train_on_rank(options, recipe);
  } catch (const std::exception& e) {
    group.abort(std::string("gan: error: ") + e.what(), 1);  // does not return
  }
  return 1;
}

}  // namespace gancu::app
