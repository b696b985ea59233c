// `gan train`: the training loop around a recipe's compiled step, with metrics, sample grids, checkpoints and resume.
// Generic over recipes (recipes/recipe.h): the trainer feeds each step the inputs the recipe declares, reads the
// metrics it declares, samples with its inference graph over the same parameter store, and checkpoints the store.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/comm.h"
#include "engine/engine.h"
#include "recipes/recipe.h"
#include "tools/io/dataset.h"
#include "tools/io/photos.h"

namespace gancu::app {

struct TrainOptions {
  // Recorded in the checkpoint and restored on resume (recorded_options below): what the run trains on.
  std::string data = "fashion-mnist";
  std::string data_class;    // --class: only this class of a labelled set (index or name)
  int channels = 0;          // 0: as the data set (1 for MNIST-like, 3 for CIFAR and PNG folders)
  int batch_size = 64;
  uint64_t seed = 1;
  // How this invocation runs (not recorded).
  int64_t steps = 0;         // training steps; 0 with epochs 0 means the default
  double epochs = 0;
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
  int64_t check_finite_every = 0;  // every N steps, check every weight and Adam moment for NaN/Inf (0: never)
  // Every N steps, FID and KID of eval_samples fixed-latent images in metrics.jsonl; the best checkpoint by FID is
  // kept as best.safetensors (0: never). The classifier: --classifier, else the data set's default (tools/gan/evaluate.h).
  int64_t eval_every = 0;
  int64_t eval_samples = 2000;
  std::string classifier;
  // Super-resolution recipes: the held-out photos of the progress grid and of --eval-every's PSNR/SSIM, as centre
  // crops of val_crop pixels (0: whole photos).
  std::string val_data = kDebianPhotosVal;
  int val_crop = 256;
  bool progress = true;          // one progress line on a terminal
  bool profile = false;          // print time per op kind at the end
  // Data parallel (under mpirun; engine/data_parallel.h): --batch-size is per rank, the global batch is that times
  // the group's size. Not recorded: a resume must use the same group size (checked) and may choose these again.
  bool sync_bn = false;          // batch-norm statistics over the whole group's batch (else per rank, as DDP)
  int bucket_mb = 25;            // gradient all-reduce bucket size in MiB
  // The recipe options the command line set: a resumed run keeps its checkpoint's values and refuses other ones.
  std::vector<std::string> given_recipe_options;
  static constexpr int64_t kDefaultSteps = 1500;

  // The recorded options, bound to this object's fields (the command line offers them, checkpoints record them).
  std::vector<recipes::Option> recorded_options();
};

// What one step reports: the recipe's metrics in its order (DCGAN: loss_d, loss_d_real, loss_d_fake, loss_g, D(x),
// D(G(z)) before and after the D update).
struct StepMetrics {
  int64_t step = 0;  // training steps done, after this one
  std::vector<std::pair<std::string, double>> values;
  double step_ms = 0, images_per_s = 0;
  double at(const std::string& name) const;  // throws std::out_of_range naming a metric the recipe lacks
};

// The backend for --device (and, on cuda, --kernels, --math, --cuda-graph, and where auto keeps its choices).
// Throws a one-line error for an unavailable device.
std::unique_ptr<Backend> make_backend(const std::string& device, const std::string& kernels = "custom",
                                      const std::string& math = "tf32", bool cuda_graph = true,
                                      const std::string& kernel_choice_file = "");

// The data shape a recipe trains on, from the images it was given.
recipes::DataShape data_shape(const ImageSet& data);

class Trainer {
 public:
  // `recipe` and `data` must outlive the trainer; `data` has been conformed to the recipe's request (run_train does it).
  // A super-resolution recipe (DataRequest::sr_scale > 0) trains on random crops of `photos` instead, and `data` is
  // empty but for its shape (sr_crop_shape).
  Trainer(const TrainOptions& options, const recipes::Recipe& recipe, const ImageSet& data,
          const PhotoSet* photos = nullptr);
  ~Trainer();

  // One training step: uploads the step's inputs and runs the plan (on the GPU, without waiting for it).
  void run_step();
  // The metrics of the last step (waits for the device); step_ms and images_per_s are left 0.
  StepMetrics read_metrics();
  // run_step() then read_metrics(), timed.
  StepMetrics step();
  int64_t steps_done() const { return plan_->step(); }
  int images_per_step() const { return images_per_step_; }
  Plan& plan() { return *plan_; }
  ParameterStore& store() { return *store_; }
  const recipes::Recipe& recipe() const { return recipe_; }
  const recipes::DataShape& shape() const { return shape_; }
  const std::vector<recipes::Metric>& metrics() const { return metrics_; }

