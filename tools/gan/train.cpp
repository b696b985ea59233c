#include "tools/gan/train.h"

#include <signal.h>
#include <unistd.h>

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
#include "tools/io/png.h"
#include "tools/io/safetensors.h"

namespace gancu::app {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;  // metrics lines keep their field order

namespace {

constexpr const char* kFormat = "gancu-dcgan-1";
constexpr uint64_t kFixedNoiseStream = 0xF1ED;  // the fixed latent batch of the progress grids

double mean_sigmoid(const Tensor& logits) {
  double s = 0;
  for (int64_t i = 0; i < logits.numel(); ++i) s += 1.0 / (1.0 + std::exp(-double(logits[i])));
  return logits.numel() ? s / double(logits.numel()) : 0.0;
}

int native_channels(const std::string& spec) {
  if (spec.empty() || spec == "fashion-mnist" || spec == "mnist") return 1;
  if (spec.find("idx3-ubyte") != std::string::npos) return 1;
  return 3;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
  else std::snprintf(buf, sizeof buf, "%llds", (long long)s);
  return buf;
}

Tensor fixed_noise(uint64_t seed, int n, int nz) {
  Tensor z(Shape{n, nz, 1, 1});
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

}  // namespace

std::unique_ptr<Backend> make_backend(const std::string& device, const std::string& kernels, const std::string& math,
                                      bool cuda_graph, const std::string& kernel_choice_file) {
  if (device == "cpu") return make_cpu_backend();
  if (device == "reference") return make_reference_backend();
  if (device == "cuda") {
    if (!cuda_backend_available())
      throw std::runtime_error("--device cuda: no usable CUDA device (or this build has no CUDA); use --device cpu");
    CudaBackendOptions o;
    if (kernels != "custom" && kernels != "cudnn" && kernels != "auto")
      throw std::invalid_argument("--kernels " + kernels + ": use custom, cudnn or auto");
    if (math != "tf32" && math != "fp32") throw std::invalid_argument("--math " + math + ": use tf32 or fp32");
    o.kernels = kernels == "cudnn"  ? CudaBackendOptions::kCudnn
                : kernels == "auto" ? CudaBackendOptions::kAuto
                                    : CudaBackendOptions::kCustom;
    o.kernel_choice_file = kernel_choice_file;
    o.math = math == "fp32" ? cuda::MathMode::kFp32 : cuda::MathMode::kTf32;
    o.graph_replay = cuda_graph;
    return make_cuda_backend(o);
  }
  throw std::invalid_argument("--device " + device + ": unknown (use cpu or cuda)");
}

models::DcganConfig model_config(const TrainOptions& o, int channels) {
  models::DcganConfig c;
  c.image_size = o.image_size;
  c.channels = channels;
  c.latent_size = o.nz;
  c.generator_width = o.ngf;
  c.discriminator_width = o.ndf;
  c.discriminator_dropout = o.d_dropout;
  models::validate(c);
  return c;
}

std::string config_to_json(const models::DcganConfig& c) {
  return json{{"model", "dcgan"},      {"image_size", c.image_size}, {"channels", c.channels},
              {"nz", c.latent_size},   {"ngf", c.generator_width},   {"ndf", c.discriminator_width},
              {"d_dropout", c.discriminator_dropout}}
      .dump();
}

models::DcganConfig config_from_json(const std::string& text, const std::string& file) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("model", "") != "dcgan")
    throw std::runtime_error(file + ": metadata has no gancu DCGAN configuration");
  try {
    models::DcganConfig c;
    c.image_size = j.at("image_size").get<int>();
    c.channels = j.at("channels").get<int>();
    c.latent_size = j.at("nz").get<int>();
    c.generator_width = j.at("ngf").get<int>();
    c.discriminator_width = j.at("ndf").get<int>();
    c.discriminator_dropout = j.value("d_dropout", 0.0);
    models::validate(c);
    return c;
  } catch (const std::exception& e) {
    throw std::runtime_error(file + ": bad model configuration in metadata (" + e.what() + ")");
  }
}

