// `gan train`: the DCGAN training loop around one compiled plan, with metrics, sample grids, checkpoints and resume.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "models/dcgan.h"
#include "tools/io/dataset.h"

namespace gancu::app {

struct TrainOptions {
  std::string data = "fashion-mnist";
  int image_size = 32;
  int channels = 0;          // 0: as the data set (1 for MNIST-like, 3 for CIFAR and PNG folders)
  int batch_size = 64;
  int64_t steps = 0;         // generator updates; 0 with epochs 0 means the default
  double epochs = 0;
  double lr = 2e-4, beta1 = 0.5, beta2 = 0.999;
  int nz = 100, ngf = 64, ndf = 64;
  uint64_t seed = 1;
  std::string out = "runs/train";
  bool out_given = false;        // --out named explicitly (else a taken default folder moves on to runs/train-2, ...)
  bool overwrite = false;        // allow a fresh run into a folder that already holds one
  std::string device = "cpu";      // cpu | cuda | reference (the double-accumulating oracle)
  std::string kernels = "custom";  // cuda: convolutions by the hand-written kernels, by cuDNN, or auto (per shape)
  std::string kernel_choice_file;  // cuda, auto: where the per-shape choices are kept (run_train: <out>/kernel_choices.json)
  std::string math = "tf32";       // cuda: convolution arithmetic, tf32 (PyTorch's default) or strict fp32
  bool cuda_graph = true;          // cuda: replay the step as one CUDA graph
  int64_t log_every = 0;           // read metrics back every N steps (0: every step on the CPU, every 10 on the GPU)
  std::string resume;        // a run folder (or its checkpoint.safetensors) to continue
  int64_t sample_every = 100, checkpoint_every = 500;
  bool label_smoothing = false;  // one-sided: real target 0.9
  double label_noise = 0.0;      // probability of flipping each D label
  double d_dropout = 0.0;
  int d_steps = 1;
  bool saturating_g_loss = false;
  bool progress = true;          // one progress line on a terminal
  bool profile = false;          // print time per op kind at the end
  static constexpr int64_t kDefaultSteps = 1500;
};

// What one step reports (PyTorch DCGAN's errD, errG, D(x), D(G(z)) before and after the D update).
struct StepMetrics {
  int64_t step = 0;           // generator updates done, after this one
  double loss_d = 0, loss_d_real = 0, loss_d_fake = 0, loss_g = 0;
  double d_x = 0, d_g_z1 = 0, d_g_z2 = 0;
  double step_ms = 0, images_per_s = 0;
};

// The backend for --device (and, on cuda, --kernels, --math, --cuda-graph, and where auto keeps its choices).
// Throws a one-line error for an unavailable device.
std::unique_ptr<Backend> make_backend(const std::string& device, const std::string& kernels = "custom",
                                      const std::string& math = "tf32", bool cuda_graph = true,
                                      const std::string& kernel_choice_file = "");

// The model configuration a checkpoint records, so `gan sample` can rebuild the generator.
models::DcganConfig model_config(const TrainOptions& o, int channels);
std::string config_to_json(const models::DcganConfig& c);
models::DcganConfig config_from_json(const std::string& json, const std::string& file);

class Trainer {
 public:
  // `data` must outlive the trainer and have the model's channels and size.
  Trainer(const TrainOptions& options, const ImageSet& data);
  ~Trainer();

  // One training step: uploads the next real batches and runs the plan (on the GPU, without waiting for it).
  void run_step();
  // Losses and D outputs of the last step (waits for the device); step_ms and images_per_s are left 0.
  StepMetrics read_metrics();
  // run_step() then read_metrics(), timed.
  StepMetrics step();
  int64_t steps_done() const { return plan_->step(); }
  Plan& plan() { return *plan_; }
  const models::DcganConfig& config() const { return config_; }

  // Everything needed to continue the run bit-identically: weights, buffers, Adam state, counters, step, data order.
  void save_checkpoint(const std::string& path) const;
  void load_checkpoint(const std::string& path);
  // Pure PyTorch state_dicts of G and D (names "main.N.*", num_batches_tracked included).
  void save_state_dict(const std::string& path, const std::string& network) const;
  // The generator in inference mode on a fixed latent batch, images [n, C, S, S] in [-1, 1].
  Tensor sample(const Tensor& z);
  void enable_profiling() { backend_->enable_profiling(); }
  std::string profile_report() const { return backend_->profile_report(); }
  // Benchmarks: the last step's duration where it ran (CUDA events on the GPU); waits for it.
  void enable_step_timing() { backend_->enable_step_timing(); }
  double last_step_ms() { return backend_->last_step_ms(); }

 private:
  TrainOptions options_;
  models::DcganConfig config_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Plan> plan_;
  GanStep layout_;  // value ids (its graph was moved into the plan)
  BatchLoader loader_;
  std::vector<float> batch_;
};

// The whole command: load data, train, write samples/metrics/checkpoints/plot. Returns the process exit code.
int run_train(const TrainOptions& options);

}  // namespace gancu::app