  // Everything needed to continue the run bit-identically: the store (weights, buffers, Adam state, counters), the
  // step, the data order, the recipe's name and configuration.
  void save_checkpoint(const std::string& path) const;
  void load_checkpoint(const std::string& path);
  // A network's pure PyTorch state dict ("G." → "main.0.weight", num_batches_tracked included).
  void save_state_dict(const std::string& path, const recipes::Network& network) const;
  // The generator in inference mode over the run's own weights (no copy): images [n, C, H, W] in [-1, 1] from latent
  // vectors z [n, latent...] and, for a conditional recipe, class labels [n].
  Tensor sample(const Tensor& z, const Tensor* labels = nullptr);
  // A super-resolution recipe's generator in inference mode: LR images [n, 3, h, w] in [-1, 1] → SR images
  // [n, 3, h·scale, w·scale]. One inference plan per LR shape, kept for the next call.
  Tensor upscale(const Tensor& lr);
  // "" if every parameter, buffer and optimiser state is finite, else where the first NaN/Inf is ("G.main.0.weight
  // holds NaN at element 12"). A non-finite gradient shows here at once: Adam folds it into its parameter's moments.
  std::string first_non_finite() const;
  // The configuration a checkpoint and the state dicts record: the recipe's options plus the data's channels and classes.
  std::string config_json() const;
  void enable_profiling() { backend_->enable_profiling(); }
  std::string profile_report() const { return backend_->profile_report(); }
  // Data parallel: the process group this trainer is a rank of (a group of one without mpirun), and rank 0's
  // parameters, buffers and optimiser state copied to every rank (the start of a run, so every rank starts alike).
  Communicator& group() const { return group_; }
  void broadcast_store_from_rank0();
  // A hash (FNV-1a 64) of what data parallelism keeps identical on every rank: parameters, optimiser state, step and
  // counters (batch-norm running statistics are per rank unless --sync-bn, as in DDP, and are left out).
  uint64_t replicated_state_hash() const;
  // Collective: "" when every rank's replicated_state_hash() equals rank 0's, else which ranks differ.
  std::string check_ranks_identical();
  // Benchmarks: the last step's duration where it ran (CUDA events on the GPU); waits for it.
  void enable_step_timing() { backend_->enable_step_timing(); }
  double last_step_ms() { return backend_->last_step_ms(); }

 private:
  struct Sampler;
  TrainOptions options_;
  const recipes::Recipe& recipe_;
  const ImageSet& data_;
  recipes::DataShape shape_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ParameterStore> store_;
  std::unique_ptr<Plan> plan_;
  std::vector<recipes::StepInput> inputs_;
  std::vector<recipes::Metric> metrics_;
  int images_per_step_ = 0;
  std::optional<BatchLoader> loader_;        // image sets
  std::optional<SrCropSampler> crops_;       // photos (super-resolution)
  SrBatch crop_batch_;
  std::vector<float> batch_, labels_;
  std::vector<int32_t> batch_labels_;
  std::unique_ptr<Sampler> sampler_;
  // The step plan of the recipe's step version `version` (recipes::Recipe::step_version), replacing the current one.
  void build_step_plan(int version);
  int step_version_ = 0;
  bool data_parallel_ = false;
  std::map<std::vector<int64_t>, std::unique_ptr<Sampler>> upscalers_;  // by LR shape
  Communicator& group_;
  uint64_t rank_seed_ = 0;               // the run's seed with the rank folded in: this rank's random streams
  std::vector<float> group_batch_;       // the global batch; this rank takes its shard
  std::vector<int32_t> group_labels_;
};

// The data shape a super-resolution recipe trains on: no images, only the crops' shape (3 × crop × crop), and the
// photos' description as its source.
ImageSet sr_crop_shape(const PhotoSet& photos, int crop);

// The whole command: load data, train, write samples/metrics/checkpoints/plot. Returns the process exit code.
int run_train(const TrainOptions& options, recipes::Recipe& recipe);

// The recipe a checkpoint or state dict was written by, configured as it was, and its data shape. Throws a one-line
// error naming `file` if the metadata is missing or bad. Reads DCGAN checkpoints from before recipes ("gancu-dcgan-1").
struct RecordedRecipe {
  std::unique_ptr<recipes::Recipe> recipe;
  recipes::DataShape shape;
};
RecordedRecipe recorded_recipe(const std::map<std::string, std::string>& meta, const std::string& file);

}  // namespace gancu::app