Trainer::Trainer(const TrainOptions& options, const ImageSet& data)
    : options_(options),
      config_(model_config(options, data.channels)),
      loader_(data, options.batch_size, options.seed) {
  if (data.height != config_.image_size || data.width != config_.image_size)
    throw std::invalid_argument(data.source + ": images are " + std::to_string(data.height) + "x" +
                                std::to_string(data.width) + ", the model wants " + std::to_string(config_.image_size));
  backend_ = make_backend(options.device, options.kernels, options.math, options.cuda_graph, options.kernel_choice_file);
  if (options.profile) backend_->enable_profiling();
  GanStepConfig sc;
  sc.batch_size = options.batch_size;
  sc.latent_size = options.nz;
  sc.channels = config_.channels;
  sc.image_size = config_.image_size;
  sc.d_steps = options.d_steps;
  sc.real_label = options.label_smoothing ? 0.9f : 1.0f;
  sc.label_noise = options.label_noise;
  sc.saturating_generator_loss = options.saturating_g_loss;
  sc.adam_g.lr = sc.adam_d.lr = options.lr;
  sc.adam_g.beta1 = sc.adam_d.beta1 = options.beta1;
  sc.adam_g.beta2 = sc.adam_d.beta2 = options.beta2;
  const models::DcganConfig model = config_;
  GanStep step = build_gan_step(
      sc, [model](Builder& b, ValueId z) { return models::dcgan_generator(b, z, model); },
      [model](Builder& b, ValueId x) { return models::dcgan_discriminator(b, x, model); });
  plan_ = std::make_unique<Plan>(std::move(step.graph), *backend_, options.seed, GanStep::kNumCounters);
  layout_ = std::move(step);
  batch_.resize(static_cast<size_t>(plan_->graph().shape(layout_.real_batches[0]).numel()));
}

Trainer::~Trainer() = default;

void Trainer::run_step() {
  for (ValueId real : layout_.real_batches) {
    loader_.next(batch_.data());
    plan_->write_async(real, batch_.data());
  }
  plan_->run();
}

StepMetrics Trainer::read_metrics() {
  StepMetrics m;
  m.step = plan_->step();
  m.loss_d_real = plan_->read(layout_.loss_d_real)[0];
  m.loss_d_fake = plan_->read(layout_.loss_d_fake)[0];
  m.loss_d = m.loss_d_real + m.loss_d_fake;
  m.loss_g = plan_->read(layout_.loss_g)[0];
  m.d_x = mean_sigmoid(plan_->read(layout_.d_real_logits));
  m.d_g_z1 = mean_sigmoid(plan_->read(layout_.d_fake_logits));
  m.d_g_z2 = mean_sigmoid(plan_->read(layout_.g_fake_logits));
  return m;
}

StepMetrics Trainer::step() {
  const auto start = std::chrono::steady_clock::now();
  run_step();
  StepMetrics m = read_metrics();  // waits for the device, so the time covers the whole step
  const auto end = std::chrono::steady_clock::now();
  m.step_ms = std::chrono::duration<double, std::milli>(end - start).count();
  m.images_per_s = m.step_ms > 0 ? 1000.0 * options_.batch_size * options_.d_steps / m.step_ms : 0;
  return m;
}

void Trainer::save_checkpoint(const std::string& path) const {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer, ValueKind::kOptState})
    for (ValueId id : plan_->values_of_kind(kind)) tensors.emplace_back(plan_->graph().value(id).name, plan_->read(id));
  const auto& counters = plan_->counters();
  std::map<std::string, std::string> meta{
      {"format", kFormat},
      {"config", config_to_json(config_)},
      {"step", std::to_string(plan_->step())},
      {"counter.G", std::to_string(counters[GanStep::kCounterG])},
      {"counter.D", std::to_string(counters[GanStep::kCounterD])},
      {"loader.epoch", std::to_string(loader_.epoch())},
      {"loader.position", std::to_string(loader_.position())},
      {"training",
       json{{"seed", options_.seed}, {"batch_size", options_.batch_size}, {"lr", options_.lr},
            {"beta1", options_.beta1}, {"beta2", options_.beta2}, {"d_steps", options_.d_steps},
            {"label_smoothing", options_.label_smoothing}, {"label_noise", options_.label_noise},
            {"saturating_g_loss", options_.saturating_g_loss}, {"data", options_.data}}
           .dump()}};
  save_safetensors(path, tensors, meta);
}

void Trainer::load_checkpoint(const std::string& path) {
  std::map<std::string, std::string> meta = load_safetensors_metadata(path);  // the whole file checked, no data read
  if (meta["format"] != kFormat) throw std::runtime_error(path + ": not a gancu training checkpoint (format '" + meta["format"] + "')");
  // Every tensor of the model by name and shape: a missing one or a wrong shape is refused before its data is
  // allocated. Validate everything before changing anything, so a bad file leaves the run untouched.
  std::map<std::string, Shape> expected;
  std::vector<std::pair<ValueId, std::string>> wanted;
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer, ValueKind::kOptState}) {
    for (ValueId id : plan_->values_of_kind(kind)) {
      const Value& v = plan_->graph().value(id);
      expected.emplace(v.name, v.shape);
      wanted.emplace_back(id, v.name);
    }
  }
  const std::map<std::string, Tensor> tensors = load_safetensors(path, expected);
  std::vector<std::pair<ValueId, const Tensor*>> assignments;
  for (const auto& [id, name] : wanted) assignments.emplace_back(id, &tensors.at(name));
  int64_t step, counter_g, counter_d, epoch, position;
  try {
    step = std::stoll(meta.at("step"));
    counter_g = std::stoll(meta.at("counter.G"));
    counter_d = std::stoll(meta.at("counter.D"));
    epoch = std::stoll(meta.at("loader.epoch"));
    position = std::stoll(meta.at("loader.position"));
  } catch (const std::exception&) {
    throw std::runtime_error(path + ": checkpoint metadata lacks the step counters");
  }
  for (auto& [id, tensor] : assignments) plan_->write(id, tensor->data());
  plan_->set_step(step);
  plan_->counters()[GanStep::kCounterG] = counter_g;
  plan_->counters()[GanStep::kCounterD] = counter_d;
  loader_.restore(epoch, position);
}

void Trainer::save_state_dict(const std::string& path, const std::string& network) const {
  const std::string prefix = network + ".";
  std::vector<std::pair<std::string, Tensor>> tensors;
  // PyTorch counts batch-norm forwards in num_batches_tracked: G runs d_steps times a step, D 2·d_steps + 1 times.
  const int64_t forwards = plan_->step() * (network == "G" ? options_.d_steps : 2 * options_.d_steps + 1);
  for (const Value& v : plan_->graph().values()) {
    if ((v.kind != ValueKind::kParameter && v.kind != ValueKind::kBuffer) || v.name.rfind(prefix, 0) != 0) continue;
    const std::string name = v.name.substr(prefix.size());
    tensors.emplace_back(name, plan_->read(v.id));
    const std::string suffix = ".running_var";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      tensors.emplace_back(name.substr(0, name.size() - suffix.size()) + ".num_batches_tracked",
                           Tensor::filled(Shape{}, static_cast<float>(forwards)));
  }
  save_safetensors(path, tensors, {{"format", "pytorch-state-dict"}, {"network", network}, {"config", config_to_json(config_)}});
}

Tensor Trainer::sample(const Tensor& z) {
  const models::DcganConfig model = config_;
  GeneratorGraph g = build_generator(static_cast<int>(z.dim(0)), config_.latent_size,
                                     [model](Builder& b, ValueId x) { return models::dcgan_generator(b, x, model); });
  const ValueId z_id = g.z, images = g.images;
  // Its own backend, so that sampling does not appear in the training step's profile; a one-off plan needs no
  // CUDA graph.
  // auto samples with the custom kernels: a one-off inference pass would spend more measuring than it could save.
  const std::string kernels = options_.kernels == "auto" ? "custom" : options_.kernels;
  std::unique_ptr<Backend> backend = make_backend(options_.device, kernels, options_.math, false);
  Plan sampler(std::move(g.graph), *backend, options_.seed);
  for (const Value& v : sampler.graph().values())
    if (v.kind == ValueKind::kParameter || v.kind == ValueKind::kBuffer)
      sampler.write(v.id, plan_->read(plan_->find(v.name)).data());
  sampler.write(z_id, z.data());
  sampler.run();
  return sampler.read(images);
}

int run_train(const TrainOptions& given) {
  TrainOptions o = given;
  std::unique_ptr<FolderLock> lock;  // held until the run ends (or the process dies)
  std::string resume_file;
  std::map<std::string, std::string> resume_meta;
  if (!o.resume.empty()) {
    resume_file = fs::is_directory(o.resume) ? (fs::path(o.resume) / "checkpoint.safetensors").string() : o.resume;
    // The run goes on in its own folder unless --out names another.
    if (!o.out_given) o.out = fs::path(resume_file).parent_path().empty() ? "." : fs::path(resume_file).parent_path().string();
    // Locked first, so that a run in progress (which may not have written a checkpoint yet) is named as the reason;
    // but a mistyped --resume creates no folder.
    if (fs::is_directory(o.out) || fs::is_regular_file(resume_file)) lock = lock_run_folder(o.out);
    if (!fs::is_regular_file(resume_file)) throw std::runtime_error(resume_file + ": no such checkpoint");
    resume_meta = load_safetensors_metadata(resume_file);  // validates the whole file before anything is written
    if (resume_meta["format"] != kFormat) throw std::runtime_error(resume_file + ": not a gancu training checkpoint");
    const models::DcganConfig c = config_from_json(resume_meta["config"], resume_file);
    json t = json::parse(resume_meta["training"], nullptr, false);
    if (t.is_discarded()) throw std::runtime_error(resume_file + ": bad training metadata");
    o.image_size = c.image_size;
    o.channels = c.channels;
    o.nz = c.latent_size;
    o.ngf = c.generator_width;
    o.ndf = c.discriminator_width;
    o.d_dropout = c.discriminator_dropout;
    o.seed = t.value("seed", o.seed);
    o.batch_size = t.value("batch_size", o.batch_size);
    o.lr = t.value("lr", o.lr);
    o.beta1 = t.value("beta1", o.beta1);
    o.beta2 = t.value("beta2", o.beta2);
    o.d_steps = t.value("d_steps", o.d_steps);
    o.label_smoothing = t.value("label_smoothing", o.label_smoothing);
    o.label_noise = t.value("label_noise", o.label_noise);
    o.saturating_g_loss = t.value("saturating_g_loss", o.saturating_g_loss);
    if (given.data == TrainOptions{}.data) o.data = t.value("data", o.data);
  }
  // One writer per run folder, locked before anything in it is read or written; a fresh run never overwrites an
  // earlier run's checkpoint by surprise.
  if (resume_file.empty() && (o.out_given || o.overwrite)) {
    lock = lock_run_folder(o.out);
    if (!o.overwrite && fs::exists(fs::path(o.out) / "checkpoint.safetensors"))
      throw std::runtime_error(o.out + ": already holds a run (checkpoint.safetensors); continue it with --resume " + o.out +
                               ", or pass --overwrite, or choose another --out");
  } else if (resume_file.empty()) {
    lock = lock_default_run_folder(o.out);
  }
  fs::create_directories(fs::path(o.out) / "samples");
  // What a process killed while writing left behind (its targets are intact); no one else writes here now.
  remove_stale_temp_files(o.out);
  remove_stale_temp_files((fs::path(o.out) / "samples").string());

  const int channels = o.channels ? o.channels : native_channels(o.data);
  ImageSet data = load_dataset(o.data, channels, o.image_size);
  if (data.count < o.batch_size)
    throw std::runtime_error(data.source + ": " + std::to_string(data.count) + " images, fewer than one batch of " +
                             std::to_string(o.batch_size));
  // --kernels auto measures each convolution shape once on this device and keeps the choices with the run. A run
  // resumed into another folder takes its choices along, so it continues with the same kernels.
  if (o.kernel_choice_file.empty()) {
    o.kernel_choice_file = (fs::path(o.out) / "kernel_choices.json").string();
    const fs::path earlier = fs::path(resume_file).parent_path() / "kernel_choices.json";
    if (!resume_file.empty() && !fs::exists(o.kernel_choice_file) && fs::exists(earlier))
      write_file_atomic(o.kernel_choice_file, [&] {
        const std::vector<char> bytes = read_file(earlier.string());
        return std::string(bytes.begin(), bytes.end());
      }());
  }

  Trainer trainer(o, data);
  if (!resume_file.empty()) trainer.load_checkpoint(resume_file);
  int64_t total = o.steps;
  if (total == 0 && o.epochs > 0)
    total = static_cast<int64_t>(std::ceil(o.epochs * double(data.count) / (double(o.batch_size) * o.d_steps)));
  if (total == 0) total = TrainOptions::kDefaultSteps;
  const std::string metrics_path = (fs::path(o.out) / "metrics.jsonl").string();
  std::vector<json> history = read_metrics(metrics_path, trainer.steps_done());
  {
    std::string kept;
    for (const json& j : history) kept += j.dump() + "\n";
    write_file_atomic(metrics_path, kept);
  }
  std::ofstream metrics(metrics_path, std::ios::app);
  if (!metrics) throw std::runtime_error(metrics_path + ": cannot open for writing");

  const std::string checkpoint_path = (fs::path(o.out) / "checkpoint.safetensors").string();
  const bool on_terminal = o.progress && ::isatty(STDERR_FILENO);
  // From here on SIGINT/SIGTERM stop the run at a step boundary with a checkpoint (before, nothing is lost by dying).
  const StopSignals stop(o.out, on_terminal);
  std::fprintf(stderr, "gan train: %s, %lld images %dx%dx%d; DCGAN nz=%d ngf=%d ndf=%d; batch %d; steps %lld..%lld; %s\n",
               data.source.c_str(), (long long)data.count, data.channels, data.height, data.width, o.nz, o.ngf, o.ndf,
               o.batch_size, (long long)trainer.steps_done(), (long long)total, trainer.plan().summary().c_str());

  const Tensor noise = fixed_noise(o.seed, 64, o.nz);
  auto write_samples = [&](bool final_grid) {
    Tensor images = trainer.sample(noise);
    const Shape& s = images.shape();
    Image grid = make_grid(images.data(), int(s[0]), int(s[1]), int(s[2]), int(s[3]), 8);
    char name[64];
    std::snprintf(name, sizeof name, "step_%06lld.png", (long long)trainer.steps_done());
    if (!final_grid) write_png((fs::path(o.out) / "samples" / name).string(), grid);
    write_png((fs::path(o.out) / "samples.png").string(), grid);
  };
  const auto run_start = std::chrono::steady_clock::now();
  const int64_t first = trainer.steps_done();

  // Metrics are read back every log_every steps (on the GPU a read waits for the device; between reads the host
  // only queues work). A non-finite loss is caught at the next read, before any further checkpoint is written.
  const int64_t log_every = o.log_every > 0 ? o.log_every : (o.device == "cuda" ? 10 : 1);
  auto interval_start = std::chrono::steady_clock::now();
  int64_t interval_first = trainer.steps_done(), last_read = trainer.steps_done();
  auto finite_or_report = [&](const StepMetrics& m) {
    if (std::isfinite(m.loss_d) && std::isfinite(m.loss_g)) return true;
    const std::string kept = fs::exists(checkpoint_path) ? "the last good checkpoint is " + checkpoint_path
                                                         : "no checkpoint was written";
    std::fprintf(stderr, "\ngan train: step %lld: loss is not finite (loss_D %g, loss_G %g); stopping; %s\n",
                 (long long)m.step, m.loss_d, m.loss_g, kept.c_str());
    return false;
  };
  while (trainer.steps_done() < total && !stop.received()) {
    trainer.run_step();
    const int64_t done = trainer.steps_done();
    const bool due = done % log_every == 0 || done == total || (o.sample_every > 0 && done % o.sample_every == 0) ||
                     (o.checkpoint_every > 0 && done % o.checkpoint_every == 0);
    if (!due) continue;
    StepMetrics m = trainer.read_metrics();
    last_read = done;
    const auto now = std::chrono::steady_clock::now();
    m.step_ms = std::chrono::duration<double, std::milli>(now - interval_start).count() / double(done - interval_first);
    m.images_per_s = m.step_ms > 0 ? 1000.0 * o.batch_size * o.d_steps / m.step_ms : 0;
    interval_start = now;
    interval_first = done;
    if (!finite_or_report(m)) return 3;
    const double epoch = double(m.step) * o.batch_size * o.d_steps / double(data.count);
    json line{{"step", m.step},         {"epoch", epoch},           {"loss_d", m.loss_d},
              {"loss_d_real", m.loss_d_real}, {"loss_d_fake", m.loss_d_fake}, {"loss_g", m.loss_g},
              {"d_x", m.d_x},           {"d_g_z1", m.d_g_z1},       {"d_g_z2", m.d_g_z2},
              {"step_ms", m.step_ms},   {"images_per_s", m.images_per_s}};
    metrics << line.dump() << "\n";
    metrics.flush();
    history.push_back(line);
    if (on_terminal) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
      const double per_step = elapsed / double(m.step - first);
      std::fprintf(stderr, "\rstep %lld/%lld  loss_D %.3f  loss_G %.3f  D(x) %.2f  D(G(z)) %.2f/%.2f  %.0f img/s  left %s   ",
                   (long long)m.step, (long long)total, m.loss_d, m.loss_g, m.d_x, m.d_g_z1, m.d_g_z2, m.images_per_s,
                   format_duration(per_step * double(total - m.step)).c_str());
      std::fflush(stderr);
    }
    if (o.sample_every > 0 && m.step % o.sample_every == 0) write_samples(false);
    if (o.checkpoint_every > 0 && m.step % o.checkpoint_every == 0) trainer.save_checkpoint(checkpoint_path);
    interval_start = std::chrono::steady_clock::now();  // file writes are not part of the step time
  }
  if (on_terminal) std::fprintf(stderr, "\n");

  // Stopped by a signal between steps (one after the last step lets the run finish): checkpoint and go. The metrics
  // file holds the steps an uninterrupted run would have logged so far (each line is flushed as it is written).
  if (const int signo = stop.received(); signo != 0 && trainer.steps_done() < total) {
    if (trainer.steps_done() > last_read) {  // the steps since the last read were not checked yet
      StepMetrics m = trainer.read_metrics();
      if (!finite_or_report(m)) return 3;
    }
    trainer.save_checkpoint(checkpoint_path);
    metrics.close();
    std::fprintf(stderr, "gan train: stopped by %s at step %lld of %lld; wrote %s; continue with: gan train --resume %s\n",
                 signo == SIGINT ? "SIGINT" : "SIGTERM", (long long)trainer.steps_done(), (long long)total,
                 checkpoint_path.c_str(), o.out.c_str());
    return 128 + signo;
  }

  write_samples(true);
  trainer.save_checkpoint(checkpoint_path);
  trainer.save_state_dict((fs::path(o.out) / "generator.safetensors").string(), "G");
  trainer.save_state_dict((fs::path(o.out) / "discriminator.safetensors").string(), "D");
  std::vector<double> loss_d, loss_g;
  for (const json& j : history) {
    loss_d.push_back(j.value("loss_d", NAN));
    loss_g.push_back(j.value("loss_g", NAN));
  }
  write_loss_plot((fs::path(o.out) / "losses.png").string(), {{"loss_D", loss_d}, {"loss_G", loss_g}});
  if (o.profile) std::fprintf(stderr, "%s", trainer.profile_report().c_str());
  if (!history.empty()) {
    const json& last = history.back();
    std::fprintf(stderr, "gan train: done at step %lld: loss_D %.3f loss_G %.3f D(x) %.3f D(G(z)) %.3f; wrote %s/{samples.png, "
                         "losses.png, metrics.jsonl, checkpoint.safetensors, generator.safetensors}\n",
                 (long long)last["step"].get<int64_t>(), last["loss_d"].get<double>(), last["loss_g"].get<double>(),
                 last["d_x"].get<double>(), last["d_g_z2"].get<double>(), o.out.c_str());
  }
  return 0;
}

}  // namespace gancu::app
